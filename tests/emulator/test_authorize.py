"""The consent flow over HTTP: /authorize validation, the consent page, Accept and Deny."""

from __future__ import annotations

import dataclasses

import pytest
from pytest_aiohttp import AiohttpClient
from yarl import URL

from sidecar.emulator import Emulator, EmulatorConfig

from .helpers import (
    REDIRECT_URI,
    Client,
    authorize_params,
    bearer,
    decide,
    exchange,
    open_consent,
)


async def test_consent_page_names_app_sites_scopes_and_escapes(client: Client) -> None:
    """The consent page lists app, sites and scopes, and escapes what it echoes."""
    resp = await client.get(
        "/authorize", params=authorize_params(scope="read:me <script>alert(1)</script>")
    )
    html = await resp.text()
    assert resp.status == 200
    assert resp.content_type == "text/html"
    assert resp.headers["Cache-Control"] == "no-store"
    assert "Sidecar Dev App is requesting access" in html
    assert "https://acme.atlassian.net" in html
    assert "https://beta.atlassian.net" in html
    assert "Mia Krystof" in html
    assert "<code>read:me</code>" in html
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'action="/authorize/decision"' in html
    assert 'value="accept"' in html
    assert 'value="deny"' in html
    assert "state-123" not in html  # the form carries a consent id, not the raw parameters
    assert "<link" not in html
    assert "<script" not in html


async def test_accept_redirects_with_code_and_state(client: Client) -> None:
    """Accept sends the browser to the exact callback with code and the state as given."""
    state = "a+b/c=d&e f"
    location = await decide(client, await open_consent(client, state=state), "accept")
    assert str(location.with_query(None)) == REDIRECT_URI
    assert set(location.query) == {"code", "state"}
    assert location.query["state"] == state
    assert len(location.query["code"]) >= 40


async def test_deny_redirects_with_access_denied(client: Client) -> None:
    """Deny redirects with Atlassian's access_denied pair, %20-encoded, and the state."""
    resp = await client.post(
        "/authorize/decision",
        data={"consent_id": await open_consent(client), "decision": "deny"},
        allow_redirects=False,
    )
    assert resp.status == 302
    assert resp.headers["Location"] == (
        f"{REDIRECT_URI}?error=access_denied"
        "&error_description=User%20did%20not%20authorize%20the%20request&state=state-123"
    )


async def test_consent_id_is_single_use(client: Client) -> None:
    """A consent can be answered once; a replayed form gets an error page."""
    consent_id = await open_consent(client)
    await decide(client, consent_id, "accept")
    resp = await client.post(
        "/authorize/decision", data={"consent_id": consent_id, "decision": "accept"}
    )
    assert resp.status == 400
    assert "expired" in await resp.text()


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"client_id": "someone-else"}, "Unknown client_id"),
        (
            {"redirect_uri": "http://localhost:8080/auth/callback/"},
            "Callback URL mismatch. http://localhost:8080/auth/callback/ is not in the list",
        ),
        ({"redirect_uri": None}, "Missing required parameter: redirect_uri"),
    ],
)
async def test_bad_client_or_callback_never_redirects(
    client: Client, override: dict[str, str | None], expected: str
) -> None:
    """A wrong client_id or callback shows a 400 unauthorized_client page, not a redirect."""
    resp = await client.get(
        "/authorize", params=authorize_params(**override), allow_redirects=False
    )
    html = await resp.text()
    assert resp.status == 400
    assert "Location" not in resp.headers
    assert expected in html
    assert "unauthorized_client" in html or "invalid_request" in html


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"audience": None}, "Missing required parameter: audience"),
        ({"audience": "example.com"}, "Parameter audience must be api.atlassian.com"),
        ({"response_type": "token"}, "Parameter response_type must be code"),
        ({"prompt": "none"}, "Parameter prompt must be consent"),
        ({"scope": None}, "Missing required parameter: scope"),
        ({"state": None}, "Missing required parameter: state"),
        ({"scope": "openid read:me"}, "openid is not a 3LO scope"),
        ({"code_challenge": "abc", "code_challenge_method": "plain"}, "code_challenge_method"),
    ],
)
async def test_invalid_authorize_parameters(
    client: Client, override: dict[str, str | None], expected: str
) -> None:
    """Each required parameter is checked and reported on an error page."""
    resp = await client.get("/authorize", params=authorize_params(**override))
    assert resp.status == 400
    assert expected in await resp.text()


async def test_any_callback_accepted_when_none_registered(
    aiohttp_client: AiohttpClient, config: EmulatorConfig
) -> None:
    """With no registered callbacks, any absolute http(s) callback is accepted."""
    client = await aiohttp_client(Emulator(dataclasses.replace(config, redirect_uris=())).app())
    other = "https://dev.example.test:3000/cb?tenant=1"
    location = await decide(client, await open_consent(client, redirect_uri=other), "accept")
    assert location.query["tenant"] == "1"
    assert str(location.with_query({"tenant": "1"})) == other
    resp = await client.get("/authorize", params=authorize_params(redirect_uri="/relative"))
    assert resp.status == 400


async def test_second_user_can_consent(
    aiohttp_client: AiohttpClient, config: EmulatorConfig
) -> None:
    """With several users configured the consent form offers a choice of account."""
    other = dataclasses.replace(config.users[0], account_id="other-account", name="Ola Nordmann")
    emulator = Emulator(dataclasses.replace(config, users=(config.users[0], other)))
    client = await aiohttp_client(emulator.app())
    resp = await client.get("/authorize", params=authorize_params())
    html = await resp.text()
    assert '<select name="account_id">' in html
    assert "Ola Nordmann" in html
    consent_id = await open_consent(client)
    resp = await client.post(
        "/authorize/decision",
        data={"consent_id": consent_id, "decision": "accept", "account_id": "other-account"},
        allow_redirects=False,
    )
    code = URL(resp.headers["Location"]).query["code"]
    tokens = await (await exchange(client, code)).json()
    me = await client.get("/me", headers=bearer(tokens["access_token"]))
    assert (await me.json())["name"] == "Ola Nordmann"
    assert (await me.json())["account_id"] == "other-account"
