"""``atlassian-sidecar dev``: the Atlassian emulator and the sidecar wired together in one process,
with generated secrets, so a frontend developer needs no Atlassian app to start.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import Awaitable, Callable, Mapping

from aiohttp import web

from sidecar.cli import serve
from sidecar.config import Settings
from sidecar.emulator import Emulator, EmulatorConfig, create_emulator_app

__all__ = ["DEV_SCOPES", "dev_environment", "run_dev"]

DEV_SCOPES = (
    "read:jira-work write:jira-work read:jira-user read:confluence-content.summary "
    "read:confluence-content.all read:page:confluence read:space:confluence read:me"
)


def dev_environment(environ: Mapping[str, str], emulator_port: int) -> dict[str, str]:
    """The environment for dev mode: what the user set, plus emulator URLs and fresh secrets."""
    emulator_url = f"http://localhost:{emulator_port}"
    defaults = {
        "SIDECAR_CLIENT_ID": "sidecar-dev",
        "SIDECAR_CLIENT_SECRET": secrets.token_urlsafe(24),
        "SIDECAR_SECRET_KEYS": secrets.token_urlsafe(32),
        "SIDECAR_AUTH_URL": emulator_url,
        "SIDECAR_API_URL": emulator_url,
        # The emulator's MCP server listens on the next port (its auth server lives on the first).
        "SIDECAR_MCP_URL": f"http://localhost:{emulator_port + 1}/v1/mcp",
        "SIDECAR_SCOPES": DEV_SCOPES,
        # The emulator signs anyone in without a password: keep dev mode off the network.
        "SIDECAR_LISTEN": "127.0.0.1:8080",
        "SIDECAR_METRICS_LISTEN": "127.0.0.1:9090",
        "SIDECAR_LOG_FORMAT": "console" if sys.stdout.isatty() else "json",
    }
    return {**defaults, **{k: v for k, v in environ.items() if k.startswith("SIDECAR_")}}


async def run_dev(settings: Settings, emulator_host: str, emulator_port: int) -> None:
    """Start the emulator, print where to go, then serve until stopped."""
    emulator = Emulator(
        EmulatorConfig(
            client_id=settings.oauth.client_id,
            client_secret=settings.oauth.client_secret.value,
            redirect_uris=(settings.oauth.redirect_uri,),
        )
    )
    runner = web.AppRunner(create_emulator_app(emulator), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, emulator_host, emulator_port).start()
    stop_mcp = await _start_mcp(emulator, settings, emulator_host, emulator_port + 1)
    public = settings.oauth.public_url
    print(  # noqa: T201 - the dev banner is for a person at a terminal
        f"\nAtlassian emulator on {settings.oauth.auth_url}\n"
        f"Sign in:        {public}/auth/login\n"
        f"Your session:   {public}/auth/session\n"
        f"Jira example:   {public}/jira/acme/rest/api/3/myself\n"
        f"Confluence:     {public}/wiki/acme/api/v2/pages\n"
        f"MCP:            connect at {public}/auth/mcp/login, then point an MCP client at "
        f"{public}/mcp\n",
        flush=True,
    )

    def customize(app: web.Application) -> None:
        _add_home(app)
        if stop_mcp is not None:
            app.on_cleanup.append(stop_mcp)

    await serve(settings, extra=[runner], customize=customize)


async def _start_mcp(
    emulator: Emulator, settings: Settings, host: str, port: int
) -> Callable[[web.Application], Awaitable[None]] | None:
    """Serve the emulator's MCP server (needs the ``mcp`` SDK: the ``emulator`` extra)."""
    try:
        from sidecar.emulator.mcp.server import McpEmulatorServer  # noqa: PLC0415 - optional
    except ImportError:
        print("MCP emulator off: install atlassian-sidecar[emulator]", flush=True)  # noqa: T201
        return None
    server = McpEmulatorServer(
        emulator, auth_url=settings.oauth.auth_url, host=host, port=port, public_host="localhost"
    )
    await server.start()

    async def stop(_app: web.Application) -> None:
        await server.stop()

    return stop


_HOME = """<!doctype html><html lang=en><head><meta charset=utf-8>
<title>atlassian-sidecar dev</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:48rem;margin:5vh auto;padding:0 1rem}
pre{background:#f4f5f7;padding:1rem;overflow:auto}</style></head><body>
<h1>atlassian-sidecar (dev mode)</h1>
<p><a href="/auth/login?return_to=/">Sign in</a> ·
<form method=post action="/auth/logout" style="display:inline"><button>Sign out</button></form></p>
<h2>Session</h2><pre id=session>…</pre><h2>/jira/acme/rest/api/3/myself</h2><pre id=myself>…</pre>
<script>
for (const [id, url] of [["session", "/auth/session"], ["myself", "/jira/acme/rest/api/3/myself"]])
  fetch(url, {credentials: "include", headers: {Accept: "application/json"}})
    .then(r => r.text()).then(t => { document.getElementById(id).textContent = t; });
</script></body></html>"""


async def _home(_request: web.Request) -> web.StreamResponse:
    return web.Response(
        text=_HOME,
        content_type="text/html",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"},
    )


def _add_home(app: web.Application) -> None:
    """Dev mode only: a page at / that signs in and shows what the sidecar returns."""
    app.router.add_get("/", _home)
