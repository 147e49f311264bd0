"""The ``/mcp`` routes: the streaming proxy (streamable HTTP and legacy SSE) and the MCP consent
(``/auth/mcp/login`` and ``/auth/mcp/callback``).
"""

from __future__ import annotations

import asyncio
import contextlib
from urllib.parse import quote

import aiohttp
import structlog
from aiohttp import web
from aiohttp_session import get_session
from multidict import CIMultiDict

from sidecar.auth.browser import browser_of, login_browser, remember_browser
from sidecar.auth.flow import Misconfigured, Transient, Updated, new_pkce, safe_return_to
from sidecar.auth.sessions import require_session
from sidecar.auth.tokens import SessionRef
from sidecar.auth.views import AccessDenied
from sidecar.errors import AuthMisconfigured, BadRequest, McpLoginRequired, RefreshTransient
from sidecar.keys import (
    FORWARDER,
    MCP_AUTH,
    METRICS,
    OPEN_STREAMS,
    PENDING,
    REQUEST_ID,
    SESSIONS,
    SETTINGS,
)
from sidecar.mcp.metadata import authorize_url
from sidecar.mcp.sse import RelayEnd, relay_events, rewrite_endpoint_event
from sidecar.mcp.targets import rewrite_endpoint, upstream_url
from sidecar.proxy.headers import response_headers
from sidecar.responses import SECURITY_HEADERS, json_response, redirect

__all__ = [
    "McpStreamResponse",
    "close_streams",
    "disconnect",
    "mcp_callback",
    "mcp_login",
    "mcp_proxy",
]

log = structlog.get_logger("sidecar.mcp")

_RETURN_PREFIX = "mcp:"  # marks pending states issued by /auth/mcp/login
_SSE_HEADERS = {"Cache-Control": "no-cache, no-transform", "X-Accel-Buffering": "no"}


class McpStreamResponse(web.StreamResponse):
    """An event stream being relayed; ``closing`` ends it cleanly (shutdown)."""

    def __init__(self, *, status: int, reason: str | None, headers: CIMultiDict[str]) -> None:
        super().__init__(status=status, reason=reason, headers=headers)
        self.closing = asyncio.Event()


def mcp_login_url(return_to: str) -> str:
    """Where a person connects the MCP server and comes back to ``return_to``."""
    return "/auth/mcp/login?return_to=" + quote(return_to, safe="")


def _mcp_login_required(request: web.Request, error: McpLoginRequired) -> web.Response:
    body = {
        "error": error.code,
        "message": error.message,
        "request_id": request.get(REQUEST_ID, ""),
        "login_url": mcp_login_url("/"),
    }
    return json_response(body, error.status, {"X-Sidecar-Error": error.code})


async def mcp_proxy(request: web.Request) -> web.StreamResponse:
    """Forward an MCP request (any method) with the session's MCP bearer token."""
    app = request.app
    settings = app[SETTINGS].upstream
    url = upstream_url(settings.mcp_url, request.raw_path)
    if url is None:
        raise web.HTTPNotFound
    ctx = await require_session(request, app[SESSIONS])
    auth = app[MCP_AUTH]

    async def token(rejected: str | None) -> str:
        return await auth.access_token(ctx, rejected)

    async def relay(
        req: web.Request, upstream: aiohttp.ClientResponse, head: bytes
    ) -> web.StreamResponse:
        return await _relay_stream(req, upstream, head, settings.mcp_url)

    # Ask the MCP server for an uncompressed answer: a compressed event stream is a buffered one.
    headers = CIMultiDict(request.headers)
    headers.popall("Accept-Encoding", None)
    outgoing = request.clone(headers=headers)
    try:
        return await app[FORWARDER].forward(
            outgoing,
            product="mcp",
            url=url,
            token=token,
            stream_relay=relay,
            # a redirect on the MCP server's origin comes back through the sidecar
            rewrite_location=lambda location: rewrite_endpoint(location, url, settings.mcp_url),
        )
    except McpLoginRequired as exc:
        return _mcp_login_required(request, exc)


async def _relay_stream(
    request: web.Request, upstream: aiohttp.ClientResponse, head: bytes, mcp_url: str
) -> web.StreamResponse:
    app = request.app
    settings = app[SETTINGS].upstream
    headers = response_headers(upstream.headers)
    for name in ("Content-Length", "Content-Encoding"):
        headers.popall(name, None)
    headers.update(_SSE_HEADERS)
    response = McpStreamResponse(status=upstream.status, reason=upstream.reason, headers=headers)
    stream_url = str(upstream.url)

    def rewrite(event: bytes) -> bytes:
        return rewrite_endpoint_event(
            event, lambda data: rewrite_endpoint(data, stream_url, mcp_url)
        )

    gauge = app[METRICS].open_streams.labels("mcp")
    gauge.inc()
    app[OPEN_STREAMS].add(response)
    try:
        await response.prepare(request)
        if head:
            await response.write(head)
        end = await relay_events(
            upstream,
            response,
            heartbeat=settings.sse_heartbeat,
            idle_limit=settings.read_timeout,
            closing=response.closing,
            rewrite=rewrite,
        )
        if end in {RelayEnd.EOF, RelayEnd.SHUTDOWN}:
            with contextlib.suppress(ConnectionResetError, aiohttp.ClientConnectionResetError):
                await response.write_eof()
        elif end == RelayEnd.CLIENT_GONE:
            upstream.close()
        else:  # idle or broken upstream: the client must see a truncated stream, not an end
            log.warning(
                "upstream_read_timeout" if end == RelayEnd.IDLE else "upstream_stream_broken",
                product="mcp",
            )
            app[METRICS].upstream_requests.labels("mcp", "aborted").inc()
            upstream.close()
            if request.transport is not None:
                request.transport.abort()
        log.debug("mcp_stream_ended", reason=end)
    except (ConnectionResetError, aiohttp.ClientConnectionResetError):
        upstream.close()
    finally:
        gauge.dec()
        app[OPEN_STREAMS].discard(response)
    return response


async def close_streams(app: web.Application) -> None:
    """on_shutdown: end every relayed event stream cleanly before connections are closed."""
    streams = app[OPEN_STREAMS]
    for response in list(streams):
        if isinstance(response, McpStreamResponse):
            response.closing.set()


def _return_to(value: str | None) -> str:
    return safe_return_to(value) or "/"


async def mcp_login(request: web.Request) -> web.StreamResponse:
    """Start the MCP consent for the signed-in user (a second consent, on the MCP's own issuer)."""
    app = request.app
    settings = app[SETTINGS]
    return_to = _return_to(request.query.get("return_to"))
    session = await get_session(request)
    if session.new or session.empty:  # sign in first, then come back here
        here = mcp_login_url(return_to)
        return redirect("/auth/login?return_to=" + quote(here, safe=""))
    auth = app[MCP_AUTH]
    if auth.mode != "oauth":
        return redirect(return_to)  # /mcp uses the 3LO token: nothing to connect
    found = await auth.oauth.discover()
    registration = await auth.oauth.registration(found)
    browser, browser_cookie = login_browser(request, settings.session)
    verifier, challenge = new_pkce()
    state = await app[PENDING].begin(browser, verifier, _RETURN_PREFIX + return_to)
    location = authorize_url(
        found.server,
        registration,
        redirect_uri=auth.oauth.redirect_uri,
        state=state,
        code_challenge=challenge,
        resource=found.resource.resource,
        scopes=found.scopes,
    )
    response = redirect(location)
    remember_browser(response, settings.session, browser_cookie)
    log.info("mcp_login_started")
    return response


async def mcp_callback(request: web.Request) -> web.StreamResponse:
    """Finish the MCP consent: check the state, exchange the code, keep the MCP pair sealed."""
    app = request.app
    state = request.query.get("state", "")
    browser = browser_of(request, app[SETTINGS].session)
    pending = await app[PENDING].take(browser, state) if state else None
    if pending is None or not pending.return_to.startswith(_RETURN_PREFIX):
        log.info("mcp_login_state_invalid")
        raise BadRequest(
            "This MCP sign-in link is not valid any more (unknown, used or expired state)."
        )
    return_to = pending.return_to[len(_RETURN_PREFIX) :]
    if "error" in request.query:
        log.info("mcp_login_denied", error=request.query["error"][:64])
        raise AccessDenied("Access to the Atlassian MCP server was not granted.")
    code = request.query.get("code", "")
    if not code:
        raise BadRequest("The callback carries no authorization code.")
    ctx = await require_session(request, app[SESSIONS])
    auth = app[MCP_AUTH]
    result = await auth.oauth.exchange_code(code, pending.verifier)
    if not isinstance(result, Updated):
        log.warning("mcp_login_exchange_failed", outcome=type(result).__name__)
        if isinstance(result, Transient):
            raise RefreshTransient("The MCP authorization server is unavailable; try again.")
        if isinstance(result, Misconfigured):
            raise AuthMisconfigured("The MCP authorization server refused the sidecar's client.")
        raise BadRequest("The MCP authorization server refused the code; connect again.")
    await auth.tokens.save(ctx.ref, result.tokens, ctx.ttl)
    log.info("mcp_login_succeeded")
    return redirect(return_to)


async def disconnect(request: web.Request) -> web.StreamResponse:
    """Forget this session's MCP pair (POST /auth/mcp/logout)."""
    session = await get_session(request)
    ref = SessionRef.parse(session.identity) if not session.new else None
    if ref is not None:
        await request.app[MCP_AUTH].tokens.delete(ref)
    return web.Response(status=204, headers=SECURITY_HEADERS)
