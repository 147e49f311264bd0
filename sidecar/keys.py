"""Every typed application and request key, in one place (handlers import keys, never app)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    import weakref

    import aiohttp

    from sidecar.auth.client import AtlassianAuthClient
    from sidecar.auth.model import SessionRecord
    from sidecar.auth.pending import PendingLogins
    from sidecar.auth.refresh import RefreshCoordinator
    from sidecar.auth.sessions import SessionRepository
    from sidecar.config import Settings
    from sidecar.cors import CorsPolicy
    from sidecar.mcp.tokens import McpAuth
    from sidecar.metrics import Metrics
    from sidecar.proxy.forward import Forwarder
    from sidecar.store.base import KeyValueStore

__all__ = [
    "AUTH_CLIENT",
    "CLOCK",
    "CORS_POLICY",
    "FORWARDER",
    "MCP_AUTH",
    "METRICS",
    "OPEN_STREAMS",
    "PENDING",
    "PRELOADED_TOKENS",
    "PROXY_HTTP",
    "REFRESHER",
    "REQUEST_ID",
    "ROUTE",
    "SENT_STATUS",
    "SESSIONS",
    "SESSION_RECORD",
    "SETTINGS",
    "STORE",
    "UPSTREAM_ACCESS",
]

SETTINGS: web.AppKey[Settings] = web.AppKey("settings")
CORS_POLICY: web.AppKey[CorsPolicy] = web.AppKey("cors_policy")
METRICS: web.AppKey[Metrics] = web.AppKey("metrics")
CLOCK: web.AppKey[Callable[[], float]] = web.AppKey("clock")
STORE: web.AppKey[KeyValueStore] = web.AppKey("store")
SESSIONS: web.AppKey[SessionRepository] = web.AppKey("sessions")
PENDING: web.AppKey[PendingLogins] = web.AppKey("pending_logins")
REFRESHER: web.AppKey[RefreshCoordinator] = web.AppKey("refresher")
AUTH_CLIENT: web.AppKey[AtlassianAuthClient] = web.AppKey("auth_client")
PROXY_HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("proxy_http")
FORWARDER: web.AppKey[Forwarder] = web.AppKey("forwarder")
MCP_AUTH: web.AppKey[McpAuth] = web.AppKey("mcp_auth")
OPEN_STREAMS: web.AppKey[weakref.WeakSet[web.StreamResponse]] = web.AppKey("open_streams")

SESSION_RECORD: web.RequestKey[SessionRecord] = web.RequestKey("session_record")
PRELOADED_TOKENS: web.RequestKey[bytes] = web.RequestKey("preloaded_tokens", bytes)
SENT_STATUS: web.RequestKey[int] = web.RequestKey("sent_status", int)
UPSTREAM_ACCESS: web.RequestKey[dict[str, object]] = web.RequestKey("upstream_access")
REQUEST_ID: web.RequestKey[str] = web.RequestKey("request_id", str)
ROUTE: web.RequestKey[str] = web.RequestKey("route", str)
