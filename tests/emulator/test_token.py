"""The token endpoint over HTTP: code exchange, PKCE, rotation, faults and revocation."""

from __future__ import annotations

import asyncio
import time

import pytest

from sidecar.emulator import Emulator, pkce_s256

from .helpers import (
    ALL_SCOPES,
    CLIENT_ID,
    REDIRECT_URI,
    Client,
    FakeClock,
    bearer,
    exchange,
    get_code,
    login,
    refresh,
)

_VERIFIER = "a-verifier-that-is-long-enough-0123456789abcdefghijklmnop"
_INVALID_REFRESH = {
    "error": "invalid_grant",
    "error_description": "Unknown or invalid refresh token.",
}


async def _myself_status(client: Client, token: str) -> int:
    resp = await client.get("/me", headers=bearer(token))
    return resp.status


@pytest.mark.parametrize("form", [False, True])
async def test_code_exchange_json_and_form(client: Client, emulator: Emulator, form: bool) -> None:
    """Both JSON and form bodies exchange a code for Atlassian's token response."""
    resp = await exchange(client, await get_code(client), form=form)
    body = await resp.json()
    assert resp.status == 200
    assert resp.content_type == "application/json"
    assert resp.headers["Cache-Control"] == "no-store"
    assert set(body) == {"access_token", "refresh_token", "expires_in", "scope", "token_type"}
    assert body["expires_in"] == 3600
    assert body["token_type"] == "Bearer"
    assert body["scope"] == ALL_SCOPES
    assert body["access_token"] != body["refresh_token"]
    call = emulator.token_calls[-1]
    assert call.content_type == ("form" if form else "json")
    assert (call.grant_type, call.client_id, call.redirect_uri) == (
        "authorization_code",
        CLIENT_ID,
        REDIRECT_URI,
    )
    assert call.status == 200


async def test_no_offline_access_means_no_refresh_token(client: Client) -> None:
    """Without offline_access the grant carries no refresh_token."""
    body = await login(client, scope="read:jira-work read:me")
    assert "refresh_token" not in body
    assert body["scope"] == "read:jira-work read:me"


async def test_pkce_verifier_checked(client: Client) -> None:
    """With a code_challenge at /authorize, only the matching verifier redeems the code."""
    pkce = {"code_challenge": pkce_s256(_VERIFIER), "code_challenge_method": "S256"}
    good = await exchange(client, await get_code(client, **pkce), code_verifier=_VERIFIER)
    assert good.status == 200
    for verifier in ("wrong-verifier", None):
        resp = await exchange(client, await get_code(client, **pkce), code_verifier=verifier)
        assert resp.status == 400
        assert await resp.json() == {
            "error": "invalid_grant",
            "error_description": "Invalid code verifier",
        }


async def test_code_is_single_use(client: Client) -> None:
    """A redeemed code is refused the second time with 400 invalid_request."""
    code = await get_code(client)
    assert (await exchange(client, code)).status == 200
    resp = await exchange(client, code)
    assert resp.status == 400
    assert await resp.json() == {
        "error": "invalid_request",
        "error_description": "authorization_code is invalid",
    }


async def test_code_expires(client: Client, clock: FakeClock) -> None:
    """A code older than code_ttl (600 s) is refused."""
    fresh, stale = await get_code(client), await get_code(client)
    clock.advance(600)
    assert (await exchange(client, fresh)).status == 200
    clock.advance(1)
    resp = await exchange(client, stale)
    assert resp.status == 400
    assert (await resp.json())["error_description"] == "authorization_code is invalid"


async def test_redirect_uri_must_match(client: Client) -> None:
    """A different redirect_uri at exchange is 403 invalid_grant."""
    resp = await exchange(client, await get_code(client), redirect_uri=REDIRECT_URI + "/")
    assert resp.status == 403
    assert await resp.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid authorization code",
    }


@pytest.mark.parametrize("secret", ["wrong-secret", None])
async def test_wrong_or_missing_secret(client: Client, secret: str | None) -> None:
    """Bad client credentials are 401 access_denied, even with a good code."""
    resp = await exchange(client, await get_code(client), client_secret=secret)
    assert resp.status == 401
    assert await resp.json() == {"error": "access_denied", "error_description": "Unauthorized"}


async def test_unsupported_grant_and_garbage_body(client: Client) -> None:
    """Unknown grant types and unreadable bodies are 400s."""
    resp = await exchange(client, "x", grant_type="password")
    assert resp.status == 400
    assert (await resp.json())["error"] == "unsupported_grant_type"
    resp = await client.post(
        "/oauth/token", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert resp.status == 400
    assert (await resp.json())["error"] == "invalid_request"


async def test_rotation_gives_new_pair(client: Client, emulator: Emulator) -> None:
    """Each refresh returns a new access and refresh token; both old ones live on for now."""
    first = await login(client)
    resp = await refresh(client, first["refresh_token"])
    second = await resp.json()
    assert resp.status == 200
    assert resp.headers["Cache-Control"] == "no-store"
    assert second["refresh_token"] != first["refresh_token"]
    assert second["access_token"] != first["access_token"]
    assert second["scope"] == ALL_SCOPES
    assert await _myself_status(client, first["access_token"]) == 200
    assert await _myself_status(client, second["access_token"]) == 200
    call = emulator.token_calls[-1]
    assert (call.grant_type, call.refresh_token, call.status) == (
        "refresh_token",
        first["refresh_token"],
        200,
    )


async def test_reuse_within_window_succeeds(client: Client, clock: FakeClock) -> None:
    """A spent refresh token presented again inside the leeway still gets a fresh pair."""
    first = await login(client)
    second = await (await refresh(client, first["refresh_token"])).json()
    clock.advance(599)
    resp = await refresh(client, first["refresh_token"])
    third = await resp.json()
    assert resp.status == 200
    assert third["refresh_token"] not in (first["refresh_token"], second["refresh_token"])
    assert await _myself_status(client, second["access_token"]) == 200


async def test_reuse_after_window_revokes_family(client: Client, clock: FakeClock) -> None:
    """Reuse after the leeway is 403 invalid_grant and kills every token of the family."""
    first = await login(client)
    other = await login(client)  # a separate consent: an independent family
    second = await (await refresh(client, first["refresh_token"])).json()
    clock.advance(601)
    resp = await refresh(client, first["refresh_token"])
    assert resp.status == 403
    assert resp.headers["Cache-Control"] == "no-store"
    assert await resp.json() == _INVALID_REFRESH
    assert await _myself_status(client, second["access_token"]) == 401
    assert (await refresh(client, second["refresh_token"])).status == 403
    assert await _myself_status(client, other["access_token"]) == 200
    assert (await refresh(client, other["refresh_token"])).status == 200


async def test_old_access_token_dies_after_window(client: Client, clock: FakeClock) -> None:
    """The access token of a rotated refresh token works for reuse_window, then is 401."""
    first = await login(client)
    await refresh(client, first["refresh_token"])
    clock.advance(599)
    assert await _myself_status(client, first["access_token"]) == 200
    clock.advance(2)
    resp = await client.get("/me", headers=bearer(first["access_token"]))
    assert resp.status == 401
    assert await resp.json() == {"code": 401, "message": "Unauthorized"}


async def test_unknown_refresh_token(client: Client) -> None:
    """A refresh token never issued is 403 invalid_grant."""
    resp = await refresh(client, "made-up")
    assert resp.status == 403
    assert await resp.json() == _INVALID_REFRESH


async def test_access_token_expiry(client: Client, clock: FakeClock) -> None:
    """An access token stops working expires_in seconds after issue."""
    body = await login(client)
    clock.advance(3599)
    assert await _myself_status(client, body["access_token"]) == 200
    clock.advance(1)
    assert await _myself_status(client, body["access_token"]) == 401


async def test_fault_injection_answers_and_rotates_nothing(
    client: Client, emulator: Emulator
) -> None:
    """Injected faults answer the next calls verbatim and leave the refresh token unspent."""
    first = await login(client)
    emulator.fail_next_token_calls(
        2, status=503, body="<html>maintenance</html>", content_type="text/html"
    )
    for _ in range(2):
        resp = await refresh(client, first["refresh_token"])
        assert resp.status == 503
        assert resp.content_type == "text/html"
        assert await resp.text() == "<html>maintenance</html>"
    assert [c.status for c in emulator.token_calls[-2:]] == [503, 503]
    assert all(c.injected for c in emulator.token_calls[-2:])
    second = await refresh(client, first["refresh_token"])
    assert second.status == 200
    assert emulator.token_calls[-1].injected is False


async def test_fault_delay_and_token_delay(client: Client, emulator: Emulator) -> None:
    """Faults and the slow-endpoint setting delay the answer by the configured seconds."""
    first = await login(client)
    emulator.fail_next_token_calls(1, status=500, body="{}", delay=0.2)
    started = time.monotonic()
    assert (await refresh(client, first["refresh_token"])).status == 500
    assert time.monotonic() - started >= 0.2
    emulator.token_delay = 0.2
    started = time.monotonic()
    assert (await refresh(client, first["refresh_token"])).status == 200
    assert time.monotonic() - started >= 0.2


async def test_token_calls_recorded_in_arrival_order(client: Client, emulator: Emulator) -> None:
    """Concurrent calls are recorded as they arrive, each with its final status."""
    first = await login(client)
    emulator.token_delay = 0.05
    results = await asyncio.gather(*(refresh(client, first["refresh_token"]) for _ in range(3)))
    assert [r.status for r in results] == [200, 200, 200]
    assert [c.status for c in emulator.token_calls[-3:]] == [200, 200, 200]
    assert {c.refresh_token for c in emulator.token_calls[-3:]} == {first["refresh_token"]}


async def test_revoke_grant_kills_all_tokens(client: Client, emulator: Emulator) -> None:
    """After the user revokes the app, refresh is 403 and API calls are 401."""
    a, b = await login(client), await login(client)
    code = await get_code(client)
    emulator.revoke_grant()
    for tokens in (a, b):
        assert await _myself_status(client, tokens["access_token"]) == 401
        resp = await refresh(client, tokens["refresh_token"])
        assert resp.status == 403
        assert await resp.json() == _INVALID_REFRESH
    assert (await exchange(client, code)).status == 400
    assert (await login(client))["access_token"]  # a new consent works again


async def test_issued_secrets_lists_codes_and_tokens(client: Client, emulator: Emulator) -> None:
    """issued_secrets() holds every code, access token and refresh token handed out."""
    code = await get_code(client)
    first = await (await exchange(client, code)).json()
    second = await (await refresh(client, first["refresh_token"])).json()
    expected = {code, first["access_token"], first["refresh_token"]}
    expected |= {second["access_token"], second["refresh_token"]}
    assert emulator.issued_secrets() == expected
