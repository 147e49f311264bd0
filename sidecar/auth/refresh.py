"""Single-flight, cancellation-proof token refresh, within a process and across replicas.

Atlassian rotates refresh tokens on every use and may revoke the whole family when a spent one
comes back after its reuse window, so a refresh must run once per session at a time:

- in a process, one tracked task per session; every request that needs it awaits it shielded,
  so a client that disconnects never aborts a refresh between Atlassian's answer and our write;
- across replicas, a store lock (renewed while the token call runs); the loser waits for the
  winner's pair to appear instead of refreshing again;
- under the lock the pair is re-read and re-checked, and the new pair is written with a
  compare-and-set against the pair that was read.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from sidecar.auth.flow import Misconfigured, Refused, TokenResult, Updated
from sidecar.auth.model import TokenSet
from sidecar.auth.tokens import SessionRef, StoredTokens, TokenStore
from sidecar.errors import (
    AuthMisconfigured,
    LoginRequired,
    ReauthRequired,
    RefreshTransient,
    StoreUnavailable,
)
from sidecar.metrics import Metrics
from sidecar.store.base import KeyValueStore

__all__ = ["RefreshClient", "RefreshCoordinator"]

log = structlog.get_logger("sidecar.refresh")

# The lock outlives a normal token call; it is renewed every third of its life while the call
# runs, so a slow token endpoint never lets a second refresh in, and a crashed holder frees it
# within seconds.
LOCK_TTL = 5.0
# How long a request waits for another replica's refresh before answering 503.
WAIT_LIMIT = 30.0
_POLL = 0.05
# Writing the new pair is retried for a while: Atlassian has already spent the old one.
PERSIST_RETRY_FOR = 5.0


class RefreshClient(Protocol):
    """What spends a refresh token: Atlassian's 3LO client, or the MCP server's OAuth client."""

    async def refresh(self, refresh_token: str) -> TokenResult:
        """Spend a (rotating) refresh token for a new pair."""
        ...


class RefreshCoordinator:
    """Hands out a session's current access token, refreshing it when needed (exactly once)."""

    def __init__(
        self,
        tokens: TokenStore,
        store: KeyValueStore,
        client: RefreshClient,
        metrics: Metrics,
        *,
        skew: float,
        end_session: Callable[[SessionRef, str], Awaitable[None]],
        clock: Callable[[], float] = time.time,
        lock_ttl: float = LOCK_TTL,
        lock_part: str = "lock",
    ) -> None:
        self._tokens = tokens
        self._store = store
        self._client = client
        self._metrics = metrics
        self._skew = skew
        self._end_session = end_session
        self._clock = clock
        self._lock_ttl = lock_ttl
        self._lock_part = lock_part  # a session key part: "lock" (3LO) or "mlock" (MCP)
        self._inflight: dict[str, asyncio.Task[TokenSet]] = {}

    def _stale(self, tokens: TokenSet, reject_access: str | None) -> bool:
        return tokens.needs_refresh(self._clock(), self._skew) or (
            reject_access is not None and tokens.access_token == reject_access
        )

    async def current(
        self,
        ref: SessionRef,
        ttl: float,
        *,
        reject_access: str | None = None,
        preloaded: bytes | None = None,
    ) -> TokenSet:
        """A usable pair; ``reject_access`` forces a refresh while that token is the current one.

        ``preloaded`` is the sealed pair as this request already read it (with the session
        record, in one round trip); without it the pair is read from the store.
        """
        stored = (
            self._tokens.open(ref, preloaded)
            if preloaded is not None
            else await self._tokens.load(ref)
        )
        if stored is None:
            raise LoginRequired
        if not self._stale(stored.tokens, reject_access):
            if stored.stale_key:  # sealed under a retired key: reseal under the current one
                await self._tokens.replace(ref, stored.raw, stored.tokens, ttl)
            return stored.tokens
        task = self._inflight.get(ref.sid)
        if task is None:
            task = asyncio.create_task(self._refresh(ref, ttl, reject_access))
            self._inflight[ref.sid] = task
            task.add_done_callback(lambda _t: self._inflight.pop(ref.sid, None))
        else:
            self._metrics.token_refresh_coalesced.inc()
        return await asyncio.shield(task)

    async def drain(self, grace: float) -> None:
        """Let running refreshes finish (shutdown): their new pairs must be written."""
        pending = list(self._inflight.values())
        if pending:
            await asyncio.wait(pending, timeout=grace)

    async def _refresh(self, ref: SessionRef, ttl: float, reject_access: str | None) -> TokenSet:
        lock_token = secrets.token_urlsafe(16)
        waited = await self._acquire(ref, lock_token, reject_access)
        if waited is not None:
            return waited
        renewer = asyncio.create_task(self._renew(ref, lock_token))
        try:
            stored = await self._tokens.load(ref)
            if stored is None:
                raise LoginRequired
            if not self._stale(stored.tokens, reject_access):
                self._metrics.token_refresh_coalesced.inc()
                return stored.tokens
            return await self._spend(ref, stored, ttl)
        finally:
            renewer.cancel()
            with contextlib.suppress(StoreUnavailable):
                await self._store.release_lock(ref.key(self._lock_part), lock_token)

    async def _acquire(
        self, ref: SessionRef, lock_token: str, reject_access: str | None
    ) -> TokenSet | None:
        """Take the lock (None), or return the pair another replica wrote while we waited."""
        deadline = time.monotonic() + WAIT_LIMIT
        while not await self._store.acquire_lock(
            ref.key(self._lock_part), lock_token, self._lock_ttl
        ):
            await asyncio.sleep(_POLL)
            stored = await self._tokens.load(ref)
            if stored is None:
                raise LoginRequired
            if not self._stale(stored.tokens, reject_access):
                self._metrics.token_refresh_coalesced.inc()
                return stored.tokens
            if time.monotonic() > deadline:
                raise RefreshTransient
        return None

    async def _renew(self, ref: SessionRef, lock_token: str) -> None:
        while True:
            await asyncio.sleep(self._lock_ttl / 3)
            with contextlib.suppress(StoreUnavailable):
                await self._store.renew_lock(ref.key(self._lock_part), lock_token, self._lock_ttl)

    async def _spend(self, ref: SessionRef, stored: StoredTokens, ttl: float) -> TokenSet:
        refresh_token = stored.tokens.refresh_token
        if refresh_token is None:  # offline_access was not granted: nothing to refresh with
            await self._end_session(ref, "reauth")
            raise ReauthRequired
        started = time.perf_counter()
        result = await self._client.refresh(refresh_token)
        self._metrics.token_refresh_duration.observe(time.perf_counter() - started)
        if isinstance(result, Updated):
            return await self._persist(ref, stored, result, ttl)
        if isinstance(result, Refused):
            return await self._refused(ref, refresh_token, result)
        if isinstance(result, Misconfigured):
            self._metrics.token_refresh.labels("client_error").inc()
            log.error("token_refresh_client_error", error=result.error)
            raise AuthMisconfigured
        self._metrics.token_refresh.labels("transient_error").inc()
        log.warning("token_refresh_transient_error", reason=result.reason)
        raise RefreshTransient

    async def _persist(
        self, ref: SessionRef, stored: StoredTokens, result: Updated, ttl: float
    ) -> TokenSet:
        outcome = "success" if result.rotated else "success_no_rotation"
        self._metrics.token_refresh.labels(outcome).inc()
        self._metrics.token_refresh_last_success.set(time.time())
        if not result.rotated:
            log.warning("token_refresh_no_rotation")
        deadline = time.monotonic() + PERSIST_RETRY_FOR
        delay = 0.05
        while True:
            try:
                written = await self._tokens.replace(ref, stored.raw, result.tokens, ttl)
            except StoreUnavailable:
                if time.monotonic() > deadline:
                    self._metrics.session_store_errors.labels("save_tokens").inc()
                    log.critical("refresh_token_persist_failed")
                    return result.tokens
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
                continue
            if written is None:
                log.warning("token_refresh_write_conflict")
            log.info("token_refreshed", rotated=result.rotated)
            return result.tokens

    async def _refused(self, ref: SessionRef, spent: str, result: Refused) -> TokenSet:
        # A refusal right after someone else rotated the pair is a lost race, not a dead grant.
        again = await self._tokens.load(ref)
        if again is not None and again.tokens.refresh_token != spent:
            self._metrics.token_refresh_coalesced.inc()
            return again.tokens
        self._metrics.token_refresh.labels("rejected").inc()
        log.info("token_refresh_rejected", error=result.error)
        await self._end_session(ref, "reauth")
        raise ReauthRequired
