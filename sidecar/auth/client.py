"""HTTP adapter for Atlassian's token endpoint, accessible-resources and /me.

Policy lives in ``flow``; this module only speaks HTTP, times calls, and turns transport
failures into ``Transient`` results or ``UpstreamUnavailable``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

import aiohttp

from sidecar.auth.flow import (
    TokenResult,
    Transient,
    classify_token_response,
    parse_accessible_resources,
    parse_me,
)
from sidecar.auth.model import Site, UserProfile
from sidecar.config import OAuthSettings
from sidecar.errors import UpstreamTimeout, UpstreamUnavailable
from sidecar.metrics import Metrics

__all__ = ["AtlassianAuthClient"]

# Token and identity calls are small: 10 s covers a slow Atlassian without hanging a login.
_CALL_TIMEOUT = aiohttp.ClientTimeout(total=10, sock_connect=5)
_MAX_ANSWER = 1 << 20


class AtlassianAuthClient:
    """Calls auth.atlassian.com and the identity endpoints of api.atlassian.com."""

    def __init__(
        self,
        http: aiohttp.ClientSession,
        settings: OAuthSettings,
        metrics: Metrics,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._http = http
        self._settings = settings
        self._metrics = metrics
        self._clock = clock

    def _token_body(self, fields: dict[str, str]) -> tuple[bytes, str]:
        body = {
            "client_id": self._settings.client_id,
            "client_secret": self._settings.client_secret.value,
            **fields,
        }
        if self._settings.token_request_format == "form":  # noqa: S105 - not a password
            return urlencode(body).encode(), "application/x-www-form-urlencoded"
        return json.dumps(body).encode(), "application/json"

    async def _token_call(
        self, fields: dict[str, str], previous_refresh: str | None
    ) -> TokenResult:
        data, content_type = self._token_body(fields)
        started = time.perf_counter()
        status = "error"
        try:
            async with self._http.post(
                f"{self._settings.auth_url}/oauth/token",
                data=data,
                timeout=_CALL_TIMEOUT,
                headers={"Content-Type": content_type, "Accept": "application/json"},
                allow_redirects=False,
            ) as resp:
                status = str(resp.status)
                body = await resp.content.read(_MAX_ANSWER)
                return classify_token_response(
                    resp.status, body, now=self._clock(), previous_refresh=previous_refresh
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            return Transient(type(exc).__name__)
        finally:
            self._metrics.upstream_requests.labels("auth", status).inc()
            self._metrics.upstream_duration.labels("auth").observe(time.perf_counter() - started)

    async def exchange_code(self, code: str, verifier: str) -> TokenResult:
        """Trade an authorization code (with the PKCE verifier) for tokens."""
        return await self._token_call(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self._settings.redirect_uri,
                "code_verifier": verifier,
            },
            previous_refresh=None,
        )

    async def refresh(self, refresh_token: str) -> TokenResult:
        """Spend a (rotating) refresh token for a new pair."""
        return await self._token_call(
            {"grant_type": "refresh_token", "refresh_token": refresh_token},
            previous_refresh=refresh_token,
        )

    async def _identity_get(self, path: str, access_token: str) -> tuple[int, Any]:
        started = time.perf_counter()
        status = "error"
        try:
            async with self._http.get(
                f"{self._settings.api_url}{path}",
                timeout=_CALL_TIMEOUT,
                allow_redirects=False,
                headers={"Authorization": f"Bearer {access_token}", "Accept": "application/json"},
            ) as resp:
                status = str(resp.status)
                body = await resp.content.read(_MAX_ANSWER)
        except TimeoutError as exc:
            raise UpstreamTimeout from exc
        except aiohttp.ClientError as exc:
            raise UpstreamUnavailable from exc
        finally:
            self._metrics.upstream_requests.labels("identity", status).inc()
            self._metrics.upstream_duration.labels("identity").observe(
                time.perf_counter() - started
            )
        try:
            return resp.status, json.loads(body)
        except ValueError:
            return resp.status, None

    async def accessible_resources(self, access_token: str) -> tuple[Site, ...]:
        """The sites this grant covers; raises UpstreamUnavailable when not readable."""
        status, data = await self._identity_get("/oauth/token/accessible-resources", access_token)
        if status != 200 or not isinstance(data, list):
            raise UpstreamUnavailable(f"accessible-resources answered {status}")
        return parse_accessible_resources(data)

    async def me(self, access_token: str) -> UserProfile | None:
        """The user's profile, or None when /me is not granted or not readable."""
        try:
            status, data = await self._identity_get("/me", access_token)
        except (TimeoutError, UpstreamUnavailable, UpstreamTimeout):
            return None
        return parse_me(data) if status == 200 else None
