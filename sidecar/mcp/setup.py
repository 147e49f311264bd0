"""Wiring of the MCP feature into the public application (called once from ``create_app``)."""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Callable

import aiohttp
from aiohttp import web

from sidecar.auth.refresh import RefreshCoordinator
from sidecar.auth.seal import Sealer
from sidecar.auth.tokens import SessionRef, TokenStore
from sidecar.config import Settings
from sidecar.keys import MCP_AUTH, OPEN_STREAMS, REFRESHER
from sidecar.mcp import views
from sidecar.mcp.oauth import McpOAuthClient
from sidecar.mcp.tokens import MCP_LOCK_PART, MCP_TOKEN_PART, McpAuth
from sidecar.metrics import Metrics
from sidecar.store.base import KeyValueStore

__all__ = ["setup_mcp"]


def setup_mcp(
    app: web.Application,
    settings: Settings,
    *,
    store: KeyValueStore,
    sealer: Sealer,
    metrics: Metrics,
    clock: Callable[[], float],
) -> None:
    """Routes, the MCP token source, and the shutdown hook that ends open event streams."""
    tokens = TokenStore(store, sealer, part=MCP_TOKEN_PART)
    app[OPEN_STREAMS] = weakref.WeakSet()

    async def forget(ref: SessionRef, _reason: str) -> None:
        await tokens.delete(ref)  # a refused MCP grant ends the MCP pair, not the session

    async def context(app: web.Application) -> AsyncIterator[None]:
        http = aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar())
        oauth = McpOAuthClient(
            http,
            mcp_url=settings.upstream.mcp_url,
            redirect_uri=f"{settings.oauth.public_url}/auth/mcp/callback",
            store=store,
            sealer=sealer,
            metrics=metrics,
            clock=clock,
        )
        refresher = RefreshCoordinator(
            tokens,
            store,
            oauth,
            metrics,
            skew=settings.session.refresh_skew,
            end_session=forget,
            clock=clock,
            lock_part=MCP_LOCK_PART,
        )
        app[MCP_AUTH] = McpAuth(
            mode=settings.upstream.mcp_auth,
            tokens=tokens,
            refresher=refresher,
            atlassian=app[REFRESHER],
            oauth=oauth,
        )
        yield
        await refresher.drain(settings.server.shutdown_timeout)
        await http.close()

    app.cleanup_ctx.append(context)
    app.on_shutdown.append(views.close_streams)
    app.router.add_get("/auth/mcp/login", views.mcp_login)
    app.router.add_get("/auth/mcp/callback", views.mcp_callback)
    app.router.add_post("/auth/mcp/logout", views.disconnect)
    app.router.add_route("*", "/mcp", views.mcp_proxy)
    app.router.add_route("*", "/mcp/{path:.*}", views.mcp_proxy)
