"""The HTTP server the sidecar runs on: aiohttp's, except that a request too malformed to reach
the application (an over-long header line, a broken request line) gets the contract's 400
without an echo of what was sent, and is logged without its bytes. aiohttp's own answer quotes
the offending line back, which would put a session cookie in a response body and a log line.
"""

from __future__ import annotations

import json
import secrets
from typing import Any

import structlog
from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest
from aiohttp.web_server import Server

from sidecar.responses import SECURITY_HEADERS

__all__ = ["SidecarRunner"]

log = structlog.get_logger("sidecar.server")


class _SafeRequestHandler(RequestHandler):
    def handle_error(
        self,
        request: BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if status >= 500:  # the application's own failures are answered by error_middleware
            return super().handle_error(request, status, exc, message)
        if request.writer.output_size > 0:
            raise ConnectionError("a response is already under way")
        log.info("malformed_request", status=status, error=type(exc).__name__)
        code = "payload_too_large" if status == 413 else "bad_request"
        body = {
            "error": code,
            "message": "Malformed HTTP request.",
            "request_id": secrets.token_hex(8),
        }
        response = web.Response(
            status=status,
            body=json.dumps(body).encode(),
            content_type="application/json",
            headers={**SECURITY_HEADERS, "X-Sidecar-Error": code},
        )
        response.force_close()
        return response


class _SafeServer(Server):
    def __call__(self) -> RequestHandler:
        return _SafeRequestHandler(self, loop=self._loop, **self._kwargs)


class SidecarRunner(web.AppRunner):
    """An AppRunner whose connections answer malformed requests safely."""

    async def _make_server(self) -> Server:
        server: Any = await super()._make_server()
        server.__class__ = _SafeServer  # same state; only how connections are made differs
        return server  # type: ignore[no-any-return]
