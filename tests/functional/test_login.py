"""The 3LO login end to end: sidecar ⇄ emulator over loopback, sessions in a real Redis."""

from __future__ import annotations

import base64
import hashlib
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest

from ..harness import CLIENT_ID, CLIENT_SECRET, SITE_A, SITE_B, Stack

pytestmark = pytest.mark.parametrize("store_kind", ["redis", "cluster"], indirect=True)


async def test_login_redirects_to_atlassian_with_every_required_parameter(stack: Stack) -> None:
    """/auth/login sends the browser to /authorize with audience, offline_access, state and PKCE."""
    sidecar = await stack.sidecar()
    location = await sidecar.start_login("/app")
    parts = urlsplit(location)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == f"{stack.emulator_url}/authorize"
    assert query["audience"] == "api.atlassian.com"
    assert query["client_id"] == CLIENT_ID
    assert query["response_type"] == "code"
    assert query["prompt"] == "consent"
    assert query["redirect_uri"] == f"{sidecar.url}/auth/callback"
    assert "offline_access" in query["scope"].split(" ")
    assert "%20" in parts.query.split("scope=")[1].split("&")[0]
    assert len(base64.urlsafe_b64decode(query["state"] + "==")) >= 16
    assert query["code_challenge_method"] == "S256"
    assert 43 <= len(query["code_challenge"]) <= 128
    assert "openid" not in query["scope"]


async def test_full_login_exchanges_code_with_secret_and_pkce_verifier(stack: Stack) -> None:
    """The callback exchanges the code with the secret and the verifier matching the challenge."""
    sidecar = await stack.sidecar()
    authorize = await sidecar.start_login("/app?x=1")
    challenge = parse_qs(urlsplit(authorize).query)["code_challenge"][0]
    callback = await stack.consent(authorize)
    resp = await sidecar.finish(callback)
    assert resp.status == 302
    assert resp.headers["Location"] == "/app?x=1"
    [call] = stack.emulator.token_calls
    assert call.grant_type == "authorization_code"
    assert call.client_id == CLIENT_ID
    assert call.status == 200
    assert call.content_type == "json"
    assert call.redirect_uri == f"{sidecar.url}/auth/callback"
    assert call.code_verifier is not None
    digest = hashlib.sha256(call.code_verifier.encode()).digest()
    assert base64.urlsafe_b64encode(digest).rstrip(b"=").decode() == challenge
    assert sidecar.metric("sidecar_logins_total", result="success") == 1


async def test_form_token_request_format_is_honoured(stack: Stack) -> None:
    """SIDECAR_TOKEN_REQUEST_FORMAT=form posts RFC 6749 form bodies."""
    sidecar = await stack.sidecar({"SIDECAR_TOKEN_REQUEST_FORMAT": "form"})
    resp = await sidecar.login()
    assert resp.status == 302
    assert stack.emulator.token_calls[0].content_type == "form"


async def test_session_report_lists_both_sites_and_the_user_without_tokens(stack: Stack) -> None:
    """/auth/session shows user, both sites with their products, and never a token."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    resp = await sidecar.get("/auth/session")
    assert resp.status == 200
    body = await resp.json()
    assert body["authenticated"] is True
    assert body["user"]["email"] == "mia@example.com"
    sites = {s["cloud_id"]: s for s in body["sites"]}
    assert set(sites) == {SITE_A, SITE_B}
    assert sites[SITE_A]["products"] == ["confluence", "jira"]
    assert sites[SITE_B]["products"] == ["jira"]
    assert body["access_token_expires_at"].endswith("Z")
    text = await resp.text()
    for secret in stack.emulator.issued_secrets():
        assert secret not in text
    assert resp.headers["Cache-Control"] == "no-store"


async def test_no_session_is_401_login_required_with_login_url(stack: Stack) -> None:
    """Without a cookie, API routes answer the contract's JSON 401, never a redirect."""
    sidecar = await stack.sidecar()
    resp = await sidecar.get("/auth/session")
    assert resp.status == 401
    assert resp.headers["X-Sidecar-Error"] == "login_required"
    body = await resp.json()
    assert body["error"] == "login_required"
    assert body["login_url"].startswith("/auth/login?return_to=")
    assert body["request_id"] == resp.headers["X-Request-ID"]
    proxied = await sidecar.get(f"/jira/{SITE_A}/rest/api/3/myself")
    assert proxied.status == 401
    assert "Location" not in proxied.headers


async def test_navigation_to_a_proxied_route_is_redirected_to_login(stack: Stack) -> None:
    """A top-level browser navigation gets 302 to /auth/login with the path to come back to."""
    sidecar = await stack.sidecar()
    resp = await sidecar.client.get(
        f"/jira/{SITE_A}/rest/api/3/myself?a=1",
        headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"},
        allow_redirects=False,
    )
    assert resp.status == 302
    assert resp.headers["Location"] == (
        "/auth/login?return_to=%2Fjira%2F" + SITE_A + "%2Frest%2Fapi%2F3%2Fmyself%3Fa%3D1"
    )


async def test_denied_consent_is_a_clear_403_and_uses_up_the_state(stack: Stack) -> None:
    """F13: Deny → 403 access_denied without any token call; replaying the state → 400."""
    sidecar = await stack.sidecar()
    authorize = await sidecar.start_login()
    callback = await stack.consent(authorize, "deny")
    assert "error=access_denied" in callback
    resp = await sidecar.client.get(
        urlsplit(callback).path
        + "?"
        + urlsplit(callback).query
        + "&error_description=%3Cscript%3Ealert(1)%3C%2Fscript%3E",
        headers={"Accept": "text/html"},
        allow_redirects=False,
    )
    assert resp.status == 403
    page = await resp.text()
    assert "<script>alert(1)" not in page
    assert resp.headers["X-Sidecar-Error"] == "access_denied"
    assert stack.emulator.token_calls == []
    assert sidecar.metric("sidecar_logins_total", result="denied") == 1
    again = await sidecar.finish(callback)
    assert again.status == 400
    no_state = await sidecar.get("/auth/callback?error=access_denied")
    assert no_state.status == 400
    assert (await no_state.json())["error"] == "bad_request"
    assert sidecar.metric("sidecar_logins_total", result="state_invalid") == 2


async def test_replayed_callback_and_foreign_state_are_refused(stack: Stack) -> None:
    """A callback finished in another browser, or replayed, never starts a session."""
    sidecar = await stack.sidecar()
    authorize = await sidecar.start_login()
    callback = await stack.consent(authorize)
    other = await stack.sidecar()  # another browser (its own cookie jar) on another replica
    stolen = await other.finish(callback)
    assert stolen.status == 400
    assert other.cookie() is None
    assert len(stack.emulator.token_calls) == 0
    # the foreign attempt could not spend the state: the rightful browser still finishes
    rightful = await sidecar.finish(callback)
    assert rightful.status == 302
    replay = await sidecar.finish(callback)
    assert replay.status == 400
    assert len(stack.emulator.token_calls) == 1


async def test_login_always_mints_a_new_session_id(stack: Stack) -> None:
    """F43: a planted or pre-login cookie is never reused; the old session's keys are gone."""
    sidecar = await stack.sidecar()
    name = sidecar.settings.session.cookie_name
    sidecar.client.session.cookie_jar.update_cookies({name: "attacker-chosen-0000"})
    first = (await sidecar.login()).cookies[name].value
    assert first != "attacker-chosen-0000"
    assert len(first) > 40
    second = (await sidecar.login()).cookies[name].value
    assert second != first
    r = stack.redis()
    sid_first = first.partition(".")[0]
    assert r.exists(f"sc:{{{sid_first}}}:s", f"sc:{{{sid_first}}}:t") == 0
    sidecar.use_cookie(first)
    assert (await sidecar.get("/auth/session")).status == 401


async def test_parallel_logins_in_tabs_all_succeed_with_their_own_verifier(stack: Stack) -> None:
    """F15/F18: three tabs log in; callbacks finished in any order land on their own return_to."""
    sidecar = await stack.sidecar()
    authorizes = {path: await sidecar.start_login(path) for path in ("/a", "/b", "/c")}
    callbacks = {path: await stack.consent(url) for path, url in authorizes.items()}
    for path in ("/c", "/a", "/b"):
        resp = await sidecar.finish(callbacks[path])
        assert resp.status == 302, await resp.text()
        assert resp.headers["Location"] == path
    assert [c.status for c in stack.emulator.token_calls] == [200, 200, 200]


async def test_many_abandoned_logins_keep_one_small_cookie(stack: Stack) -> None:
    """F18: forty unfinished logins leave one pre-auth cookie; only the latest ten stay valid."""
    sidecar = await stack.sidecar()
    urls = [await sidecar.start_login(f"/t{i}") for i in range(40)]
    cookies = list(sidecar.client.session.cookie_jar)
    assert len(cookies) == 1
    header = "; ".join(f"{c.key}={c.value}" for c in cookies)
    assert len(header) < 200
    oldest = await sidecar.finish(await stack.consent(urls[0]))
    assert oldest.status == 400
    newest = await sidecar.finish(await stack.consent(urls[-1]))
    assert newest.status == 302
    assert newest.headers["Location"] == "/t39"


@pytest.mark.parametrize(
    ("return_to", "expected"),
    [
        ("https://evil.example/", "/"),
        ("//evil.example/", "/"),
        ("/\\evil.example/", "/"),
        ("/%5Cevil.example/", "/"),
        ("/%09/evil.example/", "/"),
        ("/\t/evil.example", "/"),
        ("%2F%2Fevil.example", "/"),
        ("https:evil.example", "/"),
        ("javascript:alert(1)", "/"),
        (f"/jira/{SITE_A}/rest/api/3/myself", f"/jira/{SITE_A}/rest/api/3/myself"),
        ("/app?x=1&y=%2F", "/app?x=1&y=%2F"),
    ],
)
async def test_return_to_only_accepts_same_origin_paths(
    stack: Stack, return_to: str, expected: str
) -> None:
    """F20: after the callback the browser lands on the safe path, never another origin."""
    sidecar = await stack.sidecar()
    resp = await sidecar.login(return_to=return_to)
    assert resp.status == 302
    assert resp.headers["Location"] == expected


async def test_no_offline_access_means_reauth_at_expiry_without_refresh_calls(stack: Stack) -> None:
    """F12: a grant without a refresh token ends with 401 reauth_required at expiry, no 500."""
    sidecar = await stack.sidecar()
    authorize = await sidecar.start_login()
    # a consent screen that drops offline_access (user or console config): strip it from the URL
    parts = urlsplit(authorize)
    query = parse_qs(parts.query)
    query["scope"] = [" ".join(s for s in query["scope"][0].split() if s != "offline_access")]
    stripped = f"{parts.scheme}://{parts.netloc}{parts.path}?{urlencode(query, doseq=True)}"
    await sidecar.finish(await stack.consent(stripped))
    assert (await sidecar.get(f"/jira/{SITE_A}/rest/api/3/myself")).status == 200
    stack.clock.advance(3600)
    resp = await sidecar.get(f"/jira/{SITE_A}/rest/api/3/myself")
    assert resp.status == 401
    assert (await resp.json())["error"] == "reauth_required"
    assert [c.grant_type for c in stack.emulator.token_calls] == ["authorization_code"]
    assert (await sidecar.get("/auth/session")).status == 401


async def test_logout_deletes_the_session_everywhere_it_lives(stack: Stack) -> None:
    """POST /auth/logout: 204, cookie cleared, keys deleted, old cookie refused."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    cookie = sidecar.cookie()
    assert cookie is not None
    resp = await sidecar.client.post("/auth/logout")
    assert resp.status == 204
    sid = cookie.partition(".")[0]
    assert stack.redis().exists(f"sc:{{{sid}}}:s", f"sc:{{{sid}}}:t") == 0
    sidecar.use_cookie(cookie)
    assert (await sidecar.get("/auth/session")).status == 401
    assert sidecar.metric("sidecar_sessions_ended_total", reason="logout") == 1


async def test_logout_everywhere_ends_every_session_of_the_account(stack: Stack) -> None:
    """?everywhere=1 ends the account's sessions in other browsers too."""
    laptop = await stack.sidecar()
    phone = await stack.sidecar()
    await laptop.login()
    await phone.login()
    resp = await laptop.client.post("/auth/logout?everywhere=1")
    assert resp.status == 204
    assert (await phone.get("/auth/session")).status == 401


async def test_form_logout_redirects_to_a_safe_return_to(stack: Stack) -> None:
    """A form post to /auth/logout gets 303 to its return_to (unsafe targets become /)."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    resp = await sidecar.client.post(
        "/auth/logout", data={"return_to": "//evil.example"}, allow_redirects=False
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "/"


async def test_wrong_client_secret_is_an_operator_error_not_a_crash(stack: Stack) -> None:
    """A refused client secret at the exchange answers 502 upstream_unavailable, never 500."""
    sidecar = await stack.sidecar({"SIDECAR_CLIENT_SECRET": "not-the-secret"})
    resp = await sidecar.login()
    assert resp.status == 502
    assert resp.headers["X-Sidecar-Error"] == "upstream_unavailable"
    assert sidecar.metric("sidecar_logins_total", result="exchange_failed") == 1
    assert CLIENT_SECRET not in await resp.text()
