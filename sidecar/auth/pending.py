"""Pending logins: one server-side record per ``state``, bound to the browser that started it.

The browser holds one small pre-auth cookie (a random id) whatever the number of tabs; each
state's record (PKCE verifier, return target) is sealed with that id, lives 10 minutes, is
single-use, and at most ten are kept per browser (the oldest is dropped).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from sidecar.auth.seal import Sealer, SealError
from sidecar.store.base import KeyValueStore

__all__ = ["PENDING_TTL", "PendingLogin", "PendingLogins", "new_browser_id", "parse_browser_id"]

PENDING_TTL = 600.0  # Atlassian's codes live at most ~10 minutes; a state need not outlive them.
PER_BROWSER = 10


def new_browser_id() -> str:
    """A fresh pre-auth cookie value (256 bits)."""
    return secrets.token_urlsafe(32)


def parse_browser_id(value: str | None) -> bytes | None:
    """The raw id from a pre-auth cookie, or None when malformed."""
    if not value or len(value) != 43:
        return None
    try:
        return base64.urlsafe_b64decode(value + "=")
    except (binascii.Error, ValueError):
        return None


@dataclass(frozen=True)
class PendingLogin:
    """What the callback needs from the login that issued a state."""

    verifier: str = field(repr=False)
    return_to: str
    created_at: float


def _state_key(state: str) -> str:
    return "sc:state:" + hashlib.sha256(state.encode()).hexdigest()


class PendingLogins:
    """Issues and redeems login states."""

    def __init__(
        self, store: KeyValueStore, sealer: Sealer, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._sealer = sealer
        self._clock = clock

    async def begin(self, browser: bytes, verifier: str, return_to: str) -> str:
        """Record a login for this browser; returns its new unguessable state."""
        state = secrets.token_urlsafe(32)
        key = _state_key(state)
        payload = json.dumps(
            {"verifier": verifier, "return_to": return_to, "created_at": self._clock()}
        ).encode()
        await self._store.put(
            key, self._sealer.seal(payload, secret=browser, context=key.encode()), PENDING_TTL
        )
        browser_key = "sc:pre:" + hashlib.sha256(browser).hexdigest()[:32]
        evicted = await self._store.push_capped(browser_key, key, PER_BROWSER, PENDING_TTL)
        if evicted:
            await self._store.delete(*evicted)
        return state

    async def take(self, browser: bytes | None, state: str) -> PendingLogin | None:
        """Redeem a state once; None when unknown, used, expired, or from another browser."""
        key = _state_key(state)
        if browser is None:
            return None
        raw = await self._store.get(key)
        if raw is None:
            return None
        try:  # only the browser that started the login can open, and so spend, its state
            opened = self._sealer.open(raw, secret=browser, context=key.encode())
        except SealError:
            return None
        if await self._store.getdel(key) != raw:  # spent by a concurrent callback
            return None
        data = json.loads(opened.plaintext)
        if self._clock() - float(data["created_at"]) > PENDING_TTL:
            return None
        return PendingLogin(
            str(data["verifier"]), str(data["return_to"]), float(data["created_at"])
        )
