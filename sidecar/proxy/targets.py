"""Sans-IO routing: which product, site and raw path a proxied request names, whether its path
is safe, and the exact upstream URL it maps to.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

__all__ = ["PREFIXES", "Target", "has_dot_segment", "parse_target", "upstream_url"]

# Route prefix -> Atlassian product name in /ex/{product}/{cloudId}/...
PREFIXES = {"jira": "jira", "wiki": "confluence"}

# A % not followed by two hex digits, or %C0/%C1 (overlong UTF-8, how ".." is smuggled past
# decoders that are not strict), is malformed.
_BAD_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})|%[cC][01]")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _decodings(segment: str) -> list[str]:
    once = unquote(segment, errors="surrogateescape")
    return [segment, once, unquote(once, errors="surrogateescape")]


def has_dot_segment(raw_path: str) -> bool:
    """True for a dot-segment in any encoding (``..``, ``%2e%2E``, ``%252e``, ``..%2f``, ``\\..``)
    or for a malformed escape or control character, which could hide one.
    """
    if "." not in raw_path and "%" not in raw_path and "\\" not in raw_path:
        return _CONTROL.search(raw_path) is not None  # the common case: nothing to decode
    if _BAD_ESCAPE.search(raw_path):
        return True
    for segment in raw_path.split("/"):
        variants = _decodings(segment) if "%" in segment else [segment]
        for variant in variants:
            if _CONTROL.search(variant):
                return True
            # "/" and "\\" separate segments; ";" starts a path parameter ("..;x" is "..").
            parts = re.split(r"[/\\]", variant)
            if any(part.partition(";")[0] in {".", ".."} for part in parts):
                return True
    return False


@dataclass(frozen=True)
class Target:
    """A proxied request: product, the ``{site}`` as sent, and the raw rest of path and query."""

    product: str
    site: str
    rest: str  # raw, "" or starting with "/"
    query: str  # raw, "" or starting with "?"


def parse_target(raw_path: str) -> Target | None:
    """Split ``/jira/{site}{rest}?{query}``; None when the path is not a proxied one."""
    path, sep, query = raw_path.partition("?")
    prefix, _, remainder = path.removeprefix("/").partition("/")
    product = PREFIXES.get(prefix)
    if product is None:
        return None
    site, slash, rest = remainder.partition("/")
    if not site:
        return None
    return Target(product, unquote(site), slash + rest, sep + query)


def upstream_url(api_url: str, cloud_id: str, target: Target) -> str:
    """``{API}/ex/{product}/{cloudId}[/wiki]{rest}{query}``, the raw bytes kept as sent."""
    base = f"{api_url}/ex/{target.product}/{cloud_id}"
    if target.product == "confluence":
        base += "/wiki"
    return _ascii(base + target.rest + target.query)


_NON_ASCII = re.compile(r"[^\x00-\x7f]+")


def _ascii(url: str) -> str:
    """Percent-encode raw non-ASCII (never valid on the wire); everything else stays as sent."""
    return _NON_ASCII.sub(lambda m: quote(m.group(0), safe=""), url)
