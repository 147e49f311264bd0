"""Opaque page cursors (Confluence `cursor`, Jira `nextPageToken`) over in-memory lists."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from typing import TypeVar

__all__ = ["decode_cursor", "encode_cursor", "page"]

T = TypeVar("T")
_PREFIX = "offset:"


def encode_cursor(offset: int) -> str:
    """Return an opaque, URL-safe cursor for a list offset."""
    raw = f"{_PREFIX}{offset}".encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def decode_cursor(cursor: str) -> int | None:
    """Return the offset inside a cursor, or None if it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    if not raw.startswith(_PREFIX) or not raw[len(_PREFIX) :].isdigit():
        return None
    return int(raw[len(_PREFIX) :])


def page(items: Sequence[T], offset: int, limit: int) -> tuple[list[T], str | None]:
    """Return one page and the cursor of the next page (None on the last page)."""
    chunk = list(items[offset : offset + limit])
    end = offset + len(chunk)
    return chunk, encode_cursor(end) if end < len(items) else None
