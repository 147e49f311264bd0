"""Sans-IO routing for ``/mcp``: which upstream URL a sidecar path names, and how the legacy SSE
transport's ``endpoint`` event is rewritten so that the client's POSTs come back through us.

- ``/mcp`` (plus its query) is ``SIDECAR_MCP_URL`` itself: the streamable HTTP endpoint.
- ``/mcp/{path}`` is ``{origin of SIDECAR_MCP_URL}/{path}``: any other path of the same MCP
  server, e.g. ``/mcp/v1/sse`` for the legacy SSE transport and the ``/mcp/v1/messages/?…`` it
  announces. The token never leaves the MCP server's origin.
"""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

__all__ = ["PREFIX", "mcp_origin", "rewrite_endpoint", "upstream_url"]

PREFIX = "/mcp"


def mcp_origin(mcp_url: str) -> str:
    """``scheme://host[:port]`` of the MCP server."""
    parts = urlsplit(mcp_url)
    return f"{parts.scheme}://{parts.netloc}"


def upstream_url(mcp_url: str, raw_path: str) -> str | None:
    """The upstream URL for a raw sidecar path (and query); None when it is not an MCP path."""
    path, sep, query = raw_path.partition("?")
    if path == PREFIX:
        base = mcp_url
    elif path.startswith(PREFIX + "/"):
        base = mcp_origin(mcp_url) + path[len(PREFIX) :]
    else:
        return None
    if not sep:
        return base
    joiner = "&" if "?" in base else "?"
    return base + joiner + query


def rewrite_endpoint(data: str, stream_url: str, mcp_url: str) -> str:
    """The ``endpoint`` event's URL as a sidecar path, when it lies on the MCP server's origin.

    ``data`` is relative to the SSE stream's upstream URL (``stream_url``), or absolute. A URL on
    another origin is returned unchanged (the client could not reach it through us anyway).
    """
    resolved = urljoin(stream_url, data.strip())
    origin = mcp_origin(mcp_url)
    if mcp_origin(resolved) != origin:
        return data
    rest = resolved[len(origin) :] or "/"
    if not rest.startswith("/"):
        rest = "/" + rest
    return PREFIX + rest
