"""Request-wide concerns: request ids and the access line, contract errors, path safety, CSRF."""

from __future__ import annotations

import re
import secrets
import time
from urllib.parse import urlsplit

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from sidecar.errors import BadRequest, CsrfFailed, LoginRequired, SidecarError
from sidecar.keys import METRICS, REQUEST_ID, ROUTE, SETTINGS
from sidecar.proxy.targets import has_dot_segment
from sidecar.responses import error_response, is_navigation, login_url, redirect

__all__ = ["context_middleware", "csrf_middleware", "error_middleware", "path_middleware"]

log = structlog.get_logger("sidecar.access")

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_PROXIED = ("/jira/", "/wiki/", "/mcp")


def route_group(path: str) -> str:
    """The bounded ``route`` label of a path."""
    if path.startswith("/auth/"):
        return "auth"
    if path.startswith("/jira/"):
        return "jira"
    if path.startswith("/wiki/"):
        return "wiki"
    if path == "/mcp" or path.startswith("/mcp/"):
        return "mcp"
    if path in {"/livez", "/readyz"}:
        return "health"
    return "other"


@web.middleware
async def context_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Request id, structlog context, one access line and the HTTP metrics per request."""
    incoming = request.headers.get("X-Request-ID", "")
    request_id = incoming if _REQUEST_ID.match(incoming) else secrets.token_hex(8)
    route = route_group(request.path)
    request[REQUEST_ID] = request_id
    request[ROUTE] = route
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(request_id=request_id, route=route)
    started = time.perf_counter()
    status = 500
    try:
        response = await handler(request)
        status = response.status
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    finally:
        elapsed = time.perf_counter() - started
        metrics = request.app[METRICS]
        method = request.method if request.method in _METHODS else "other"
        metrics.http_requests.labels(route, method, str(status)).inc()
        metrics.http_duration.labels(route).observe(elapsed)
        if route != "health":
            log.info(
                "request",
                method=request.method,
                path=request.path,
                status=status,
                duration_ms=round(elapsed * 1000, 2),
            )


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Render SidecarError as the contract's answer; unexpected failures as a logged 500."""
    try:
        return await handler(request)
    except LoginRequired as exc:
        if is_navigation(request) and request.path.startswith(_PROXIED):
            return redirect(login_url(request))
        return error_response(request, exc, request[REQUEST_ID])
    except SidecarError as exc:
        return error_response(request, exc, request[REQUEST_ID])
    except web.HTTPException:
        raise
    except Exception:
        log.exception("unhandled_error")
        return error_response(request, SidecarError(), request[REQUEST_ID])


@web.middleware
async def path_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Refuse dot-segments in any encoding, and malformed escapes, before routing matters."""
    path = request.raw_path.partition("?")[0]
    if has_dot_segment(path):
        request.app[METRICS].proxy_rejected.labels("path_traversal").inc()
        raise BadRequest("The path holds a dot-segment or a malformed escape.")
    return await handler(request)


def _origin_of(value: str) -> str | None:
    parts = urlsplit(value)
    if not parts.scheme or not parts.netloc:
        return None
    return f"{parts.scheme}://{parts.netloc}".lower()


def request_is_same_site(request: web.Request, own_origin: str, allowed: tuple[str, ...]) -> bool:
    """Origin, then Sec-Fetch-Site, then Referer; a request with none of them is no browser's."""
    trusted = {own_origin, *allowed}
    origin = request.headers.get("Origin")
    if origin is not None:
        return origin.lower() in trusted
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site in {"same-origin", "none"}
    referer = request.headers.get("Referer")
    if referer is not None:
        return _origin_of(referer) in trusted
    return True


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unsafe methods must come from this origin or an allowed one (cookies ride along)."""
    if request.method not in _SAFE_METHODS:
        settings = request.app[SETTINGS]
        own = _origin_of(settings.oauth.public_url) or ""
        if not request_is_same_site(request, own, settings.server.allowed_origins):
            request.app[METRICS].proxy_rejected.labels("csrf").inc()
            raise CsrfFailed
    return await handler(request)
