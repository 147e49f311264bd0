"""Which bearer token ``/mcp`` sends: the session's MCP pair (``SIDECAR_MCP_AUTH=oauth``) or its
3LO pair (``atlassian-token``). The MCP pair is sealed beside the 3LO pair (session key part
``m``) and refreshed by its own single-flight coordinator (lock part ``mlock``).
"""

from __future__ import annotations

from dataclasses import dataclass

from sidecar.auth.refresh import RefreshCoordinator
from sidecar.auth.sessions import SessionContext
from sidecar.auth.tokens import SessionRef, TokenStore
from sidecar.errors import LoginRequired, McpLoginRequired
from sidecar.mcp.oauth import McpOAuthClient

__all__ = ["MCP_LOCK_PART", "MCP_TOKEN_PART", "McpAuth"]

MCP_TOKEN_PART = "m"  # noqa: S105 - a store key part, not a secret
MCP_LOCK_PART = "mlock"


@dataclass
class McpAuth:
    """The MCP route's token source for one application."""

    mode: str  # "oauth" | "atlassian-token"
    tokens: TokenStore  # the MCP pair (part "m")
    refresher: RefreshCoordinator  # refreshes the MCP pair
    atlassian: RefreshCoordinator  # the 3LO pair's coordinator
    oauth: McpOAuthClient

    async def access_token(self, ctx: SessionContext, rejected: str | None) -> str:
        """The token for the MCP server; McpLoginRequired when the MCP consent is missing."""
        if self.mode == "atlassian-token":
            pair = await self.atlassian.current(ctx.ref, ctx.ttl, reject_access=rejected)
            return pair.access_token
        try:
            pair = await self.refresher.current(ctx.ref, ctx.ttl, reject_access=rejected)
        except LoginRequired as exc:  # no pair, or its refresh was refused (ReauthRequired)
            raise McpLoginRequired from exc
        return pair.access_token

    async def connected(self, ref: SessionRef) -> bool:
        """Whether ``/mcp`` has a token for this session (without refreshing anything)."""
        if self.mode == "atlassian-token":
            return True
        return await self.tokens.load(ref) is not None
