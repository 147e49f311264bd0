"""Purpose-built upstreams for proxy tests: a recording API gateway (aiohttp) and a raw socket
server that writes exact response bytes, plus a raw-socket HTTP client.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict

from .harness import SITE_A, SITE_B

__all__ = ["RawUpstream", "Recorded", "RecordingUpstream", "Responder", "raw_request"]

ACCOUNT_ID = "5b10ac8d82e05b22cc7d4ef5"
RESOURCES: list[dict[str, object]] = [
    {
        "id": SITE_B,
        "name": "beta",
        "url": "https://beta.atlassian.net",
        "scopes": ["read:jira-work", "write:jira-work"],
        "avatarUrl": "https://a.example/b.png",
    },
    {
        "id": SITE_A,
        "name": "acme",
        "url": "https://acme.atlassian.net",
        "scopes": ["read:jira-work", "write:jira-work"],
        "avatarUrl": "https://a.example/a.png",
    },
    {
        "id": SITE_A,
        "name": "acme",
        "url": "https://acme.atlassian.net",
        "scopes": ["read:confluence-content.all"],
        "avatarUrl": "https://a.example/a.png",
    },
]


@dataclass
class Recorded:
    """One request as the upstream saw it."""

    method: str
    raw_path: str
    headers: CIMultiDict[str]
    body: bytes


Responder = Callable[[web.Request, Recorded], Awaitable[web.StreamResponse]]


async def _echo(request: web.Request, recorded: Recorded) -> web.StreamResponse:
    return web.json_response({"path": recorded.raw_path, "method": recorded.method})


@dataclass
class RecordingUpstream:
    """Stands in for api.atlassian.com: identity endpoints plus a recording catch-all."""

    requests: list[Recorded] = field(default_factory=list)
    responder: Responder = _echo
    resources: list[dict[str, object]] = field(default_factory=lambda: list(RESOURCES))

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(client_max_size=1 << 40)
        app.router.add_get("/oauth/token/accessible-resources", self._resources)
        app.router.add_get("/me", self._me)
        app.router.add_route("*", "/{tail:.*}", self._record)
        return app

    async def _resources(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response(self.resources)

    async def _me(self, _request: web.Request) -> web.StreamResponse:
        return web.json_response({"account_id": ACCOUNT_ID, "name": "Mia", "email": "m@x.test"})

    async def _record(self, request: web.Request) -> web.StreamResponse:
        recorded = Recorded(
            request.method, request.raw_path, CIMultiDict(request.headers), await request.read()
        )
        self.requests.append(recorded)
        return await self.responder(request, recorded)

    def ex(self) -> list[Recorded]:
        """Requests that reached /ex/…"""
        return [r for r in self.requests if r.raw_path.startswith("/ex/")]


class RawUpstream:
    """A socket server that records each raw request and answers with scripted bytes."""

    def __init__(self) -> None:
        self.requests: list[bytes] = []
        self.answer: Callable[[bytes], Awaitable[list[bytes | float]]] | None = None
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        port = self._server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            body = await reader.readexactly(length) if length else b""
            self.requests.append(head + body)
            assert self.answer is not None
            for part in await self.answer(head):
                if isinstance(part, float):
                    await asyncio.sleep(part)
                else:
                    writer.write(part)
                    await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def raw_request(
    port: int,
    request_target: str,
    headers: dict[str, str],
    method: str = "GET",
    body: bytes = b"",
) -> tuple[int, CIMultiDict[str], bytes, bytes]:
    """Send one HTTP/1.1 request with an exact request line; (status, headers, body, raw head)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"{method} {request_target} HTTP/1.1", "Host: 127.0.0.1", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, rest = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed: CIMultiDict[str] = CIMultiDict()
    for line in header_lines:
        key, _, value = line.partition(":")
        parsed.add(key.strip(), value.strip())
    if parsed.get("Transfer-Encoding", "").lower() == "chunked":
        rest = _dechunk(rest)
    return int(status_line.split(" ")[1]), parsed, rest, head


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out += data[:size]
        data = data[size + 2 :]
    return out


def json_body(value: object) -> bytes:
    """Compact JSON bytes."""
    return json.dumps(value, separators=(",", ":")).encode()
