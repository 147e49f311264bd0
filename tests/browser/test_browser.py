"""The sidecar in a real browser: consent, cross-origin reads and writes from an allowed
frontend, a hostile page that can neither read (CORS) nor write (CSRF), Deny, and logout
across tabs. Chromium, the sidecar, the emulator and the frontends all run on loopback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web
from playwright.async_api import Browser, BrowserContext, Page
from pytest_aiohttp import AiohttpServer

from ..harness import SITE_A, Sidecar, Stack

FRONTEND_PAGE = "<!doctype html><html><head><title>frontend</title></head><body>app</body></html>"


async def frontend(aiohttp_server: AiohttpServer) -> str:
    """A tiny static site on its own port (so its own origin); its base URL."""

    async def index(_request: web.Request) -> web.StreamResponse:
        return web.Response(text=FRONTEND_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    server = await aiohttp_server(app)
    return str(server.make_url("")).rstrip("/")


async def sign_in(context: BrowserContext, sidecar: Sidecar, shots: Path | None = None) -> Page:
    """A person signing in through the consent page; the tab, back on the sidecar."""
    page = await context.new_page()
    await page.goto(f"{sidecar.url}/auth/login?return_to=/auth/session")
    await page.get_by_role("button", name="Accept").wait_for()
    assert page.url.startswith(sidecar.stack.emulator_url + "/authorize")
    if shots is not None:
        await page.screenshot(path=str(shots / "consent.png"), full_page=True)
    async with page.expect_navigation(url=f"{sidecar.url}/auth/session"):
        await page.get_by_role("button", name="Accept").click()
    session = json.loads(await page.inner_text("body"))
    assert session["authenticated"] is True
    return page


ISSUE = {
    "fields": {
        "project": {"key": "ACME"},
        "summary": "Filed from the browser",
        "issuetype": {"name": "Task"},
    }
}

READ_AND_WRITE = """
async ([base, issue]) => {
  const out = {};
  try {
    const me = await fetch(`${base}/rest/api/3/myself`, {credentials: 'include'});
    out.read = {status: me.status, body: await me.json()};
  } catch (e) { out.read = {blocked: e.name}; }
  try {
    const created = await fetch(`${base}/rest/api/3/issue`, {
      method: 'POST', credentials: 'include',
      headers: {'Content-Type': 'application/json'}, body: JSON.stringify(issue)});
    out.write = {status: created.status, body: await created.json()};
  } catch (e) { out.write = {blocked: e.name}; }
  const simple = await fetch(`${base}/rest/api/3/issue`, {
    method: 'POST', mode: 'no-cors', credentials: 'include',
    headers: {'Content-Type': 'text/plain'}, body: JSON.stringify(issue)});
  out.simple = simple.type;
  return out;
}
"""


async def test_allowed_frontend_reads_and_writes_and_hostile_page_can_do_neither(
    browser: Browser, stack: Stack, aiohttp_server: AiohttpServer, artifacts: Path
) -> None:
    """Consent, then an allowed origin reads /myself and creates an issue; another origin's
    fetches are blocked by CORS and its preflight-free POST is refused by the CSRF check.
    """
    allowed = await frontend(aiohttp_server)
    hostile = await frontend(aiohttp_server)
    sidecar = await stack.sidecar({"SIDECAR_ALLOWED_ORIGINS": allowed})
    context = await browser.new_context()
    try:
        await sign_in(context, sidecar, artifacts)
        [cookie] = [c for c in await context.cookies() if c["name"] == "sidecar_session"]
        assert cookie["httpOnly"] is True
        assert cookie["sameSite"] == "Lax"
        issues = stack.emulator.jira[SITE_A].issues
        before = len(issues)
        base = f"{sidecar.url}/jira/{SITE_A}"

        app_page = await context.new_page()
        await app_page.goto(allowed + "/")
        good: dict[str, Any] = await app_page.evaluate(READ_AND_WRITE, [base, ISSUE])
        assert good["read"]["status"] == 200
        assert good["read"]["body"]["emailAddress"] == "mia@example.com"
        assert good["write"]["status"] == 201
        key = good["write"]["body"]["key"]
        assert key.startswith("ACME-")
        created = stack.emulator.jira[SITE_A].issue(key)
        assert created is not None
        assert created.summary == "Filed from the browser"
        assert good["simple"] == "opaque"
        assert len(issues) == before + 2  # a trusted origin's simple POST goes through as well
        assert sidecar.metric("sidecar_proxy_rejected_total", reason="csrf") == 0

        evil_page = await context.new_page()
        await evil_page.goto(hostile + "/")
        bad: dict[str, Any] = await evil_page.evaluate(READ_AND_WRITE, [base, ISSUE])
        assert bad["read"] == {"blocked": "TypeError"}
        assert bad["write"] == {"blocked": "TypeError"}
        assert bad["simple"] == "opaque"
        assert len(issues) == before + 2  # neither the JSON nor the simple POST created one
        assert sidecar.metric("sidecar_proxy_rejected_total", reason="cors") == 1
        assert sidecar.metric("sidecar_proxy_rejected_total", reason="csrf") == 1
    finally:
        await context.close()


async def test_deny_on_the_consent_page_shows_the_sidecars_error_page(
    browser: Browser, stack: Stack, artifacts: Path
) -> None:
    """Deny → Atlassian sends the browser back with access_denied → the sidecar's own page."""
    sidecar = await stack.sidecar()
    context = await browser.new_context()
    try:
        page = await context.new_page()
        await page.goto(f"{sidecar.url}/auth/login?return_to=/app")
        async with page.expect_navigation(url=f"{sidecar.url}/auth/callback*") as navigation:
            await page.get_by_role("button", name="Deny").click()
        response = await navigation.value
        assert response is not None
        assert response.status == 403
        headers = await response.all_headers()
        assert headers["x-sidecar-error"] == "access_denied"
        assert headers["cache-control"] == "no-store"
        assert "default-src 'none'" in headers["content-security-policy"]
        assert await page.title() == "Access denied"
        assert "not granted" in await page.inner_text("body")
        await page.screenshot(path=str(artifacts / "error.png"), full_page=True)
        assert (artifacts / "error.png").stat().st_size > 1000
        assert not [c for c in await context.cookies() if c["name"] == "sidecar_session"]
        assert stack.emulator.token_calls == []
    finally:
        await context.close()


WHO = "async (url) => (await fetch(url, {credentials: 'include'})).status"
LOGOUT = "async (url) => (await fetch(url, {method: 'POST', credentials: 'include'})).status"


async def test_logout_in_one_tab_ends_the_session_for_every_tab(
    browser: Browser, stack: Stack, aiohttp_server: AiohttpServer
) -> None:
    """POST /auth/logout from one tab of the frontend: every tab (and the old cookie anywhere)
    is signed out.
    """
    app = await frontend(aiohttp_server)
    sidecar = await stack.sidecar({"SIDECAR_ALLOWED_ORIGINS": app})
    who = f"{sidecar.url}/auth/session"
    context = await browser.new_context()
    try:
        await sign_in(context, sidecar)
        tabs = [await context.new_page() for _ in range(2)]
        for tab in tabs:
            await tab.goto(app + "/")
            assert await tab.evaluate(WHO, who) == 200
        [cookie] = [c for c in await context.cookies() if c["name"] == "sidecar_session"]
        assert await tabs[0].evaluate(LOGOUT, f"{sidecar.url}/auth/logout") == 204
        assert await tabs[1].evaluate(WHO, who) == 401
        assert await tabs[0].evaluate(WHO, who) == 401
        assert [c for c in await context.cookies() if c["name"] == "sidecar_session"] == []
        sidecar.use_cookie(cookie["value"])  # the old cookie, replayed outside the browser
        assert (await sidecar.get("/auth/session")).status == 401
        assert sidecar.metric("sidecar_sessions_ended_total", reason="logout") == 1
    finally:
        await context.close()


async def test_the_sidecars_own_pages_cannot_run_or_fetch_anything(
    browser: Browser, stack: Stack
) -> None:
    """The restrictive CSP is real: script on a sidecar page cannot even call the sidecar."""
    sidecar = await stack.sidecar()
    context = await browser.new_context()
    try:
        page = await sign_in(context, sidecar)
        outcome = await page.evaluate(
            "async () => { try { await fetch('/auth/session'); return 'fetched'; }"
            " catch (e) { return e.name; } }"
        )
        assert outcome == "TypeError"
    finally:
        await context.close()
