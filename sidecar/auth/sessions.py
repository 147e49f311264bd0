"""Sessions: sealed records in the store, wired into aiohttp-session through a custom storage.

The cookie holds ``<sid>.<secret>`` and nothing else: the id names the session's keys, the
secret (stored nowhere server-side) opens its sealed record and tokens. Idle and absolute
lifetimes are enforced here, server-side; the store TTL and the cookie lifetime follow them.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog
from aiohttp import web
from aiohttp_session import AbstractStorage, Session, get_session

from sidecar.auth.model import SessionRecord, TokenSet
from sidecar.auth.seal import Sealer, SealError
from sidecar.auth.tokens import SessionRef, TokenStore
from sidecar.config import SessionSettings
from sidecar.errors import LoginRequired
from sidecar.keys import PRELOADED_TOKENS, SESSION_RECORD
from sidecar.metrics import Metrics
from sidecar.store.base import KeyValueStore

__all__ = ["SealedSessionStorage", "SessionContext", "SessionRepository", "require_session"]

log = structlog.get_logger("sidecar.sessions")

# Writing the idle clock on every request would cost a store write per request; once a minute
# is precise enough for timeouts measured in hours.
TOUCH_EVERY = 60.0


def _account_key(account_id: str) -> str:
    return "sc:acct:" + hashlib.sha256(account_id.encode()).hexdigest()[:32]


class SessionRepository:
    """Reads, writes and ends sessions (record + tokens + account index)."""

    def __init__(
        self,
        store: KeyValueStore,
        sealer: Sealer,
        tokens: TokenStore,
        settings: SessionSettings,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._sealer = sealer
        self.tokens = tokens
        self._settings = settings
        self._metrics = metrics
        self._clock = clock

    def expires_at(self, record: SessionRecord) -> float:
        """When the session ends unless used again (idle) or at all (absolute)."""
        return min(
            record.touched_at + self._settings.idle_timeout,
            record.created_at + self._settings.max_age,
        )

    def ttl(self, record: SessionRecord) -> float:
        """Store TTL for the session's keys right now."""
        return max(1.0, self.expires_at(record) - self._clock())

    async def load(self, ref: SessionRef) -> SessionRecord | None:
        """The live record, or None (absent, unopenable, or just expired and ended)."""
        record, _tokens = await self.load_with_tokens(ref)
        return record

    async def load_with_tokens(self, ref: SessionRef) -> tuple[SessionRecord | None, bytes | None]:
        """The live record and the raw sealed token blob, read in one round trip."""
        raw, tokens = await self._store.get_many(ref.key("s"), ref.key("t"))
        return await self._open_record(ref, raw), tokens

    async def _open_record(self, ref: SessionRef, raw: bytes | None) -> SessionRecord | None:
        if raw is None:
            return None
        try:
            opened = self._sealer.open(raw, secret=ref.secret, context=ref.key("s").encode())
        except SealError:
            return None
        record = SessionRecord.from_dict(json.loads(opened.plaintext))
        if self.expires_at(record) <= self._clock():
            await self.end(ref, record.account_id, "expired")
            return None
        if opened.stale_key:  # reseal under the newest key on this write
            await self.save(ref, record)
        return record

    async def save(self, ref: SessionRef, record: SessionRecord, *, create: bool = False) -> None:
        """Write the sealed record and align the token key's TTL with it.

        Only ``create`` writes a record that is not there: an update racing a logout must not
        bring the ended session back (LoginRequired instead).
        """
        blob = self._sealer.seal(
            json.dumps(record.to_dict()).encode(), secret=ref.secret, context=ref.key("s").encode()
        )
        ttl = self.ttl(record)
        if create:
            await self._store.put(ref.key("s"), blob, ttl)
        elif not await self._store.update(ref.key("s"), blob, ttl):
            raise LoginRequired
        await self._store.expire(ref.key("t"), ttl)
        await self._store.expire(ref.key("m"), ttl)  # the MCP pair, when connected
        if record.account_id:
            await self._store.index_add(
                _account_key(record.account_id), ref.sid, self._settings.max_age
            )

    async def start(self, record: SessionRecord, tokens: TokenSet) -> SessionRef:
        """A new session id and secret holding these tokens (the caller saves the record)."""
        ref = SessionRef.new()
        await self.tokens.save(ref, tokens, self.ttl(record))
        return ref

    async def touch(self, ref: SessionRef, record: SessionRecord) -> SessionRecord:
        """Advance the idle clock, at most once a minute."""
        now = self._clock()
        if now - record.touched_at < TOUCH_EVERY:
            return record
        record = record.touched(now)
        await self.save(ref, record)
        return record

    async def end(self, ref: SessionRef, account_id: str | None, reason: str) -> None:
        """Delete every key of the session; the id is never accepted again."""
        await self._store.delete(
            ref.key("s"), ref.key("t"), ref.key("lock"), ref.key("m"), ref.key("mlock")
        )
        if account_id:
            await self._store.index_remove(_account_key(account_id), ref.sid)
        self._metrics.sessions_ended.labels(reason).inc()
        log.info("session_ended", reason=reason)

    async def end_by_ref(self, ref: SessionRef, reason: str) -> None:
        """End a session whose record may not be loaded (refresh refused)."""
        record = await self.load(ref)
        await self.end(ref, record.account_id if record else None, reason)

    async def end_account(self, account_id: str, reason: str) -> int:
        """End every session of an Atlassian account; how many there were."""
        key = _account_key(account_id)
        sids = await self._store.index_members(key)
        for sid in sids:
            await self._store.delete(
                *(f"sc:{{{sid}}}:{part}" for part in ("s", "t", "lock", "m", "mlock"))
            )
            self._metrics.sessions_ended.labels(reason).inc()
        await self._store.delete(key)
        log.info("account_sessions_ended", reason=reason, count=len(sids))
        return len(sids)


class SealedSessionStorage(AbstractStorage):
    """aiohttp-session storage over SessionRepository: the identity is the cookie value."""

    def __init__(self, repository: SessionRepository, settings: SessionSettings) -> None:
        super().__init__(
            cookie_name=settings.cookie_name,
            max_age=int(settings.max_age),
            path="/",
            secure=settings.secure_cookies,
            httponly=True,
            samesite="Lax",
            encoder=json.dumps,
            decoder=json.loads,
        )
        self._repo = repository

    async def load_session(self, request: web.Request) -> Session:
        """Open the session named by the cookie, or an empty new one."""
        ref = SessionRef.parse(self.load_cookie(request))
        if ref is None:
            return Session(None, data=None, new=True, max_age=self.max_age)
        record, tokens = await self._repo.load_with_tokens(ref)
        if record is None:
            return Session(None, data=None, new=True, max_age=self.max_age)
        # Kept for this request: the parsed record, and the token blob read with it.
        request[SESSION_RECORD] = record
        if tokens is not None:
            request[PRELOADED_TOKENS] = tokens
        data: Any = {"created": int(record.created_at), "session": record.to_dict()}
        # Lifetimes are enforced by the repository on our clock; aiohttp-session's own age
        # check (on the wall clock) would only duplicate it.
        return Session(ref.cookie_value, data=data, new=False, max_age=None)

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        """Write the record (or, for an invalidated session, clear the cookie)."""
        ref = SessionRef.parse(session.identity)
        if session.empty or ref is None:
            self.save_cookie(response, "", max_age=self.max_age)
            return
        await self._repo.save(ref, SessionRecord.from_dict(dict(session)), create=session.new)
        self.save_cookie(response, ref.cookie_value, max_age=self.max_age)


@dataclass(frozen=True)
class SessionContext:
    """The request's live session."""

    ref: SessionRef
    record: SessionRecord
    ttl: float


async def require_session(request: web.Request, repository: SessionRepository) -> SessionContext:
    """The live session of this request, or LoginRequired."""
    session = await get_session(request)
    ref = SessionRef.parse(session.identity) if not session.new else None
    if ref is None or session.empty:
        raise LoginRequired
    loaded = request.get(SESSION_RECORD)
    record = loaded if loaded is not None else SessionRecord.from_dict(dict(session))
    record = await repository.touch(ref, record)
    return SessionContext(ref, record, repository.ttl(record))
