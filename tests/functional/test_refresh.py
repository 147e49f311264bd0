"""Token refresh through the sidecar: rotation kept, exactly-once under concurrency and across
replicas, refusals end the session, outages keep it (field cases F01, F03, F04, F05, F11, F16).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import pytest

from sidecar.auth.model import TokenSet
from sidecar.auth.seal import Sealer
from sidecar.auth.tokens import SessionRef, TokenStore
from sidecar.store.redis import RedisStore, connect_redis

from ..harness import SECRET_KEY, SITE_A, Sidecar, Stack

MYSELF = f"/jira/{SITE_A}/rest/api/3/myself"
SPACES = f"/wiki/{SITE_A}/api/v2/spaces?limit=1"
INVALID_GRANT = json.dumps(
    {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."}
)

pytestmark = pytest.mark.parametrize("store_kind", ["redis", "cluster"], indirect=True)


def refreshes(stack: Stack) -> list[str | None]:
    """The refresh tokens the emulator was asked to spend, in order."""
    return [c.refresh_token for c in stack.emulator.token_calls if c.grant_type == "refresh_token"]


def api_tokens(stack: Stack) -> list[str | None]:
    """The bearer tokens the gateway saw on /ex/ calls, in order."""
    return [r.token for r in stack.emulator.api_requests if "/ex/" in r.raw_path]


async def stored_tokens(stack: Stack, sidecar: Sidecar) -> TokenSet:
    """Open the session's sealed pair with its cookie (what the sidecar itself would read)."""
    cookie = sidecar.cookie()
    ref = SessionRef.parse(cookie)
    assert ref is not None
    store = RedisStore(connect_redis(stack.redis_url or "", cluster=stack.cluster))
    try:
        stored = await TokenStore(store, Sealer((SECRET_KEY.encode(),))).load(ref)
    finally:
        await store.close()
    assert stored is not None
    return stored.tokens


async def test_rotated_refresh_token_is_kept_and_never_spent_twice(stack: Stack) -> None:
    """F01: two expiries, two refreshes with rt-1 then rt-2; the API sees at-2 then at-3."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    first = await stored_tokens(stack, sidecar)
    stack.clock.advance(3600)
    assert (await sidecar.get(MYSELF)).status == 200
    second = await stored_tokens(stack, sidecar)
    stack.clock.advance(3600)
    resp = await sidecar.get(MYSELF)
    assert resp.status == 200
    assert (await resp.json())["emailAddress"] == "mia@example.com"
    third = await stored_tokens(stack, sidecar)
    assert refreshes(stack) == [first.refresh_token, second.refresh_token]
    assert api_tokens(stack) == [second.access_token, third.access_token]
    assert third.expires_at == pytest.approx(stack.clock() + 3600)
    assert sidecar.metric("sidecar_token_refresh_total", result="success") == 2
    assert sidecar.metric("sidecar_token_refresh_last_success_timestamp_seconds") > 0


async def test_refresh_happens_before_forwarding_inside_the_skew(stack: Stack) -> None:
    """F05a: a token expiring within 60 s is refreshed first; the gateway never sees it."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    old = await stored_tokens(stack, sidecar)
    stack.clock.advance(3600 - 20)
    assert (await sidecar.get(MYSELF)).status == 200
    assert old.access_token not in api_tokens(stack)
    assert len(refreshes(stack)) == 1


@pytest.mark.parametrize("missing", ["absent", "null", "empty"])
async def test_answer_without_refresh_token_keeps_the_old_one(stack: Stack, missing: str) -> None:
    """F03a/b, F05b: an answer without refresh_token keeps rt-1; a 401 refreshes, replays once."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    old = await stored_tokens(stack, sidecar)
    answer: dict[str, object] = {
        "access_token": "at-unknown-to-gateway",
        "expires_in": 3600,
        "token_type": "Bearer",
        "scope": "read:jira-work",
    }
    if missing != "absent":
        answer["refresh_token"] = None if missing == "null" else ""
    stack.emulator.fail_next_token_calls(1, status=200, body=json.dumps(answer))
    stack.clock.advance(3600)
    resp = await sidecar.get(MYSELF)
    # the injected token is refused by the gateway (401): one forced refresh, one replay
    assert resp.status == 200
    assert refreshes(stack) == [old.refresh_token, old.refresh_token]
    assert api_tokens(stack)[0] == "at-unknown-to-gateway"
    assert len(api_tokens(stack)) == 2
    assert sidecar.metric("sidecar_token_refresh_total", result="success_no_rotation") == 1
    assert sidecar.metric("sidecar_token_refresh_total", result="success") == 1


async def test_scope_mismatch_401_passes_through_without_refresh(stack: Stack) -> None:
    """F07: 'scope does not match' is returned untouched, no token call, session intact."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    resp = await sidecar.get(f"/jira/{SITE_A}/rest/agile/1.0/board")
    assert resp.status == 401
    assert (await resp.json()) == {"code": 401, "message": "Unauthorized; scope does not match"}
    assert "X-Sidecar-Error" not in resp.headers
    assert refreshes(stack) == []
    assert sidecar.metric("sidecar_upstream_auth_errors_total", kind="scope_mismatch") == 1
    assert (await sidecar.get(MYSELF)).status == 200


async def test_streamed_body_is_not_replayed_but_next_request_has_new_token(stack: Stack) -> None:
    """F05c: a chunked POST hit by a 401 gets the 401; the next call has the new token."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    stack.emulator.fail_next_token_calls(
        1,
        status=200,
        body=json.dumps({"access_token": "at-bogus", "refresh_token": None, "expires_in": 3600}),
    )
    stack.clock.advance(3600)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"body": "' + b"x" * 2000
        yield b'"}'

    resp = await sidecar.client.post(
        f"/jira/{SITE_A}/rest/api/3/issue/ACME-1/comment",
        data=chunks(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
    )
    assert resp.status == 401
    assert len(refreshes(stack)) == 2
    posts = [r for r in stack.emulator.api_requests if r.method == "POST"]
    assert len(posts) == 1
    assert (await sidecar.get(MYSELF)).status == 200
    assert len(refreshes(stack)) == 2


@pytest.mark.parametrize("replicas", [1, 2])
async def test_concurrent_requests_on_an_expired_token_refresh_exactly_once(
    stack: Stack, replicas: int
) -> None:
    """F04/F16: 50 concurrent Jira and Confluence calls over 1 or 2 replicas → one token call."""
    first = await stack.sidecar()
    await first.login()
    cookie = first.cookie()
    assert cookie is not None
    sidecars = [first]
    for _ in range(replicas - 1):
        other = await stack.sidecar()
        other.use_cookie(cookie)
        sidecars.append(other)
    stack.emulator.token_delay = 0.3
    stack.clock.advance(3600)
    paths = [MYSELF if i % 2 else SPACES for i in range(50)]
    answers = await asyncio.gather(
        *(sidecars[i % replicas].get(path) for i, path in enumerate(paths))
    )
    assert [a.status for a in answers] == [200] * 50
    assert len(refreshes(stack)) == 1
    fresh = await stored_tokens(stack, first)
    assert set(api_tokens(stack)) == {fresh.access_token}
    coalesced = sum(s.metric("sidecar_token_refresh_coalesced_total") for s in sidecars)
    assert coalesced >= 49


async def test_refused_refresh_ends_the_session_with_reauth_required(stack: Stack) -> None:
    """F10/F11: invalid_grant → 401 reauth_required, every key deleted, metric counted."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    cookie = sidecar.cookie()
    assert cookie is not None
    stack.emulator.revoke_grant()
    stack.clock.advance(3600)
    resp = await sidecar.get(MYSELF)
    assert resp.status == 401
    body = await resp.json()
    assert body["error"] == "reauth_required"
    assert body["login_url"].startswith("/auth/login")
    sid = cookie.partition(".")[0]
    assert stack.redis().keys(f"sc:{{{sid}}}*") == []
    assert sidecar.metric("sidecar_token_refresh_total", result="rejected") == 1
    assert sidecar.metric("sidecar_sessions_ended_total", reason="reauth") == 1
    assert (await sidecar.get(MYSELF)).status == 401


@pytest.mark.parametrize(
    ("status", "body", "content_type", "expected", "result"),
    [
        (403, INVALID_GRANT, "application/json", 401, "rejected"),
        (400, '{"error":"invalid_grant"}', "application/json", 401, "rejected"),
        (
            403,
            '{"error":"unauthorized_client","error_description":"refresh_token is invalid"}',
            "application/json",
            401,
            "rejected",
        ),
        (401, '{"error":"invalid_client"}', "application/json", 502, "client_error"),
        (
            401,
            '{"error":"access_denied","error_description":"Unauthorized"}',
            "application/json",
            502,
            "client_error",
        ),
        (400, '{"error":"invalid_request"}', "application/json", 502, "client_error"),
        (429, '{"error":"too_many"}', "application/json", 503, "transient_error"),
        (500, "oops", "text/plain", 503, "transient_error"),
        (502, "<html>bad gateway</html>", "text/html", 503, "transient_error"),
        (503, "", "text/plain", 503, "transient_error"),
        (200, "<html>maintenance</html>", "text/html", 503, "transient_error"),
    ],
)
async def test_refresh_failures_are_sorted_into_refusal_fault_and_outage(
    stack: Stack, status: int, body: str, content_type: str, expected: int, result: str
) -> None:
    """F11/F03c: only refusals end the session; faults and outages keep rt-1 for later."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    old = await stored_tokens(stack, sidecar)
    stack.emulator.fail_next_token_calls(1, status=status, body=body, content_type=content_type)
    stack.clock.advance(3600)
    resp = await sidecar.get(MYSELF)
    assert resp.status == expected
    assert sidecar.metric("sidecar_token_refresh_total", result=result) == 1
    if expected == 503:
        assert resp.headers["Retry-After"] == "5"
        assert (await resp.json())["error"] == "temporarily_unavailable"
    if expected == 401:
        assert (await sidecar.get("/auth/session")).status == 401
        return
    assert (await stored_tokens(stack, sidecar)).refresh_token == old.refresh_token
    again = await sidecar.get(MYSELF)
    assert again.status == 200
    assert refreshes(stack) == [old.refresh_token, old.refresh_token]


async def test_token_endpoint_unreachable_keeps_the_session(stack: Stack) -> None:
    """F11: connection refused at the token endpoint is 503 with Retry-After; nothing is lost."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    cookie = sidecar.cookie()
    assert cookie is not None
    dead = await stack.sidecar({"SIDECAR_AUTH_URL": "http://127.0.0.1:9"})
    dead.use_cookie(cookie)
    stack.clock.advance(3600)
    resp = await dead.get(MYSELF)
    assert resp.status == 503
    assert resp.headers["Retry-After"] == "5"
    assert dead.metric("sidecar_token_refresh_total", result="transient_error") == 1
    assert (await sidecar.get(MYSELF)).status == 200


async def test_lost_race_refusal_rereads_and_uses_the_winners_pair(stack: Stack) -> None:
    """F16c: a refusal that follows another replica's rotation is not fatal; its pair is used."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    cookie = sidecar.cookie()
    ref = SessionRef.parse(cookie)
    assert ref is not None
    old = await stored_tokens(stack, sidecar)
    stack.emulator.fail_next_token_calls(1, status=403, body=INVALID_GRANT, delay=0.5)
    stack.clock.advance(3600)
    request = asyncio.create_task(sidecar.get(MYSELF))
    await asyncio.sleep(0.2)
    # meanwhile "another replica" spent rt-1 and stored the new pair
    async with stack.browser.post(
        f"{stack.emulator_url}/oauth/token",
        json={
            "grant_type": "refresh_token",
            "client_id": sidecar.settings.oauth.client_id,
            "client_secret": sidecar.settings.oauth.client_secret.value,
            "refresh_token": old.refresh_token,
        },
    ) as answer:
        pair = await answer.json()
    store = RedisStore(connect_redis(stack.redis_url or "", cluster=stack.cluster))
    winner = TokenSet(pair["access_token"], pair["refresh_token"], stack.clock() + 3600, ())
    await TokenStore(store, Sealer((SECRET_KEY.encode(),))).save(ref, winner, 600)
    await store.close()
    resp = await request
    assert resp.status == 200
    assert api_tokens(stack)[-1] == winner.access_token
    assert sidecar.metric("sidecar_token_refresh_total", result="rejected") == 0
    assert (await sidecar.get("/auth/session")).status == 200
