"""The MCP server's own OAuth through the sidecar, against the emulator's MCP authorization
server and its SDK-built MCP server: discovery, dynamic registration, consent, token, refresh,
refusal; and the 3LO token not being an MCP token.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import pytest
from yarl import URL

from sidecar.emulator.mcp.server import McpEmulatorServer

from ..harness import Sidecar, Stack

_CONSENT = re.compile(r'action="([^"]+)".*?name="consent_id" value="([^"]+)"', re.DOTALL)
INIT = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {
        "protocolVersion": "2025-06-18",
        "capabilities": {},
        "clientInfo": {"name": "test", "version": "1"},
    },
}
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture
async def mcp_server(stack: Stack) -> AsyncIterator[McpEmulatorServer]:
    server = McpEmulatorServer(stack.emulator, auth_url=stack.emulator_url, progress_delay=0.3)
    await server.start()
    yield server
    await server.stop()


async def connect_mcp(sidecar: Sidecar, decision: str = "accept") -> tuple[str, str]:
    """The MCP consent through the browser: the authorize URL and the sidecar's last redirect."""
    resp = await sidecar.client.get(
        "/auth/mcp/login", params={"return_to": "/tools"}, allow_redirects=False
    )
    assert resp.status == 302, await resp.text()
    authorize = resp.headers["Location"]
    browser = sidecar.stack.browser
    async with browser.get(authorize) as page:
        assert page.status == 200, await page.text()
        match = _CONSENT.search(await page.text())
    assert match is not None
    origin = URL(authorize).origin()
    async with browser.post(
        str(origin.join(URL(match.group(1)))),
        data={"consent_id": match.group(2), "decision": decision},
        allow_redirects=False,
    ) as answer:
        assert answer.status == 302
        callback = answer.headers["Location"]
    done = await sidecar.client.get(URL(callback).path_qs, allow_redirects=False)
    return authorize, done.headers.get("Location", str(done.status))


async def _signed_in(stack: Stack, server: McpEmulatorServer, **env: str) -> Sidecar:
    sidecar = await stack.sidecar({"SIDECAR_MCP_URL": server.url, **env})
    await sidecar.login()
    return sidecar


async def test_mcp_without_mcp_consent_asks_for_it(
    stack: Stack, mcp_server: McpEmulatorServer
) -> None:
    """A signed-in session with no MCP token gets 401 mcp_login_required, never a redirect."""
    sidecar = await _signed_in(stack, mcp_server)
    resp = await sidecar.client.post("/mcp", json=INIT, headers=MCP_HEADERS, allow_redirects=False)
    assert resp.status == 401
    body = await resp.json()
    assert body["error"] == "mcp_login_required"
    assert body["login_url"].startswith("/auth/mcp/login?return_to=")
    assert resp.headers["X-Sidecar-Error"] == "mcp_login_required"
    session = await (await sidecar.get("/auth/session")).json()
    assert session["mcp"] == {"connected": False}


async def test_mcp_oauth_dance(stack: Stack, mcp_server: McpEmulatorServer) -> None:
    """Discovery, registration, consent with PKCE and resource, token; then /mcp works."""
    sidecar = await _signed_in(stack, mcp_server)
    authorize, landed = await connect_mcp(sidecar)
    assert landed == "/tools"
    query = parse_qs(urlsplit(authorize).query)
    assert authorize.startswith(mcp_server.issuer + "/authorize?")
    assert query["resource"] == [mcp_server.url]
    assert query["code_challenge_method"] == ["S256"]
    assert query["redirect_uri"] == [f"{sidecar.url}/auth/mcp/callback"]
    assert "offline_access" in query["scope"][0].split()
    assert stack.emulator.mcp_auth.registrations == 1
    assert query["client_id"] == [next(iter(stack.emulator.mcp_auth.clients))]
    session = await (await sidecar.get("/auth/session")).json()
    assert session["mcp"] == {"connected": True}
    resp = await sidecar.client.post("/mcp", json=INIT, headers=MCP_HEADERS)
    assert resp.status == 200, await resp.text()
    assert resp.headers["Mcp-Session-Id"]
    assert "serverInfo" in await resp.text()
    # A second consent reuses the stored registration.
    await connect_mcp(sidecar)
    assert stack.emulator.mcp_auth.registrations == 1


async def test_mcp_token_refreshes_once_expired(
    stack: Stack, mcp_server: McpEmulatorServer
) -> None:
    """An expired MCP token is refreshed at the MCP token endpoint, then used."""
    sidecar = await _signed_in(stack, mcp_server)
    await connect_mcp(sidecar)
    calls = stack.emulator.mcp_auth.token_calls
    assert [c["grant_type"] for c in calls] == ["authorization_code"]
    stack.clock.advance(3000)  # still fresh: no refresh
    resp = await sidecar.client.post("/mcp", json=INIT, headers=MCP_HEADERS)
    assert resp.status == 200
    assert [c["grant_type"] for c in calls] == ["authorization_code"]
    stack.clock.advance(600)  # past expiry (3600 s): refreshed once, at the MCP token endpoint
    resp = await sidecar.client.post("/mcp", json=INIT, headers=MCP_HEADERS)
    assert resp.status == 200, await resp.text()
    assert [c["grant_type"] for c in calls] == ["authorization_code", "refresh_token"]


async def test_mcp_consent_denied(stack: Stack, mcp_server: McpEmulatorServer) -> None:
    """Deny on the MCP consent page: 403 access_denied, no token call, still not connected."""
    sidecar = await _signed_in(stack, mcp_server)
    _, landed = await connect_mcp(sidecar, decision="deny")
    assert landed == "403"
    assert stack.emulator.mcp_auth.token_calls == []
    session = await (await sidecar.get("/auth/session")).json()
    assert session["mcp"] == {"connected": False}


async def test_refused_client_means_new_consent_and_new_registration(
    stack: Stack, mcp_server: McpEmulatorServer
) -> None:
    """The auth server forgets our client: the refresh is refused, the session lives on, the
    MCP pair is dropped, and the next consent registers again."""
    sidecar = await _signed_in(stack, mcp_server)
    await connect_mcp(sidecar)
    stack.emulator.mcp_auth.forget_clients()
    stack.clock.advance(3600)
    resp = await sidecar.client.post("/mcp", json=INIT, headers=MCP_HEADERS)
    assert resp.status == 401
    assert (await resp.json())["error"] == "mcp_login_required"
    session = await sidecar.get("/auth/session")
    assert session.status == 200
    assert (await session.json())["mcp"] == {"connected": False}
    _, landed = await connect_mcp(sidecar)
    assert landed == "/tools"
    assert stack.emulator.mcp_auth.registrations == 2
    resp = await sidecar.client.post("/mcp", json=INIT, headers=MCP_HEADERS)
    assert resp.status == 200


async def test_public_client_registration(stack: Stack, mcp_server: McpEmulatorServer) -> None:
    """A secret-less (public, PKCE-only) registration works the same way."""
    stack.emulator.mcp_auth.confidential = False
    sidecar = await _signed_in(stack, mcp_server)
    _, landed = await connect_mcp(sidecar)
    assert landed == "/tools"
    client = next(iter(stack.emulator.mcp_auth.clients.values()))
    assert client.client_secret is None
    resp = await sidecar.client.post("/mcp", json=INIT, headers=MCP_HEADERS)
    assert resp.status == 200


async def test_atlassian_token_mode_sends_the_3lo_token(
    stack: Stack, mcp_server: McpEmulatorServer
) -> None:
    """SIDECAR_MCP_AUTH=atlassian-token forwards the 3LO token, which this MCP server refuses:
    its 401 and WWW-Authenticate reach the client unchanged."""
    sidecar = await _signed_in(stack, mcp_server, SIDECAR_MCP_AUTH="atlassian-token")
    resp = await sidecar.client.post("/mcp", json=INIT, headers=MCP_HEADERS)
    assert resp.status == 401
    assert "resource_metadata=" in resp.headers["WWW-Authenticate"]
    assert "X-Sidecar-Error" not in resp.headers
