"""The server underneath the app: malformed requests get the contract's 400 and are never echoed
back or logged with their bytes (a session cookie in an over-long header line, say).
"""

from __future__ import annotations

import io
import json
from contextlib import redirect_stdout

from aiohttp import web

from sidecar.app import Overrides, create_app
from sidecar.config import LogSettings
from sidecar.log import configure_logging
from sidecar.server import SidecarRunner

from ..conftest import free_port
from ..harness import Stack
from ..upstreams import raw_request


async def test_oversized_header_is_refused_without_echoing_it(stack: Stack) -> None:
    """A 9 KB Cookie line: 400 bad_request JSON; the cookie is neither in the body nor the log."""
    port = free_port()
    settings = stack.settings(port, {})
    output = io.StringIO()
    with redirect_stdout(output):
        configure_logging(LogSettings(format="json", level="debug"))
    runner = SidecarRunner(create_app(settings, overrides=Overrides(clock=stack.clock)))
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    secret_cookie = "sidecar_session=SECRETSECRETSECRET.value"
    try:
        status, headers, body, _ = await raw_request(
            port, "/auth/session", {"Cookie": secret_cookie + "; pad=" + "p" * 9000}
        )
        long_url = "/jira/acme/x?q=" + "SECRETSECRETSECRET" * 600
        status_url, _, body_url, _ = await raw_request(port, long_url, {})
        ok, _, _, _ = await raw_request(port, "/livez", {})
    finally:
        await runner.cleanup()
    assert status == 400
    assert headers["X-Sidecar-Error"] == "bad_request"
    assert json.loads(body)["error"] == "bad_request"
    assert status_url == 400
    assert ok == 200
    for text in (body.decode(), body_url.decode(), output.getvalue()):
        assert "SECRETSECRETSECRET" not in text
    assert '"event": "malformed_request"' in output.getvalue()
