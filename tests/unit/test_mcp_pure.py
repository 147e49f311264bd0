"""The pure parts of the MCP proxy: routing, endpoint rewriting and SSE event splitting."""

from __future__ import annotations

import pytest

from sidecar.mcp.sse import HEARTBEAT, EventSplitter, rewrite_endpoint_event
from sidecar.mcp.targets import rewrite_endpoint, upstream_url

MCP = "https://mcp.atlassian.com/v1/mcp"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/mcp", MCP),
        ("/mcp?x=1&x=2", MCP + "?x=1&x=2"),
        ("/mcp/v1/sse", "https://mcp.atlassian.com/v1/sse"),
        (
            "/mcp/v1/messages/?session_id=ab%2F",
            "https://mcp.atlassian.com/v1/messages/?session_id=ab%2F",
        ),
        ("/mcpx", None),
        ("/jira/x", None),
    ],
)
def test_upstream_url(path: str, expected: str | None) -> None:
    """/mcp is the MCP URL; /mcp/{path} is that path on the MCP server's origin, bytes kept."""
    assert upstream_url(MCP, path) == expected


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("/v1/messages/?session_id=abc", "/mcp/v1/messages/?session_id=abc"),
        ("messages/?session_id=abc", "/mcp/v1/messages/?session_id=abc"),
        ("https://mcp.atlassian.com/v1/messages/?s=1", "/mcp/v1/messages/?s=1"),
        ("https://elsewhere.example/m", "https://elsewhere.example/m"),
    ],
)
def test_rewrite_endpoint(data: str, expected: str) -> None:
    """Endpoint URLs on the MCP origin become sidecar paths; foreign ones are left alone."""
    assert rewrite_endpoint(data, "https://mcp.atlassian.com/v1/sse", MCP) == expected


def test_splitter_holds_partial_events() -> None:
    """An event split across chunks comes out whole, once, after its blank line."""
    splitter = EventSplitter()
    assert splitter.feed(b'event: message\ndata: {"part":') == []
    assert splitter.at_boundary
    assert splitter.feed(b'"two"}\n\nevent: a\r\ndata: 1\r\n\r\nda') == [
        b'event: message\ndata: {"part":"two"}\n\n',
        b"event: a\r\ndata: 1\r\n\r\n",
    ]
    assert splitter.held == b"da"


def test_splitter_crlf_across_chunks() -> None:
    """A CR at the end of a chunk waits for a possible LF instead of ending the event early."""
    splitter = EventSplitter()
    assert splitter.feed(b"data: 1\r\n\r") == []
    assert splitter.feed(b"\n") == [b"data: 1\r\n\r\n"]


def test_splitter_oversized_event_passes_through() -> None:
    """An event over the limit is passed on in pieces; no heartbeat until it ends."""
    splitter = EventSplitter(max_held=8)
    assert splitter.feed(b"data: 0123456789\n") == [b"data: 0123456789"]
    assert not splitter.at_boundary
    assert splitter.feed(b"\ndata: 2\n\n") == [b"\n\n", b"data: 2\n\n"]
    assert splitter.at_boundary


def test_rewrite_endpoint_event() -> None:
    """Only endpoint events are rewritten; their framing stays a complete event."""
    event = b"event: endpoint\r\ndata: /v1/messages/?session_id=1\r\n\r\n"
    out = rewrite_endpoint_event(event, lambda url: "/mcp" + url)
    assert out == b"event: endpoint\ndata: /mcp/v1/messages/?session_id=1\n\n"
    other = b"event: message\ndata: {}\n\n"
    assert rewrite_endpoint_event(other, lambda url: "x") == other
    assert HEARTBEAT.startswith(b":")
