"""The streaming forwarder: one upstream request per client request (two when a 401 calls for a
refresh and the request can be replayed), bodies streamed both ways, never decompressed.

Timeouts: connecting is bounded; the wait for response headers is bounded from the moment the
request body has been sent; while a response streams, only silence longer than the idle limit
ends it, never a total deadline. A failure before the response headers go out is a contract
error; after, the client connection is aborted and the failure logged and counted.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp
import structlog
from aiohttp import web
from yarl import URL

from sidecar.config import UpstreamSettings
from sidecar.errors import BadRequest, PayloadTooLarge, UpstreamTimeout, UpstreamUnavailable
from sidecar.keys import UPSTREAM_ACCESS
from sidecar.metrics import Metrics
from sidecar.proxy.headers import request_headers, response_headers

__all__ = ["REPLAY_LIMIT", "Forwarder", "StreamRelay", "TokenProvider"]

log = structlog.get_logger("sidecar.proxy")

# Bodies up to this size are read before sending so the request can be replayed once after a
# refresh; larger ones stream and are never replayed.
REPLAY_LIMIT = 64 * 1024
_CHUNK = 64 * 1024
_SCOPE_MISMATCH = b"scope does not match"

TokenProvider = Callable[[str | None], Awaitable[str]]
"""Gives the access token to use; given the token Atlassian just refused, forces a refresh."""

StreamRelay = Callable[[web.Request, aiohttp.ClientResponse, bytes], Awaitable[web.StreamResponse]]
"""Relays a ``text/event-stream`` answer in place of the byte pump (the MCP route's SSE relay)."""


@dataclass
class _Body:
    data: bytes | None
    stream: AsyncIterator[bytes] | None
    length: int | None

    @property
    def replayable(self) -> bool:
        return self.stream is None


class _Limit:
    """Counts streamed request bytes and remembers whether the maximum was passed."""

    def __init__(self, maximum: int) -> None:
        self.maximum = maximum
        self.exceeded = False


class Forwarder:
    """Forwards one client request to an upstream URL with a bearer token."""

    def __init__(
        self, http: aiohttp.ClientSession, settings: UpstreamSettings, metrics: Metrics
    ) -> None:
        self._http = http
        self._settings = settings
        self._metrics = metrics
        self._live: weakref.WeakSet[aiohttp.ClientResponse] = weakref.WeakSet()

    def close_streams(self) -> int:
        """Cut every response still streaming (shutdown past its grace); how many there were."""
        live = list(self._live)
        for upstream in live:
            upstream.close()
        return len(live)

    async def forward(
        self,
        request: web.Request,
        *,
        product: str,
        url: str,
        token: TokenProvider,
        rewrite_location: Callable[[str], str] = lambda value: value,
        stream_relay: StreamRelay | None = None,
    ) -> web.StreamResponse:
        """Send ``request`` to ``url`` and stream the answer back."""
        limit = _Limit(self._settings.max_body_bytes)
        body = await self._body(request, limit)
        access = await token(None)
        upstream = await self._send(request, url, access, body, product, limit)
        if upstream.status != 401:
            return await self._respond(
                stream_relay, request, upstream, product, rewrite_location, b""
            )
        # A 401 for a token we believed valid (revoked early, clock skew): refresh once, and
        # replay once when the body was kept. "Scope does not match" is configuration, not
        # expiry: refreshing cannot help, so it passes through untouched.
        peeked = await self._peek(upstream)
        if _SCOPE_MISMATCH in peeked:
            log.info("upstream_scope_mismatch", product=product)
            self._metrics.upstream_auth_errors.labels("scope_mismatch").inc()
            return await self._respond(
                stream_relay, request, upstream, product, rewrite_location, peeked
            )
        if not body.replayable:
            await token(access)  # the next request gets the new token
            return await self._respond(
                stream_relay, request, upstream, product, rewrite_location, peeked
            )
        upstream.release()
        access = await token(access)
        upstream = await self._send(request, url, access, body, product, limit)
        return await self._respond(stream_relay, request, upstream, product, rewrite_location, b"")

    async def _respond(
        self,
        stream_relay: StreamRelay | None,
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        product: str,
        rewrite_location: Callable[[str], str],
        head: bytes,
    ) -> web.StreamResponse:
        if stream_relay is not None and upstream.content_type == "text/event-stream":
            try:
                return await stream_relay(request, upstream, head)
            finally:
                upstream.release()
        return await self._relay(request, upstream, product, rewrite_location, head)

    async def _peek(self, upstream: aiohttp.ClientResponse) -> bytes:
        """Up to REPLAY_LIMIT bytes of a (small, error) body, read before deciding what to do."""
        head = b""
        async with asyncio.timeout(self._settings.read_timeout):
            while len(head) < REPLAY_LIMIT:
                chunk = await upstream.content.read(REPLAY_LIMIT - len(head))
                if not chunk:
                    break
                head += chunk
        return head

    async def _body(self, request: web.Request, limit: _Limit) -> _Body:
        raw_length = request.headers.get("Content-Length")
        length: int | None = None
        if raw_length is not None:
            if not raw_length.isdigit():
                raise BadRequest("Content-Length is not a number.")
            length = int(raw_length)
            if length > limit.maximum:
                raise PayloadTooLarge
        if not request.body_exists:
            return _Body(None, None, length)
        if length is not None and length <= REPLAY_LIMIT:
            return _Body(await request.content.readexactly(length), None, length)
        return _Body(None, self._stream(request, limit), length)

    async def _stream(self, request: web.Request, limit: _Limit) -> AsyncIterator[bytes]:
        sent = 0
        while True:
            async with asyncio.timeout(self._settings.read_timeout):
                chunk = await request.content.readany()
            if not chunk:
                return
            sent += len(chunk)
            if sent > limit.maximum:
                limit.exceeded = True
                raise PayloadTooLarge
            yield chunk

    async def _send(
        self,
        request: web.Request,
        url: str,
        access: str,
        body: _Body,
        product: str,
        limit: _Limit,
    ) -> aiohttp.ClientResponse:
        loop = asyncio.get_running_loop()
        headers = request_headers(request.headers, access, body.length)
        started = time.perf_counter()
        data: bytes | AsyncIterator[bytes] | None = body.data
        try:
            async with asyncio.timeout(None) as deadline:

                def body_sent() -> None:
                    deadline.reschedule(loop.time() + self._settings.header_timeout)

                if body.stream is not None:
                    data = _then(body.stream, body_sent)
                else:
                    body_sent()
                response = await self._http.request(
                    request.method,
                    URL(url, encoded=True),
                    headers=headers,
                    data=data,
                    allow_redirects=False,
                    skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
                )
        except TimeoutError as exc:
            self._count(product, "504", started)
            raise UpstreamTimeout from exc
        except (aiohttp.ClientError, OSError, PayloadTooLarge) as exc:
            if limit.exceeded:
                raise PayloadTooLarge from exc
            self._count(product, "502", started)
            log.warning("upstream_unavailable", product=product, error=type(exc).__name__)
            raise UpstreamUnavailable from exc
        self._count(product, str(response.status), started)
        if response.status == 429:
            self._metrics.upstream_rate_limited.labels(product).inc()
        return response

    def _count(self, product: str, status: str, started: float) -> None:
        self._metrics.upstream_requests.labels(product, status).inc()
        self._metrics.upstream_duration.labels(product).observe(time.perf_counter() - started)

    async def _relay(
        self,
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        product: str,
        rewrite_location: Callable[[str], str],
        head: bytes,
    ) -> web.StreamResponse:
        request[UPSTREAM_ACCESS] = {"product": product, "upstream_status": upstream.status}
        headers = response_headers(upstream.headers)
        if "Location" in headers:
            headers["Location"] = rewrite_location(headers["Location"])
        response = web.StreamResponse(
            status=upstream.status, reason=upstream.reason, headers=headers
        )
        framing = upstream.headers.get("Transfer-Encoding", "").lower()
        if upstream.content_length is not None and "chunked" not in framing:
            response.content_length = upstream.content_length
        self._live.add(upstream)
        try:
            await response.prepare(request)
            if head:
                await response.write(head)
            await self._pump(request, upstream, response, product)
        except (ConnectionResetError, aiohttp.ClientConnectionResetError):
            upstream.close()  # the client left; drop the upstream connection with it
        finally:
            self._live.discard(upstream)
            upstream.release()
        return response

    async def _pump(
        self,
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        response: web.StreamResponse,
        product: str,
    ) -> None:
        try:
            while True:
                async with asyncio.timeout(self._settings.read_timeout):
                    chunk = await upstream.content.readany()
                if not chunk:
                    break
                await response.write(chunk)
        except (TimeoutError, aiohttp.ClientPayloadError, aiohttp.ClientConnectionError) as exc:
            event = (
                "upstream_read_timeout"
                if isinstance(exc, TimeoutError)
                else "upstream_stream_broken"
            )
            log.warning(event, product=product, error=type(exc).__name__)
            self._metrics.upstream_requests.labels(product, "aborted").inc()
            upstream.close()
            _abort(request)
            return
        await response.write_eof()


def _abort(request: web.Request) -> None:
    """End the client connection without a proper end of body, so it sees a truncated answer."""
    transport = request.transport
    if transport is not None:
        transport.abort()


async def _then(stream: AsyncIterator[bytes], done: Callable[[], None]) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk
    done()
