"""The Emulator: all mutable state of one emulated Atlassian (auth server plus API gateway).

Tests and the `dev` command hold one instance, drive it (fault injection, revocation) and read
what it recorded; the aiohttp app built from it only reads and updates this object.
"""

from __future__ import annotations

from collections import deque

from aiohttp import web

from .app import create_emulator_app
from .config import EmulatorConfig
from .confluence import ConfluenceSite, seed_confluence
from .jira import JiraSite, seed_jira
from .mcp.auth import McpAuthServer
from .ratelimit import BurstLimiter
from .records import ApiRequest, InjectedFault, TokenCall
from .state import AuthState

__all__ = ["Emulator"]


class Emulator:
    """One emulated https://auth.atlassian.com + https://api.atlassian.com, fully in memory."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.state = AuthState(config)
        self.token_calls: list[TokenCall] = []
        self.api_requests: list[ApiRequest] = []
        self.token_delay: float = 0.0
        self.limiter: BurstLimiter | None = None
        if config.rate_limit_per_second is not None:
            self.limiter = BurstLimiter(config.rate_limit_per_second, config.clock)
        jira_sites = [s for s in config.sites if "jira" in s.products]
        self.jira: dict[str, JiraSite] = {
            site.cloud_id: seed_jira(site, config.users[0], first=index == 0)
            for index, site in enumerate(jira_sites)
        }
        self.confluence: dict[str, ConfluenceSite] = {
            site.cloud_id: seed_confluence(site, config.users[0])
            for site in config.sites
            if "confluence" in site.products
        }
        self._faults: deque[InjectedFault] = deque()
        # The Rovo MCP server's own authorization server (its tokens are a separate family).
        self.mcp_auth = McpAuthServer(config)

    def fail_next_token_calls(
        self,
        count: int,
        *,
        status: int,
        body: str,
        content_type: str = "application/json",
        delay: float = 0.0,
    ) -> None:
        """Answer the next `count` token calls with this (after `delay` s); nothing rotates."""
        fault = InjectedFault(status=status, body=body, content_type=content_type, delay=delay)
        self._faults.extend([fault] * count)

    def take_fault(self) -> InjectedFault | None:
        """Pop the fault queued for the token call now arriving, if any."""
        return self._faults.popleft() if self._faults else None

    def revoke_grant(self, account_id: str | None = None) -> None:
        """Act as the user revoking the app: every token of the account (default user) dies."""
        self.state.revoke_account(account_id or self.config.users[0].account_id)

    def issued_secrets(self) -> set[str]:
        """Return every access token, refresh token and authorization code ever issued."""
        return self.state.issued_secrets()

    def app(self) -> web.Application:
        """Build the aiohttp application serving this emulator."""
        return create_emulator_app(self)
