"""/mcp as a streaming proxy against a scripted MCP upstream (FAKE_MCP): F38, F39, F41, F23 d/e,
heartbeats, Last-Event-ID, the legacy SSE endpoint rewrite, and clean shutdown.

These run with SIDECAR_MCP_AUTH=atlassian-token so the upstream sees the session's 3LO token;
the MCP OAuth is covered in test_mcp_oauth.py.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import aiohttp
import pytest
import structlog
from aiohttp import web
from multidict import CIMultiDict
from pytest_aiohttp import AiohttpServer

from ..harness import Sidecar, Stack

Script = Callable[[web.Request], Awaitable[web.StreamResponse]]
PROGRESS = b'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress"}\n\n'


@dataclass
class FakeMcp:
    """A scripted MCP server that records what reached it."""

    script: Script | None = None
    seen: list[tuple[str, str, CIMultiDict[str], bytes]] = field(default_factory=list)
    sent_at: list[float] = field(default_factory=list)

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        return app

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append(
            (request.method, request.raw_path, CIMultiDict(request.headers), await request.read())
        )
        assert self.script is not None
        return await self.script(request)

    async def sse(self, request: web.Request, parts: list[bytes | float]) -> web.StreamResponse:
        """200 text/event-stream writing ``parts`` (bytes, or seconds to wait), then staying open
        until the peer leaves."""
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for part in parts:
            if isinstance(part, float):
                await asyncio.sleep(part)
            else:
                await response.write(part)
                self.sent_at.append(time.monotonic())
        await asyncio.sleep(3600)
        return response


@pytest.fixture
async def fake_mcp(aiohttp_server: AiohttpServer) -> tuple[FakeMcp, str]:
    fake = FakeMcp()
    server = await aiohttp_server(fake.app())
    return fake, str(server.make_url("/v1/mcp"))


async def _sidecar(stack: Stack, mcp_url: str, **env: str) -> Sidecar:
    sidecar = await stack.sidecar(
        {"SIDECAR_MCP_URL": mcp_url, "SIDECAR_MCP_AUTH": "atlassian-token", **env}
    )
    await sidecar.login()
    return sidecar


def _cookie_header(sidecar: Sidecar) -> dict[str, str]:
    cookie = sidecar.cookie()
    assert cookie is not None
    return {"Cookie": f"{sidecar.settings.session.cookie_name}={cookie}"}


async def _read_events(
    resp: aiohttp.ClientResponse, count: int, limit: float
) -> list[tuple[float, bytes]]:
    """The next ``count`` blank-line-terminated blocks, each with its arrival time."""
    got: list[tuple[float, bytes]] = []
    buffer = b""
    async with asyncio.timeout(limit):
        while len(got) < count:
            chunk = await resp.content.readany()
            assert chunk, "stream ended early"
            buffer += chunk
            while b"\n\n" in buffer and len(got) < count:
                block, _, buffer = buffer.partition(b"\n\n")
                got.append((time.monotonic(), block + b"\n\n"))
    return got


async def _drain(resp: aiohttp.ClientResponse) -> None:
    """Read until the body ends (or fails), at most 5 s."""
    async with asyncio.timeout(5):
        while await resp.content.readany():
            pass


async def test_f38_events_arrive_unbuffered_and_uncompressed(
    stack: Stack, fake_mcp: tuple[FakeMcp, str]
) -> None:
    """F38: a gzip-accepting client gets each small event at once, with no encoding or length."""
    fake, url = fake_mcp

    async def script(request: web.Request) -> web.StreamResponse:
        return await fake.sse(request, [PROGRESS, 1.0, PROGRESS, 1.0, PROGRESS])

    fake.script = script
    sidecar = await _sidecar(stack, url)
    async with (
        aiohttp.ClientSession(auto_decompress=False) as http,
        http.get(
            f"{sidecar.url}/mcp",
            headers={
                **_cookie_header(sidecar),
                "Accept": "text/event-stream",
                "Accept-Encoding": "gzip, deflate, br, zstd",
            },
        ) as resp,
    ):
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert resp.headers["Cache-Control"] == "no-cache, no-transform"
        assert resp.headers["X-Accel-Buffering"] == "no"
        assert "Content-Encoding" not in resp.headers
        assert "Content-Length" not in resp.headers
        events = await _read_events(resp, 3, limit=10)
    assert [e for _, e in events] == [PROGRESS] * 3
    lags = [arrived - sent for (arrived, _), sent in zip(events, fake.sent_at, strict=True)]
    assert max(lags) < 0.2, lags
    method, _, headers, _ = fake.seen[0]
    assert method == "GET"
    assert headers["Accept-Encoding"] == "identity"  # the MCP server is asked for no encoding
    assert headers["Authorization"].startswith("Bearer ")
    assert "Cookie" not in headers


async def test_f39_idle_stream_gets_heartbeats_between_whole_events(
    stack: Stack, fake_mcp: tuple[FakeMcp, str]
) -> None:
    """F39: a split event arrives whole; heartbeats come while idle, never inside an event."""
    fake, url = fake_mcp
    first = b'event: message\ndata: {"one":1}\n\n'

    async def script(request: web.Request) -> web.StreamResponse:
        return await fake.sse(
            request, [first, b'event: message\ndata: {"part":', 1.6, b'"two"}\n\n']
        )

    fake.script = script
    sidecar = await _sidecar(
        stack, url, SIDECAR_SSE_HEARTBEAT="0.5", SIDECAR_UPSTREAM_READ_TIMEOUT="3"
    )
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{sidecar.url}/mcp", headers={**_cookie_header(sidecar), "Accept": "text/event-stream"}
        ) as resp,
    ):
        assert sidecar.metric("sidecar_open_streams", route="mcp") == 1
        blocks = [b for _, b in await _read_events(resp, 2, limit=10)]
        while blocks[-1] == b": keepalive\n\n":
            blocks += [b for _, b in await _read_events(resp, 1, limit=5)]
        assert sidecar.metric("sidecar_open_streams", route="mcp") == 1
    assert blocks[0] == first
    assert blocks[1] == b": keepalive\n\n"
    assert blocks[-1] == b'event: message\ndata: {"part":"two"}\n\n'
    assert blocks.count(b": keepalive\n\n") >= 2  # 1.6 s of silence, a heartbeat every 0.5 s
    assert all(b in {b": keepalive\n\n", first, blocks[-1]} for b in blocks)
    await asyncio.sleep(0.1)
    assert sidecar.metric("sidecar_open_streams", route="mcp") == 0


async def test_f39_stream_outlives_upstream_silence_below_the_idle_limit(
    stack: Stack, fake_mcp: tuple[FakeMcp, str]
) -> None:
    """F39a: silence shorter than the idle limit keeps the stream; heartbeats keep it busy."""
    fake, url = fake_mcp

    async def script(request: web.Request) -> web.StreamResponse:
        return await fake.sse(request, [PROGRESS, 2.0, PROGRESS])

    fake.script = script
    sidecar = await _sidecar(
        stack, url, SIDECAR_SSE_HEARTBEAT="0.4", SIDECAR_UPSTREAM_READ_TIMEOUT="2.5"
    )
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{sidecar.url}/mcp", headers={**_cookie_header(sidecar), "Accept": "text/event-stream"}
        ) as resp,
    ):
        blocks = [b for _, b in await _read_events(resp, 3, limit=10)]
        while blocks[-1] != PROGRESS:
            blocks += [b for _, b in await _read_events(resp, 1, limit=5)]
    assert blocks[0] == PROGRESS
    assert blocks.count(b": keepalive\n\n") >= 3


async def test_idle_limit_ends_a_silent_stream(stack: Stack, fake_mcp: tuple[FakeMcp, str]) -> None:
    """An upstream silent past the idle read limit is cut (the client sees a truncated stream)."""
    fake, url = fake_mcp

    async def script(request: web.Request) -> web.StreamResponse:
        return await fake.sse(request, [PROGRESS])

    fake.script = script
    sidecar = await _sidecar(
        stack, url, SIDECAR_SSE_HEARTBEAT="0.3", SIDECAR_UPSTREAM_READ_TIMEOUT="1"
    )
    with structlog.testing.capture_logs() as logs:
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{sidecar.url}/mcp",
                headers={**_cookie_header(sidecar), "Accept": "text/event-stream"},
            ) as resp,
        ):
            with pytest.raises(aiohttp.ClientPayloadError):
                await _drain(resp)
    assert any(line["event"] == "upstream_read_timeout" for line in logs)
    assert sidecar.metric("sidecar_upstream_requests_total", product="mcp", status="aborted") == 1


async def test_f41_session_headers_pass_both_ways(
    stack: Stack, fake_mcp: tuple[FakeMcp, str]
) -> None:
    """F41: Mcp-Session-Id reaches the client; it and MCP-Protocol-Version reach the server."""
    fake, url = fake_mcp

    async def script(request: web.Request) -> web.StreamResponse:
        if request.method == "POST" and b'"initialize"' in fake.seen[-1][3]:
            response = web.StreamResponse(
                headers={"Content-Type": "text/event-stream", "Mcp-Session-Id": "sid-123"}
            )
            await response.prepare(request)
            await response.write(b'event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{}}\n\n')
            await response.write_eof()
            return response
        if request.method == "POST":
            return web.Response(status=202)
        return web.Response(status=200 if request.method == "DELETE" else 404)

    fake.script = script
    sidecar = await _sidecar(stack, url)
    init = (
        b'{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18",'
        b'"capabilities":{},"clientInfo":{"name":"t","version":"1"}}}'
    )
    async with aiohttp.ClientSession() as http:
        base = {**_cookie_header(sidecar), "Accept": "application/json, text/event-stream"}
        async with http.post(
            f"{sidecar.url}/mcp", data=init, headers={**base, "Content-Type": "application/json"}
        ) as resp:
            assert resp.status == 200
            assert resp.headers["Mcp-Session-Id"] == "sid-123"
            assert b'"result"' in await resp.read()
        async with http.post(
            f"{sidecar.url}/mcp",
            data=b'{"jsonrpc":"2.0","method":"notifications/initialized"}',
            headers={
                **base,
                "Content-Type": "application/json",
                "mcp-session-id": "sid-123",
                "MCP-Protocol-Version": "2025-06-18",
            },
        ) as resp:
            assert resp.status == 202
            assert await resp.read() == b""
        async with http.delete(
            f"{sidecar.url}/mcp", headers={**base, "Mcp-Session-Id": "sid-123"}
        ) as resp:
            assert resp.status == 200
    second, third = fake.seen[1], fake.seen[2]
    assert second[2]["Mcp-Session-Id"] == "sid-123"
    assert second[2]["MCP-Protocol-Version"] == "2025-06-18"
    assert third[0] == "DELETE"
    assert third[2]["Mcp-Session-Id"] == "sid-123"


async def test_unknown_mcp_session_404_reaches_the_client(
    stack: Stack, fake_mcp: tuple[FakeMcp, str]
) -> None:
    """A 404 for an expired MCP session passes through, so the client can start over."""
    fake, url = fake_mcp

    async def script(_request: web.Request) -> web.StreamResponse:
        return web.json_response({"error": "session not found"}, status=404)

    fake.script = script
    sidecar = await _sidecar(stack, url)
    resp = await sidecar.client.post(
        "/mcp",
        data=b"{}",
        headers={"Mcp-Session-Id": "gone", "Content-Type": "application/json"},
    )
    assert resp.status == 404
    assert await resp.json() == {"error": "session not found"}
    assert "X-Sidecar-Error" not in resp.headers


async def test_last_event_id_reaches_the_server(
    stack: Stack, fake_mcp: tuple[FakeMcp, str]
) -> None:
    """A client resuming with Last-Event-ID has it sent upstream unchanged."""
    fake, url = fake_mcp

    async def script(request: web.Request) -> web.StreamResponse:
        return await fake.sse(request, [b"id: 8\nevent: message\ndata: {}\n\n"])

    fake.script = script
    sidecar = await _sidecar(stack, url)
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{sidecar.url}/mcp",
            headers={
                **_cookie_header(sidecar),
                "Accept": "text/event-stream",
                "Last-Event-ID": "7",
                "Mcp-Session-Id": "s1",
            },
        ) as resp,
    ):
        ((_, block),) = await _read_events(resp, 1, limit=5)
    assert block == b"id: 8\nevent: message\ndata: {}\n\n"
    assert fake.seen[0][2]["Last-Event-ID"] == "7"


async def test_legacy_sse_endpoint_event_points_back_at_the_sidecar(
    stack: Stack, fake_mcp: tuple[FakeMcp, str]
) -> None:
    """The SSE transport's endpoint event is rewritten so the client's POSTs use /mcp/…."""
    fake, url = fake_mcp

    async def script(request: web.Request) -> web.StreamResponse:
        if request.method == "GET":
            return await fake.sse(
                request, [b"event: endpoint\ndata: /v1/messages/?session_id=abc\n\n"]
            )
        return web.Response(status=202, text="Accepted")

    fake.script = script
    sidecar = await _sidecar(stack, url)
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{sidecar.url}/mcp/v1/sse",
            headers={**_cookie_header(sidecar), "Accept": "text/event-stream"},
        ) as resp,
    ):
        ((_, block),) = await _read_events(resp, 1, limit=5)
    assert block == b"event: endpoint\ndata: /mcp/v1/messages/?session_id=abc\n\n"
    resp = await sidecar.client.post(
        "/mcp/v1/messages/?session_id=abc", data=b"{}", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 202
    assert [(m, p) for m, p, _, _ in fake.seen] == [
        ("GET", "/v1/sse"),
        ("POST", "/v1/messages/?session_id=abc"),
    ]


@pytest.mark.parametrize(
    ("method", "accept", "body"),
    [
        ("GET", "text/event-stream", None),
        (
            "POST",
            "application/json, text/event-stream",
            b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
        ),
    ],
)
async def test_f23_mcp_without_a_session_is_401_json(
    stack: Stack, fake_mcp: tuple[FakeMcp, str], method: str, accept: str, body: bytes | None
) -> None:
    """F23 d/e: /mcp without a session answers 401 JSON login_required, never a redirect."""
    _fake, url = fake_mcp
    sidecar = await stack.sidecar({"SIDECAR_MCP_URL": url})
    resp = await sidecar.client.request(
        method, "/mcp", data=body, headers={"Accept": accept}, allow_redirects=False
    )
    assert resp.status == 401
    assert "Location" not in resp.headers
    assert resp.headers["Cache-Control"] == "no-store"
    data = await resp.json()
    assert data["error"] == "login_required"
    assert data["login_url"].startswith("/auth/login?return_to=")
    assert _fake.seen == []


async def test_shutdown_closes_open_streams_cleanly(
    stack: Stack, fake_mcp: tuple[FakeMcp, str]
) -> None:
    """Stopping the sidecar ends open event streams with a proper end, and logs no error."""
    fake, url = fake_mcp

    async def script(request: web.Request) -> web.StreamResponse:
        return await fake.sse(request, [PROGRESS])

    fake.script = script
    sidecar = await _sidecar(stack, url)
    with structlog.testing.capture_logs() as logs:
        async with (
            aiohttp.ClientSession() as http,
            http.get(
                f"{sidecar.url}/mcp",
                headers={**_cookie_header(sidecar), "Accept": "text/event-stream"},
            ) as resp,
        ):
            await _read_events(resp, 1, limit=5)
            assert sidecar.metric("sidecar_open_streams", route="mcp") == 1
            closing = asyncio.create_task(sidecar.client.server.close())
            async with asyncio.timeout(5):
                rest = await resp.content.read()  # a clean end of the chunked body
            await closing
    assert rest == b""
    assert sidecar.metric("sidecar_open_streams", route="mcp") == 0
    assert [line for line in logs if line["log_level"] in {"error", "critical", "warning"}] == []


async def test_f41_cors_lets_an_allowed_origin_use_mcp_headers(
    stack: Stack, fake_mcp: tuple[FakeMcp, str]
) -> None:
    """F41 step 4: preflight allows the MCP headers; the answer exposes Mcp-Session-Id."""
    fake, url = fake_mcp

    async def script(_request: web.Request) -> web.StreamResponse:
        return web.json_response({}, headers={"Mcp-Session-Id": "sid-9"})

    fake.script = script
    origin = "https://app.example.test"
    sidecar = await _sidecar(stack, url, SIDECAR_ALLOWED_ORIGINS=origin)
    pre = await sidecar.client.options(
        "/mcp",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "mcp-session-id, mcp-protocol-version, last-event-id",
        },
    )
    assert pre.status in {200, 204}
    allowed = {h.strip().lower() for h in pre.headers["Access-Control-Allow-Headers"].split(",")}
    assert {"mcp-session-id", "mcp-protocol-version", "last-event-id"} <= allowed
    assert fake.seen == []  # a preflight never reaches the MCP server
    resp = await sidecar.client.post(
        "/mcp", data=b"{}", headers={"Origin": origin, "Content-Type": "application/json"}
    )
    assert resp.status == 200
    assert resp.headers["Mcp-Session-Id"] == "sid-9"
    exposed = resp.headers["Access-Control-Expose-Headers"].lower()
    assert "mcp-session-id" in exposed
