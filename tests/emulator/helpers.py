"""Shared values and HTTP helpers for the emulator tests (a fake clock, login steps)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import ClientResponse, web
from aiohttp.test_utils import TestClient
from yarl import URL

__all__ = [
    "ALL_SCOPES",
    "CLIENT_ID",
    "CLIENT_SECRET",
    "REDIRECT_URI",
    "SITE_A",
    "SITE_B",
    "Client",
    "FakeClock",
    "authorize_params",
    "bearer",
    "decide",
    "exchange",
    "get_code",
    "login",
    "open_consent",
    "refresh",
]

Client = TestClient[web.Request, web.Application]

CLIENT_ID = "emulator-test-client"
CLIENT_SECRET = "emulator-test-secret"
REDIRECT_URI = "http://localhost:8080/auth/callback"
SITE_A = "11111111-1111-4111-8111-111111111111"
SITE_B = "22222222-2222-4222-8222-222222222222"
ALL_SCOPES = (
    "read:jira-work read:jira-user write:jira-work read:confluence-content.summary "
    "read:me offline_access"
)
_CONSENT_ID = re.compile(r'name="consent_id" value="([^"]+)"')


class FakeClock:
    """A clock the tests move by hand."""

    def __init__(self, start: float = 1_780_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        """Move time forward."""
        self.now += seconds


def authorize_params(**overrides: str | None) -> dict[str, str]:
    """Return a valid /authorize query, with overrides (None removes a parameter)."""
    params: dict[str, str | None] = {
        "audience": "api.atlassian.com",
        "client_id": CLIENT_ID,
        "scope": ALL_SCOPES,
        "redirect_uri": REDIRECT_URI,
        "state": "state-123",
        "response_type": "code",
        "prompt": "consent",
        **overrides,
    }
    return {k: v for k, v in params.items() if v is not None}


async def open_consent(client: Client, **overrides: str | None) -> str:
    """GET /authorize and return the consent id from the consent form."""
    resp = await client.get("/authorize", params=authorize_params(**overrides))
    assert resp.status == 200, await resp.text()
    match = _CONSENT_ID.search(await resp.text())
    assert match is not None
    return match.group(1)


async def decide(client: Client, consent_id: str, decision: str) -> URL:
    """Answer the consent form and return the redirect Location."""
    resp = await client.post(
        "/authorize/decision",
        data={"consent_id": consent_id, "decision": decision},
        allow_redirects=False,
    )
    assert resp.status == 302, await resp.text()
    return URL(resp.headers["Location"])


async def get_code(client: Client, **overrides: str | None) -> str:
    """Run consent with Accept and return the authorization code."""
    location = await decide(client, await open_consent(client, **overrides), "accept")
    return location.query["code"]


async def exchange(
    client: Client, code: str, *, form: bool = False, **overrides: str | None
) -> ClientResponse:
    """POST an authorization_code grant (JSON unless form=True)."""
    body = {
        "grant_type": "authorization_code",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "code": code,
        "redirect_uri": REDIRECT_URI,
        **overrides,
    }
    clean = {k: v for k, v in body.items() if v is not None}
    if form:
        return await client.post("/oauth/token", data=clean)
    return await client.post("/oauth/token", json=clean)


async def refresh(client: Client, refresh_token: str, **overrides: str) -> ClientResponse:
    """POST a refresh_token grant."""
    body = {
        "grant_type": "refresh_token",
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "refresh_token": refresh_token,
        **overrides,
    }
    return await client.post("/oauth/token", json=body)


async def login(client: Client, scope: str = ALL_SCOPES) -> dict[str, Any]:
    """Run the whole 3LO flow and return the token response body."""
    resp = await exchange(client, await get_code(client, scope=scope))
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def bearer(token: str) -> dict[str, str]:
    """Return request headers carrying a Bearer token."""
    return {"Authorization": f"Bearer {token}", "Accept": "application/json"}
