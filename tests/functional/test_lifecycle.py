"""Session lifecycle and store outages: idle and absolute lifetimes, key rotation, sealed Redis
contents, Redis stopped and restarted under a live session (field cases F43, F45).
"""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path
from typing import Any

import pytest
import redis
import structlog

from sidecar.auth.tokens import SessionRef
from sidecar.emulator import Emulator
from sidecar.errors import LoginRequired
from sidecar.keys import SESSIONS

from ..conftest import RedisServer
from ..harness import SECRET_KEY, SITE_A, Clock, Stack

MYSELF = f"/jira/{SITE_A}/rest/api/3/myself"


def every_value(client: Any) -> bytes:
    """Every key and value in the database, concatenated (what a dump would show)."""
    out = b""
    for key in client.scan_iter():
        kind = client.type(key)
        out += key
        if kind == b"string":
            out += client.get(key) or b""
        elif kind == b"set":
            out += b"".join(client.smembers(key))
        elif kind == b"list":
            out += b"".join(client.lrange(key, 0, -1))
    return out


async def test_a_redis_dump_reveals_no_token_code_or_profile(stack: Stack) -> None:
    """Everything at rest is sealed: no issued secret, e-mail or account id in Redis."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    stack.clock.advance(3600)
    assert (await sidecar.get(MYSELF)).status == 200  # a refresh wrote a second pair
    dump = every_value(redis.Redis.from_url(stack.redis_url or ""))
    assert len(dump) > 200
    secrets = stack.emulator.issued_secrets()
    assert len(secrets) >= 4
    for secret in secrets:
        assert secret.encode() not in dump
    assert b"mia@example.com" not in dump
    assert b"5b10ac8d82e05b22cc7d4ef5" not in dump
    assert b"sidecar-test-client-secret" not in dump


async def test_every_session_key_has_a_ttl_that_follows_the_session(stack: Stack) -> None:
    """Record and tokens expire with the session (idle timeout), never live forever."""
    sidecar = await stack.sidecar({"SIDECAR_SESSION_IDLE_TIMEOUT": "3600"})
    await sidecar.login()
    client = redis.Redis.from_url(stack.redis_url or "")
    keys = list(client.scan_iter())
    assert keys
    for key in keys:
        ttl = client.pttl(key)
        assert 0 < ttl <= 3_600_000 or key.startswith(b"sc:acct:"), key


async def test_idle_and_absolute_lifetimes_are_enforced_server_side(stack: Stack) -> None:
    """Unused past the idle timeout, or older than the maximum age: 401 and counted as expired."""
    sidecar = await stack.sidecar(
        {"SIDECAR_SESSION_IDLE_TIMEOUT": "600", "SIDECAR_SESSION_MAX_AGE": "7200"}
    )
    await sidecar.login()
    for _ in range(6):  # used every 9 minutes: the idle clock keeps moving
        stack.clock.advance(540)
        assert (await sidecar.get("/auth/session")).status == 200
    stack.clock.advance(601)
    assert (await sidecar.get("/auth/session")).status == 401
    assert sidecar.metric("sidecar_sessions_ended_total", reason="expired") == 1
    await sidecar.login()
    statuses = []
    for _ in range(15):  # used every 500 s: only the 7200 s maximum age can end it
        stack.clock.advance(500)
        statuses.append((await sidecar.get("/auth/session")).status)
    assert statuses == [200] * 14 + [401]
    assert sidecar.metric("sidecar_sessions_ended_total", reason="expired") == 2


async def test_key_rotation_opens_old_sessions_and_reseals_them(stack: Stack) -> None:
    """A session sealed under the old key works after rotation and is resealed on its next write."""
    old = await stack.sidecar()
    await old.login()
    cookie = old.cookie()
    assert cookie is not None
    new_key = "n" * 40
    rotated = await stack.sidecar({"SIDECAR_SECRET_KEYS": f"{new_key},{SECRET_KEY}"})
    rotated.use_cookie(cookie)
    stack.clock.advance(120)  # past the touch interval: the record is written again
    assert (await rotated.get(MYSELF)).status == 200
    only_new = await stack.sidecar({"SIDECAR_SECRET_KEYS": new_key})
    only_new.use_cookie(cookie)
    resp = await only_new.get(MYSELF)
    assert resp.status == 200, await resp.text()
    unknown = await stack.sidecar({"SIDECAR_SECRET_KEYS": "u" * 40})
    unknown.use_cookie(cookie)
    assert (await unknown.get(MYSELF)).status == 401


async def test_client_leaving_mid_refresh_does_not_lose_the_new_pair(stack: Stack) -> None:
    """The refresh finishes and is stored although the request that started it was cancelled."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    stack.emulator.token_delay = 0.5
    stack.clock.advance(3600)
    request = asyncio.ensure_future(sidecar.get(MYSELF))
    await asyncio.sleep(0.2)
    request.cancel()
    await asyncio.sleep(0.6)
    stack.emulator.token_delay = 0
    assert (await sidecar.get(MYSELF)).status == 200
    refreshes = [c for c in stack.emulator.token_calls if c.grant_type == "refresh_token"]
    assert len(refreshes) == 1
    assert refreshes[0].status == 200


async def test_store_outage_is_503_and_recovers_without_restart(
    tmp_path: Path, emulator: Emulator, clock: Clock, aiohttp_server: object
) -> None:
    """F45: Redis frozen → 503 with Retry-After (never 500 or a login loop); thawed → 200 again;
    restarted with its data → the same session still works.
    """
    server = RedisServer(tmp_path)
    server.start("--appendonly", "yes", "--appendfsync", "always")
    emulator_server = await aiohttp_server(emulator.app())  # type: ignore[operator]
    url = str(emulator_server.make_url("")).rstrip("/")
    async with Stack(emulator, url, clock, server.url) as stack:
        sidecar = await stack.sidecar()
        await sidecar.login()
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGSTOP)
        capture = structlog.testing.capture_logs()
        logs = capture.__enter__()
        try:  # all at once: each waits out the store's read timeout
            xhr, navigation, login, live, ready = await asyncio.gather(
                sidecar.get(MYSELF),
                sidecar.client.get(
                    MYSELF,
                    headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"},
                    allow_redirects=False,
                ),
                sidecar.client.get("/auth/login", allow_redirects=False),
                sidecar.client.get("/livez"),
                sidecar.client.get("/readyz"),
            )
        finally:
            os.kill(server.process.pid, signal.SIGCONT)
            capture.__exit__(None, None, None)
        store_errors = [e for e in logs if e["event"] == "session_store_error"]
        assert len(store_errors) == 1  # three failed requests, one log line (rate-limited)
        assert xhr.status == 503
        assert xhr.headers["Retry-After"] == "5"
        assert (await xhr.json())["error"] == "temporarily_unavailable"
        assert navigation.status == 503
        assert "text/html" in navigation.headers["Content-Type"]
        assert login.status == 503
        assert live.status == 200
        assert ready.status == 503
        assert sidecar.metric("sidecar_session_store_errors_total", operation="get") >= 1
        assert (await sidecar.get(MYSELF)).status == 200
        assert (await sidecar.client.get("/readyz")).status == 200
        server.stop()
        down = await sidecar.get(MYSELF)
        assert down.status == 503
        server.start("--appendonly", "yes", "--appendfsync", "always")
        statuses = []
        for _ in range(50):
            statuses.append((await sidecar.get(MYSELF)).status)
            if statuses[-1] == 200:
                break
            await asyncio.sleep(0.1)
        assert statuses[-1] == 200
        assert set(statuses) <= {200, 503}
    server.stop()


async def test_a_write_racing_a_logout_does_not_bring_the_session_back(stack: Stack) -> None:
    """A request that loaded the session before a logout cannot write it back afterwards."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    cookie = sidecar.cookie()
    ref = SessionRef.parse(cookie)
    assert ref is not None
    repository = sidecar.client.app[SESSIONS]
    record = await repository.load(ref)  # what an in-flight request holds
    assert record is not None
    assert (await sidecar.client.post("/auth/logout")).status == 204
    stack.clock.advance(120)  # its idle-clock write (or a sites re-check) comes after
    with pytest.raises(LoginRequired):
        await repository.touch(ref, record)
    assert stack.redis().keys(f"sc:{{{ref.sid}}}*") == []
    sidecar.use_cookie(cookie or "")
    assert (await sidecar.get("/auth/session")).status == 401


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("multipart/form-data", b"x"),
        ("multipart/form-data; boundary=xx", b"--xx\r\nfoo"),
        ("application/x-www-form-urlencoded; charset=foo-bar", b"return_to=x"),
        ("application/x-www-form-urlencoded", b"return_to=\xff"),
    ],
)
async def test_logout_with_a_broken_form_still_ends_and_clears(
    stack: Stack, content_type: str, body: bytes
) -> None:
    """A form body that does not parse: the session ends, the cookie is cleared, no 500."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    resp = await sidecar.client.post(
        "/auth/logout", data=body, headers={"Content-Type": content_type}, allow_redirects=False
    )
    assert resp.status == 303
    assert resp.headers["Location"] == "/"
    cleared = resp.cookies[sidecar.settings.session.cookie_name]
    assert cleared.value == ""
    assert (await sidecar.get("/auth/session")).status == 401
