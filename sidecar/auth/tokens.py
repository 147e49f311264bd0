"""Where a session's token pair lives: one sealed blob per session, written with compare-and-set.

Keys share the session's hash tag (``sc:{<sid>}:…``) so every key of a session sits in one
Redis Cluster slot.
"""

from __future__ import annotations

import base64
import binascii
import secrets
from dataclasses import dataclass, field

from sidecar.auth.model import TokenSet
from sidecar.auth.seal import Sealer, SealError
from sidecar.store.base import KeyValueStore

__all__ = ["SessionRef", "StoredTokens", "TokenStore"]

_ID_BYTES = 16  # 128-bit session ids
_SECRET_BYTES = 32  # 256-bit per-session sealing secret, only ever in the cookie


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class SessionRef:
    """A session's id (names its keys) and its secret (opens its blobs): the cookie value."""

    sid: str
    secret: bytes = field(repr=False)

    @classmethod
    def new(cls) -> SessionRef:
        """A fresh random session."""
        return cls(_b64(secrets.token_bytes(_ID_BYTES)), secrets.token_bytes(_SECRET_BYTES))

    @classmethod
    def parse(cls, cookie: str | None) -> SessionRef | None:
        """Parse ``<sid>.<secret>``; anything malformed is simply no session."""
        if not cookie or cookie.count(".") != 1:
            return None
        sid, _, secret = cookie.partition(".")
        try:
            raw_sid = base64.urlsafe_b64decode(sid + "==")
            raw_secret = base64.urlsafe_b64decode(secret + "==")
        except (binascii.Error, ValueError):
            return None
        if len(raw_sid) != _ID_BYTES or len(raw_secret) != _SECRET_BYTES or _b64(raw_sid) != sid:
            return None
        return cls(sid, raw_secret)

    @property
    def cookie_value(self) -> str:
        """What the browser keeps."""
        return f"{self.sid}.{_b64(self.secret)}"

    def key(self, part: str) -> str:
        """A store key of this session, in one Cluster hash slot."""
        return f"sc:{{{self.sid}}}:{part}"


@dataclass(frozen=True)
class StoredTokens:
    """Tokens as read, with the raw blob that a compare-and-set must match."""

    tokens: TokenSet
    raw: bytes
    stale_key: bool


class TokenStore:
    """Loads and writes a session's sealed TokenSet (``part``: "t" for 3LO, "m" for MCP)."""

    def __init__(self, store: KeyValueStore, sealer: Sealer, part: str = "t") -> None:
        self._store = store
        self._sealer = sealer
        self.part = part

    def _seal(self, ref: SessionRef, tokens: TokenSet) -> bytes:
        return self._sealer.seal(
            tokens.to_json(), secret=ref.secret, context=ref.key(self.part).encode()
        )

    async def load(self, ref: SessionRef) -> StoredTokens | None:
        """The stored pair, or None when absent or not openable with this cookie."""
        return self.open(ref, await self._store.get(ref.key(self.part)))

    def open(self, ref: SessionRef, raw: bytes | None) -> StoredTokens | None:
        """Open a blob already read from the store (None when absent or not openable)."""
        if raw is None:
            return None
        try:
            opened = self._sealer.open(raw, secret=ref.secret, context=ref.key(self.part).encode())
        except SealError:
            return None
        return StoredTokens(TokenSet.from_json(opened.plaintext), raw, opened.stale_key)

    async def save(self, ref: SessionRef, tokens: TokenSet, ttl: float) -> bytes:
        """Write unconditionally (a new session); returns the blob written."""
        blob = self._seal(ref, tokens)
        await self._store.put(ref.key(self.part), blob, ttl)
        return blob

    async def delete(self, ref: SessionRef) -> None:
        """Forget the pair (a refused MCP grant; the session itself lives on)."""
        await self._store.delete(ref.key(self.part))

    async def replace(
        self, ref: SessionRef, expected: bytes, tokens: TokenSet, ttl: float
    ) -> bytes | None:
        """Write only if the stored blob is still ``expected``; the new blob, or None if lost."""
        blob = self._seal(ref, tokens)
        if await self._store.set_if_equal(ref.key(self.part), expected, blob, ttl):
            return blob
        return None
