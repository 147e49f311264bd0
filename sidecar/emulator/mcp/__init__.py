"""The emulated Atlassian Rovo MCP server (``server``, needs the ``mcp`` SDK) and its own OAuth
2.1 authorization server (``auth``, plain aiohttp)."""

from .auth import ISSUER_PATH, McpAuthServer, add_mcp_auth_routes

__all__ = ["ISSUER_PATH", "McpAuthServer", "add_mcp_auth_routes"]
