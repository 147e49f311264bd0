"""Request-wide concerns: request ids and the access line, contract errors, path safety, CSRF."""

from __future__ import annotations

import asyncio
import re
import secrets
import time

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from sidecar.cors import CorsPolicy, is_preflight, origin_of_url
from sidecar.errors import (
    BadRequest,
    CsrfFailed,
    LoginRequired,
    MethodNotAllowed,
    NotFound,
    SidecarError,
)
from sidecar.keys import CORS_POLICY, METRICS, REQUEST_ID, ROUTE, SENT_STATUS, UPSTREAM_ACCESS
from sidecar.proxy.targets import has_dot_segment
from sidecar.responses import SECURITY_HEADERS, error_response, is_navigation, login_url, redirect

__all__ = [
    "context_middleware",
    "cors_middleware",
    "cors_on_prepare",
    "csrf_middleware",
    "error_middleware",
    "path_middleware",
    "request_is_same_site",
]

log = structlog.get_logger("sidecar.access")

CLIENT_CLOSED = 499
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
    sent: int | None = None
    try:
        response = await handler(request)
        status = response.status
        sent = (
            response.content_length
            if response.content_length is not None
            else (response.body_length)
        )
        return response
    except web.HTTPException as exc:
        status = exc.status
        raise
    except asyncio.CancelledError:
        # The client went away: what it was sent (a stream's 200), else nginx's 499.
        status = request.get(SENT_STATUS, CLIENT_CLOSED)
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
                bytes=sent,
                **request.get(UPSTREAM_ACCESS, {}),
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
    except web.HTTPException as exc:
        if exc.status in {404, 405}:  # the router's own answers, in the contract's shape
            error = NotFound() if exc.status == 404 else MethodNotAllowed()
            answer = error_response(request, error, request[REQUEST_ID])
            if "Allow" in exc.headers:
                answer.headers["Allow"] = exc.headers["Allow"]
            return answer
        if exc.status >= 400:
            for name, value in SECURITY_HEADERS.items():
                exc.headers.setdefault(name, value)
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


def request_is_same_site(request: web.Request, policy: CorsPolicy) -> bool:
    """Whether a state-changing request may ride on the cookie: Origin, then Sec-Fetch-Site,
    then Referer, the first one present decides.

    - ``Origin`` must be the sidecar's own origin or one in ``SIDECAR_ALLOWED_ORIGINS``
      (``null`` never is). Browsers send it on every non-GET/HEAD request.
    - Without it, ``Sec-Fetch-Site`` must be ``same-origin`` or ``none`` (typed by the user).
    - Without both, the ``Referer``'s origin must be trusted.
    - With none of the three the request is no browser's (curl, a server-side client): a page
      cannot make a browser drop all of them on an unsafe method, so it is let through, and the
      cookie it carries was given to that client on purpose.
    """
    origin = request.headers.get("Origin")
    if origin is not None:
        return policy.trusts(origin)
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None:
        return fetch_site.strip().lower() in {"same-origin", "none"}
    referer = request.headers.get("Referer")
    if referer is not None:
        return policy.trusts(origin_of_url(referer))
    return True


@web.middleware
async def csrf_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Unsafe methods (anything but GET, HEAD, OPTIONS; unknown ones included) must come from
    this origin or an allowed one, whether or not a cookie rides along: 403 ``csrf_failed``
    before any session is read or anything is sent upstream.
    """
    if request.method not in _SAFE_METHODS and not request_is_same_site(
        request, request.app[CORS_POLICY]
    ):
        request.app[METRICS].proxy_rejected.labels("csrf").inc()
        raise CsrfFailed
    return await handler(request)


@web.middleware
async def cors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Answer CORS preflights here (they carry no cookie and must never reach Atlassian).

    A trusted origin asking for an allowed method gets 204; anything else gets 403 with no
    ``Access-Control-*`` header, so the browser refuses the request it wanted to make. The
    CORS headers themselves are written by ``cors_on_prepare`` on every answer.
    """
    if not is_preflight(request.method, request.headers):
        return await handler(request)
    policy = request.app[CORS_POLICY]
    allowed = policy.preflight_headers(
        request.headers.get("Origin"),
        request.headers.get("Access-Control-Request-Method", ""),
        request.headers.get("Access-Control-Request-Headers", ""),
    )
    if allowed is None:
        request.app[METRICS].proxy_rejected.labels("cors").inc()
        raise CsrfFailed("Cross-origin request from an origin that is not allowed.")
    return web.Response(status=204, headers=SECURITY_HEADERS)


_VARY = ("Origin",)
_PREFLIGHT_VARY = ("Origin", "Access-Control-Request-Method", "Access-Control-Request-Headers")


async def cors_on_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: on every answer, streamed ones included, drop any
    ``Access-Control-*`` header (Atlassian's describe Atlassian) and add ours for trusted
    origins, so a frontend can read 401/403 errors as well as proxied answers.
    """
    for name in {k for k in response.headers if k.lower().startswith("access-control-")}:
        del response.headers[name]
    policy = request.app[CORS_POLICY]
    origin = request.headers.get("Origin")
    if is_preflight(request.method, request.headers):
        headers = policy.preflight_headers(
            origin,
            request.headers.get("Access-Control-Request-Method", ""),
            request.headers.get("Access-Control-Request-Headers", ""),
        )
        vary: tuple[str, ...] = _PREFLIGHT_VARY
    else:
        headers = policy.response_headers(origin)
        vary = _VARY
    response.headers.update(headers or {})
    present = {v.strip().lower() for v in response.headers.get("Vary", "").split(",")}
    if "*" not in present:
        missing = [v for v in vary if v.lower() not in present]
        if missing:
            current = response.headers.get("Vary")
            response.headers["Vary"] = ", ".join([current, *missing] if current else missing)
