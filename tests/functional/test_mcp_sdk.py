"""The official MCP Python SDK's own clients (streamable HTTP and SSE) through the sidecar, with
the session cookie as their only credential, against the emulator's SDK-built MCP server.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator

import httpx2
import pytest
from mcp import ClientSession
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client
from mcp.types import TextContent

from sidecar.emulator.mcp.server import McpEmulatorServer

from ..harness import Sidecar, Stack
from .test_mcp_oauth import connect_mcp

PROGRESS_DELAY = 0.4


@pytest.fixture
async def mcp_server(stack: Stack) -> AsyncIterator[McpEmulatorServer]:
    server = McpEmulatorServer(
        stack.emulator, auth_url=stack.emulator_url, progress_delay=PROGRESS_DELAY
    )
    await server.start()
    yield server
    await server.stop()


@pytest.fixture
async def connected(stack: Stack, mcp_server: McpEmulatorServer) -> Sidecar:
    sidecar = await stack.sidecar({"SIDECAR_MCP_URL": mcp_server.url})
    await sidecar.login()
    await connect_mcp(sidecar)
    return sidecar


def _cookie(sidecar: Sidecar) -> dict[str, str]:
    value = sidecar.cookie()
    assert value is not None
    return {"Cookie": f"{sidecar.settings.session.cookie_name}={value}"}


async def _exercise(session: ClientSession) -> list[float]:
    """List tools, call both; return when each progress notification arrived (relative)."""
    await session.initialize()
    tools = await session.list_tools()
    assert {t.name for t in tools.tools} >= {"search_issues", "get_issue"}
    found = await session.call_tool("search_issues", {"jql": "project = ACME"})
    first = found.content[0]
    assert isinstance(first, TextContent)
    assert [i["key"] for i in json.loads(first.text)] == ["ACME-1", "ACME-2", "ACME-3"]
    arrivals: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        arrivals.append(time.monotonic())

    started = time.monotonic()
    issue = await session.call_tool("get_issue", {"key": "ACME-2"}, progress_callback=on_progress)
    finished = time.monotonic()
    content = issue.content[0]
    assert isinstance(content, TextContent)
    assert json.loads(content.text)["key"] == "ACME-2"
    assert len(arrivals) == 3
    # Each notification came while the tool was still working, not all at the end.
    assert arrivals[0] - started < PROGRESS_DELAY
    assert finished - arrivals[-1] >= PROGRESS_DELAY * 0.8
    return [a - started for a in arrivals]


async def test_streamable_http_client_through_the_sidecar(connected: Sidecar) -> None:
    """The SDK's streamable HTTP client lists and calls the tools; progress is not buffered."""
    async with (
        httpx2.AsyncClient(headers=_cookie(connected), timeout=30) as http,
        streamable_http_client(f"{connected.url}/mcp", http_client=http) as (read, write),
        ClientSession(read, write) as session,
    ):
        arrivals = await _exercise(session)
    assert arrivals == sorted(arrivals)
    assert connected.metric("sidecar_open_streams", route="mcp") == 0


async def test_sse_client_through_the_sidecar(connected: Sidecar) -> None:
    """The SDK's legacy SSE client connects at /mcp/v1/sse and posts back through the sidecar."""
    async with (
        sse_client(f"{connected.url}/mcp/v1/sse", headers=_cookie(connected)) as (read, write),
        ClientSession(read, write) as session,
    ):
        await _exercise(session)
        assert connected.metric("sidecar_open_streams", route="mcp") == 1
