"""Composition root: builds the public and metrics applications from Settings."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

import aiohttp
import structlog
from aiohttp import web
from aiohttp_session import session_middleware

from sidecar.auth import views as auth_views
from sidecar.auth.client import AtlassianAuthClient
from sidecar.auth.pending import PendingLogins
from sidecar.auth.refresh import RefreshCoordinator
from sidecar.auth.seal import Sealer
from sidecar.auth.sessions import SealedSessionStorage, SessionRepository
from sidecar.auth.tokens import SessionRef, TokenStore
from sidecar.config import Settings
from sidecar.cors import CorsPolicy
from sidecar.errors import StoreUnavailable
from sidecar.health import livez, metrics_view, readyz
from sidecar.keys import (
    AUTH_CLIENT,
    CLOCK,
    CORS_POLICY,
    FORWARDER,
    METRICS,
    PENDING,
    PROXY_HTTP,
    REFRESHER,
    REQUEST_ID,
    SENT_STATUS,
    SESSIONS,
    SETTINGS,
    STORE,
)
from sidecar.mcp.setup import setup_mcp
from sidecar.metrics import Metrics
from sidecar.middlewares import (
    context_middleware,
    cors_middleware,
    cors_on_prepare,
    csrf_middleware,
    error_middleware,
    path_middleware,
)
from sidecar.proxy.forward import Forwarder
from sidecar.proxy.views import proxy_handler
from sidecar.store.base import KeyValueStore
from sidecar.store.memory import MemoryStore
from sidecar.store.redis import RedisStore, connect_redis

__all__ = ["Overrides", "create_app", "create_metrics_app"]

log = structlog.get_logger("sidecar.app")


@dataclass(frozen=True)
class Overrides:
    """What tests and the dev command may swap: the clock, the store, the metrics registry."""

    clock: Callable[[], float] | None = None
    store: KeyValueStore | None = None
    metrics: Metrics | None = None


def _build_store(settings: Settings, metrics: Metrics) -> KeyValueStore:
    if settings.redis.url is None:
        log.warning(
            "in_process_store",
            detail="sessions live in this process only; set SIDECAR_REDIS_URL for replicas",
        )
        return MemoryStore()
    client = connect_redis(settings.redis.url.value, cluster=settings.redis.cluster)
    return RedisStore(client, on_error=_store_error_reporter(metrics))


# An outage fails every request: count each failure, log at most one line per interval.
STORE_ERROR_LOG_INTERVAL = 10.0


def _store_error_reporter(metrics: Metrics) -> Callable[[str], None]:
    last_logged = -STORE_ERROR_LOG_INTERVAL
    suppressed = 0

    def report(operation: str) -> None:
        nonlocal last_logged, suppressed
        metrics.session_store_errors.labels(operation).inc()
        now = time.monotonic()
        if now - last_logged < STORE_ERROR_LOG_INTERVAL:
            suppressed += 1
            return
        log.error("session_store_error", operation=operation, suppressed_since_last=suppressed)
        last_logged, suppressed = now, 0

    return report


def create_app(settings: Settings, *, overrides: Overrides | None = None) -> web.Application:
    """The public application: auth routes, proxied routes, health."""
    overrides = overrides or Overrides()
    metrics = overrides.metrics or Metrics()
    clock = overrides.clock or time.time
    store = overrides.store or _build_store(settings, metrics)
    owns_store = overrides.store is None
    sealer = Sealer(tuple(k.value.encode() for k in settings.session.secret_keys))
    tokens = TokenStore(store, sealer)
    repository = SessionRepository(store, sealer, tokens, settings.session, metrics, clock)

    app = web.Application(
        middlewares=[
            context_middleware,
            error_middleware,
            path_middleware,
            cors_middleware,
            csrf_middleware,
            session_middleware(SealedSessionStorage(repository, settings.session)),
        ],
        client_max_size=1024 * 1024,
    )
    app[SETTINGS] = settings
    app[CORS_POLICY] = CorsPolicy.build(settings.oauth.public_url, settings.server.allowed_origins)
    app[METRICS] = metrics
    app[CLOCK] = clock
    app[STORE] = store
    app[SESSIONS] = repository
    app[PENDING] = PendingLogins(store, sealer, clock)

    app.cleanup_ctx.append(_clients(settings, tokens, repository, owns_store=owns_store))
    _cut_streams_at_grace(app, settings.server.shutdown_timeout)
    setup_mcp(app, settings, store=store, sealer=sealer, metrics=metrics, clock=clock)
    app.on_response_prepare.extend((_add_request_id, cors_on_prepare))
    _add_routes(app)
    return app


async def _add_request_id(request: web.Request, response: web.StreamResponse) -> None:
    request[SENT_STATUS] = response.status
    if REQUEST_ID in request:
        response.headers["X-Request-ID"] = request[REQUEST_ID]


def _cut_streams_at_grace(app: web.Application, grace: float) -> None:
    """On shutdown, streams still running just before the grace period ends are cut, so the
    process exits in time (aiohttp alone would wait for handlers, then again after cancelling).
    """
    pending: set[asyncio.Task[None]] = set()

    async def cut_later() -> None:
        await asyncio.sleep(max(0.0, grace - 0.5))
        cut = app[FORWARDER].close_streams()
        if cut:
            log.warning("streams_cut_at_shutdown", count=cut)

    async def on_shutdown(_app: web.Application) -> None:
        task = asyncio.create_task(cut_later())
        pending.add(task)
        task.add_done_callback(pending.discard)

    async def on_cleanup(_app: web.Application) -> None:
        for task in list(pending):
            task.cancel()

    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)


def _add_routes(app: web.Application) -> None:
    app.router.add_get("/auth/login", auth_views.login)
    app.router.add_get("/auth/callback", auth_views.callback)
    app.router.add_post("/auth/logout", auth_views.logout)
    app.router.add_get("/auth/session", auth_views.session_info)
    app.router.add_get("/livez", livez)
    app.router.add_get("/readyz", readyz)
    for prefix in ("jira", "wiki"):
        app.router.add_route("*", f"/{prefix}/{{site}}", proxy_handler)
        app.router.add_route("*", f"/{prefix}/{{site}}/{{path:.*}}", proxy_handler)


def _clients(
    settings: Settings, tokens: TokenStore, repository: SessionRepository, *, owns_store: bool
) -> Callable[[web.Application], AsyncIterator[None]]:
    """The cleanup context owning the HTTP client sessions, the refresher and the store."""

    async def end_session(ref: SessionRef, reason: str) -> None:
        await repository.end_by_ref(ref, reason)

    async def clients(app: web.Application) -> AsyncIterator[None]:
        store, metrics, clock = app[STORE], app[METRICS], app[CLOCK]
        try:
            # One round trip before serving: connects (and, for Cluster, learns the slot map)
            # before traffic arrives, and says early when the store is unreachable.
            await store.ping()
        except StoreUnavailable:
            log.warning("session_store_unreachable_at_start")
        upstream = settings.upstream
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=0, ttl_dns_cache=300)
        proxy_http = aiohttp.ClientSession(
            connector=connector,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=upstream.connect_timeout, connect=upstream.connect_timeout
            ),
        )
        auth_http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        auth_client = AtlassianAuthClient(auth_http, settings.oauth, metrics, clock)
        refresher = RefreshCoordinator(
            tokens,
            store,
            auth_client,
            metrics,
            skew=settings.session.refresh_skew,
            end_session=end_session,
            clock=clock,
        )
        app[PROXY_HTTP] = proxy_http
        app[AUTH_CLIENT] = auth_client
        app[REFRESHER] = refresher
        app[FORWARDER] = Forwarder(proxy_http, upstream, metrics)
        yield
        await refresher.drain(settings.server.shutdown_timeout)
        await proxy_http.close()
        await auth_http.close()
        if owns_store:
            await store.close()

    return clients


def create_metrics_app(metrics: Metrics) -> web.Application:
    """The metrics listener's application (a separate port, never public)."""
    app = web.Application()
    app[METRICS] = metrics
    app.router.add_get("/metrics", metrics_view)
    return app
