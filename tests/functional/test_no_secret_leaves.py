"""No secret leaves: a whole login → proxy → refresh → proxy → logout run with logging
configured for real (JSON to stdout at debug level, aiohttp's loggers included), then every
token, code, PKCE verifier, client secret and cookie value is searched for in all of it.
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Iterator

import pytest
import structlog

from sidecar.config import LogSettings
from sidecar.log import configure_logging

from ..harness import CLIENT_SECRET, SITE_A, Stack

CLIENT_BASIC = "Zm9vOmJhcg=="
CLIENT_BEARER = "client-supplied-bearer-4c1f0e"


@pytest.fixture
def stdout_log() -> Iterator[io.StringIO]:
    """The production logging setup, its stdout handler bound to a buffer; undone afterwards."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):  # configure_logging binds sys.stdout as it is now
        configure_logging(LogSettings(format="json", level="debug"))
    structlog.configure(cache_logger_on_first_use=False)
    yield buffer
    root.handlers[:] = handlers
    root.setLevel(level)
    logging.getLogger("aiohttp.access").setLevel(logging.NOTSET)


async def test_no_secret_in_logs_metrics_bodies_or_locations(
    stack: Stack, stdout_log: io.StringIO
) -> None:
    """Every secret the run handled is absent from stdout, metrics, bodies and Locations."""
    sidecar = await stack.sidecar()
    answers: list[str] = []

    async def keep(resp_text: str, headers: dict[str, str]) -> None:
        answers.append(resp_text)
        answers.extend(f"{k}: {v}" for k, v in headers.items() if k.lower() != "set-cookie")

    login = await sidecar.login("/app")
    assert login.status == 302
    await keep(await login.text(), dict(login.headers))
    login_cookie = sidecar.cookie(sidecar.settings.session.login_cookie_name)
    session_cookie = sidecar.cookie()
    assert session_cookie is not None
    assert login_cookie is not None
    path = f"/jira/{SITE_A}/rest/api/3/myself"
    for headers in (
        {"Authorization": f"Basic {CLIENT_BASIC}"},
        {"Authorization": f"Bearer {CLIENT_BEARER}"},
    ):
        resp = await sidecar.get(path, **headers)
        assert resp.status == 200
        await keep(await resp.text(), dict(resp.headers))
    stack.clock.advance(3600)  # the access token expires: the next call refreshes it
    refreshed = await sidecar.get(path)
    assert refreshed.status == 200
    await keep(await refreshed.text(), dict(refreshed.headers))
    assert [c.grant_type for c in stack.emulator.token_calls] == [
        "authorization_code",
        "refresh_token",
    ]
    session = await sidecar.get("/auth/session")
    await keep(await session.text(), dict(session.headers))
    # a replayed callback with its real code, and a forged one: both refused, both logged
    authorize = await sidecar.start_login("/again")
    callback = await stack.consent(authorize)
    first = await sidecar.finish(callback)
    replay = await sidecar.finish(callback)
    assert replay.status == 400
    for resp in (first, replay):
        await keep(await resp.text(), dict(resp.headers))
    forged = await sidecar.get("/auth/callback?code=forged-code-77&state=forged-state")
    await keep(await forged.text(), dict(forged.headers))
    out = await sidecar.client.post("/auth/logout")
    assert out.status == 204

    logged = stdout_log.getvalue()
    assert '"event": "login_succeeded"' in logged
    assert '"event": "token_refreshed"' in logged
    assert '"event": "request"' in logged
    secrets = set(stack.emulator.issued_secrets())
    assert len(secrets) >= 6  # codes, access and refresh tokens of two logins and a refresh
    secrets |= {c.code_verifier for c in stack.emulator.token_calls if c.code_verifier}
    secrets |= {CLIENT_SECRET, CLIENT_BASIC, CLIENT_BEARER, login_cookie, session_cookie}
    secrets |= {session_cookie.partition(".")[2], "forged-code-77"}
    metrics = sidecar.metrics.render().decode()
    for secret in secrets:
        assert secret not in logged, secret
        assert secret not in metrics, secret
        for answer in answers:
            assert secret not in answer, secret
