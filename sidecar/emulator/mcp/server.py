"""The emulated Rovo MCP server, built on the official MCP SDK and served by uvicorn in-process.

One ASGI app on its own port serves the streamable HTTP transport at ``/v1/mcp`` and the legacy
SSE transport at ``/v1/sse`` (posting to ``/v1/messages/``), both behind the SDK's bearer check:
only tokens issued by the emulator's MCP authorization server pass (a 3LO token does not). An
unauthenticated request gets 401 with ``WWW-Authenticate: Bearer resource_metadata="…"``.

Tools: ``search_issues`` (a tiny JQL over the emulator's seeded Jira data) and ``get_issue``,
which reports progress while it works.
"""

from __future__ import annotations

import asyncio
import json
import socket
from typing import TYPE_CHECKING, Any

import uvicorn
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from pydantic import AnyHttpUrl
from starlette.types import Receive, Scope, Send

from ..jira import parse_jql
from .auth import ISSUER_PATH

if TYPE_CHECKING:
    from ..emulator import Emulator

__all__ = ["REQUIRED_SCOPES", "McpEmulatorServer"]

REQUIRED_SCOPES = ["read:jira:agent-interface"]
_SSE_PATHS = ("/v1/sse", "/v1/messages")


class _Verifier:
    """Accepts live tokens of the MCP authorization server only."""

    def __init__(self, emulator: Emulator) -> None:
        self._emulator = emulator

    async def verify_token(self, token: str) -> AccessToken | None:
        found = self._emulator.mcp_auth.resource_of(token)
        if found is None:
            return None
        resource, record = found
        return AccessToken(
            token=token,
            client_id="mcp",
            scopes=list(record.scopes),
            expires_at=None,  # expiry is checked on the emulator's own clock, above
            resource=resource,
            subject=record.account_id,
        )


def _build(emulator: Emulator, base_url: str, issuer: str, progress_delay: float) -> MCPServer[Any]:
    server: MCPServer[Any] = MCPServer(
        "atlassian-rovo-emulator",
        instructions="Jira data of the Atlassian emulator.",
        token_verifier=_Verifier(emulator),
        auth=AuthSettings(
            issuer_url=AnyHttpUrl(issuer),
            resource_server_url=AnyHttpUrl(f"{base_url}/v1/mcp"),
            required_scopes=REQUIRED_SCOPES,
            validate_token_resource=False,  # tokens for /v1/mcp also open the SSE transport
        ),
        log_level="WARNING",
    )
    site = next(iter(emulator.jira.values()))

    @server.tool()
    async def search_issues(jql: str = "") -> str:
        """Search Jira issues with a small JQL (project = X, key = K, AND)."""
        found = parse_jql(jql, site)
        if isinstance(found, str):
            return json.dumps({"error": found})
        return json.dumps([{"key": i.key, "summary": i.summary, "status": i.status} for i in found])

    @server.tool()
    async def get_issue(key: str, ctx: Context) -> str:
        """Fetch one Jira issue by key, reporting progress as it goes."""
        for step in range(3):
            await ctx.report_progress(step + 1, 3, f"step {step + 1} of 3")
            await asyncio.sleep(progress_delay)
        issue = site.issue(key)
        if issue is None:
            return json.dumps({"error": f"Issue {key} does not exist"})
        return json.dumps(site.issue_json(issue))

    return server


class McpEmulatorServer:
    """The MCP server on its own loopback (or any) port, started and stopped in-process."""

    def __init__(
        self,
        emulator: Emulator,
        *,
        auth_url: str,
        host: str = "127.0.0.1",
        port: int = 0,
        public_host: str | None = None,
        progress_delay: float = 0.4,
    ) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((host, port))
        self.port: int = self._sock.getsockname()[1]
        self.base_url = f"http://{public_host or host}:{self.port}"
        self.issuer = f"{auth_url.rstrip('/')}{ISSUER_PATH}"
        mcp = _build(emulator, self.base_url, self.issuer, progress_delay)
        security = TransportSecuritySettings(enable_dns_rebinding_protection=False)
        http_app = mcp.streamable_http_app(
            streamable_http_path="/v1/mcp", transport_security=security, host=host
        )
        sse_app = mcp.sse_app(
            sse_path="/v1/sse", message_path="/v1/messages/", transport_security=security, host=host
        )

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            if scope["type"] == "http" and str(scope["path"]).startswith(_SSE_PATHS):
                await sse_app(scope, receive, send)
            else:
                await http_app(scope, receive, send)

        config = uvicorn.Config(
            app, log_level="warning", lifespan="on", timeout_graceful_shutdown=1, access_log=False
        )
        config.load()
        self._server = uvicorn.Server(config)

    @property
    def url(self) -> str:
        """The streamable HTTP endpoint (what SIDECAR_MCP_URL names)."""
        return f"{self.base_url}/v1/mcp"

    async def start(self) -> None:
        """Run the app's lifespan and start listening (no signal handlers are installed)."""
        self._server.lifespan = self._server.config.lifespan_class(self._server.config)
        await self._server.startup(sockets=[self._sock])

    async def stop(self) -> None:
        """Stop listening, end open connections, run the lifespan's shutdown."""
        await self._server.shutdown(sockets=[self._sock])
