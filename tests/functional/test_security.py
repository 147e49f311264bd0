"""Browser-facing security over real loopback servers: CSRF, CORS, 401 versus 302, cookies, the
sidecar's own headers and return targets (field cases F20, F21, F23, F34c, F41 step 4).
"""

from __future__ import annotations

import secrets
from urllib.parse import parse_qs, urlsplit

import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer

from ..harness import SITE_A, Sidecar, Stack
from ..upstreams import Recorded, RecordingUpstream, raw_request

Gateway = tuple[RecordingUpstream, str]
APP_ORIGIN = "http://app.example.test:5173"
EVIL_ORIGIN = "https://evil.example"
MYSELF = f"/jira/{SITE_A}/rest/api/3/myself"


async def logged_in(stack: Stack, gateway: Gateway, **env: str) -> Sidecar:
    """A sidecar with APP_ORIGIN allowed, the recording gateway upstream, and a live session."""
    sidecar = await stack.sidecar(
        {"SIDECAR_API_URL": gateway[1], "SIDECAR_ALLOWED_ORIGINS": APP_ORIGIN, **env}
    )
    assert (await sidecar.login()).status == 302
    return sidecar


def port_of(sidecar: Sidecar) -> int:
    """The sidecar's listening port."""
    return int(sidecar.url.rsplit(":", 1)[1])


def cookie_header(sidecar: Sidecar) -> str:
    """The session cookie as a Cookie header value."""
    return f"{sidecar.settings.session.cookie_name}={sidecar.cookie()}"


# --- CSRF -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "headers"),
    [
        ("POST", {"Origin": EVIL_ORIGIN}),
        ("PUT", {"Origin": EVIL_ORIGIN}),
        ("PATCH", {"Origin": EVIL_ORIGIN}),
        ("DELETE", {"Origin": EVIL_ORIGIN}),
        ("PROPFIND", {"Origin": EVIL_ORIGIN}),
        ("MKCOL", {"Origin": EVIL_ORIGIN}),
        ("POST", {"Origin": "null"}),
        ("POST", {"Origin": "http://app.example.test"}),
        ("POST", {"Sec-Fetch-Site": "cross-site"}),
        ("POST", {"Sec-Fetch-Site": "same-site"}),
        ("POST", {"Referer": "https://evil.example/page"}),
        ("POST", {"Sec-Fetch-Site": "cross-site", "Referer": "PLACEHOLDER_OWN/page"}),
    ],
)
async def test_unsafe_cross_site_requests_are_refused_before_anything_is_sent(
    stack: Stack, gateway: Gateway, method: str, headers: dict[str, str]
) -> None:
    """Unsafe (and unknown) methods from an untrusted origin: 403 csrf_failed, nothing upstream."""
    sidecar = await logged_in(stack, gateway)
    sent = {k: v.replace("PLACEHOLDER_OWN", sidecar.url) for k, v in headers.items()}
    status, got, body, _ = await raw_request(
        port_of(sidecar),
        f"/jira/{SITE_A}/rest/api/3/issue",
        {"Cookie": cookie_header(sidecar), "Content-Type": "application/json", **sent},
        method=method,
        body=b'{"fields":{}}',
    )
    assert status == 403
    assert got["X-Sidecar-Error"] == "csrf_failed"
    assert b'"error":"csrf_failed"' in body
    assert gateway[0].ex() == []
    assert sidecar.metric("sidecar_proxy_rejected_total", reason="csrf") == 1


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "OWN"},
        {"Origin": APP_ORIGIN},
        {"Origin": "HTTP://APP.EXAMPLE.TEST:5173"},
        {"Sec-Fetch-Site": "same-origin"},
        {"Sec-Fetch-Site": "none"},
        {"Referer": "OWN/some/page"},
        {},
    ],
)
async def test_same_origin_allowed_origin_and_non_browser_writes_pass(
    stack: Stack, gateway: Gateway, headers: dict[str, str]
) -> None:
    """Own origin, an allowed origin, and clients sending none of the three headers get through."""
    sidecar = await logged_in(stack, gateway)
    sent = {k: v.replace("OWN", sidecar.url) for k, v in headers.items()}
    resp = await sidecar.client.post(
        f"/jira/{SITE_A}/rest/api/3/issue", data=b"{}", headers=sent, allow_redirects=False
    )
    assert resp.status == 200
    [seen] = gateway[0].ex()
    assert seen.method == "POST"


async def test_cross_site_multipart_form_post_is_refused(stack: Stack, gateway: Gateway) -> None:
    """F34c: a cross-site form upload (a CORS-simple request) never reaches Atlassian."""
    sidecar = await logged_in(stack, gateway)
    body = (
        b'------b\r\nContent-Disposition: form-data; name="file"; filename="x"\r\n\r\n'
        b"x\r\n------b--\r\n"
    )
    status, headers, answer, _ = await raw_request(
        port_of(sidecar),
        f"/jira/{SITE_A}/rest/api/3/issue/ABC-1/attachments",
        {
            "Cookie": cookie_header(sidecar),
            "Origin": EVIL_ORIGIN,
            "Sec-Fetch-Site": "cross-site",
            "Sec-Fetch-Mode": "navigate",
            "Content-Type": "multipart/form-data; boundary=----b",
            "X-Atlassian-Token": "no-check",
        },
        method="POST",
        body=body,
    )
    assert status == 403
    assert headers["X-Sidecar-Error"] == "csrf_failed"
    assert b"csrf_failed" in answer
    assert gateway[0].ex() == []


async def test_cross_site_logout_is_refused_and_the_session_survives(
    stack: Stack, gateway: Gateway
) -> None:
    """Logout is state-changing too: a hostile page cannot sign the user out."""
    sidecar = await logged_in(stack, gateway)
    resp = await sidecar.client.post("/auth/logout", headers={"Origin": EVIL_ORIGIN})
    assert resp.status == 403
    assert (await sidecar.get("/auth/session")).status == 200


# --- CORS -------------------------------------------------------------------------------------


async def test_preflight_from_an_allowed_origin_is_answered_by_the_sidecar(
    stack: Stack, gateway: Gateway
) -> None:
    """F41 step 4: 204, credentials, echoed method and listed headers, a max-age; not proxied."""
    sidecar = await logged_in(stack, gateway)
    resp = await sidecar.client.options(
        "/mcp",
        headers={
            "Origin": APP_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,mcp-session-id,mcp-protocol-version,"
            "last-event-id,x-evil",
        },
    )
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert resp.headers["Access-Control-Allow-Methods"] == "POST"
    assert resp.headers["Access-Control-Allow-Headers"] == (
        "Content-Type, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID"
    )
    assert resp.headers["Access-Control-Max-Age"] == "600"
    assert "Origin" in resp.headers["Vary"]
    proxied = await sidecar.client.options(
        f"/jira/{SITE_A}/rest/api/3/issue",
        headers={"Origin": APP_ORIGIN, "Access-Control-Request-Method": "DELETE"},
    )
    assert proxied.status == 204
    assert proxied.headers["Access-Control-Allow-Methods"] == "DELETE"
    assert gateway[0].ex() == []


@pytest.mark.parametrize(
    ("origin", "method"),
    [(EVIL_ORIGIN, "POST"), ("null", "GET"), (APP_ORIGIN, "PROPFIND")],
)
async def test_preflight_from_other_origins_gets_no_cors_headers(
    stack: Stack, gateway: Gateway, origin: str, method: str
) -> None:
    """Untrusted origins (or unlisted methods) get a 403 without any Access-Control-* header."""
    sidecar = await logged_in(stack, gateway)
    resp = await sidecar.client.options(
        f"/jira/{SITE_A}/rest/api/3/issue",
        headers={"Origin": origin, "Access-Control-Request-Method": method},
    )
    assert resp.status == 403
    assert not [h for h in resp.headers if h.lower().startswith("access-control-")]
    assert gateway[0].ex() == []


async def test_proxied_answers_carry_our_cors_headers_and_never_atlassians(
    stack: Stack, gateway: Gateway
) -> None:
    """Atlassian's Access-Control-* are dropped; trusted origins get ours, others get none."""

    async def with_cors(_request: web.Request, _recorded: Recorded) -> web.StreamResponse:
        return web.json_response(
            {"accountId": "x"},
            headers={
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Credentials": "true",
                "Access-Control-Expose-Headers": "X-Secret-Header",
                "Mcp-Session-Id": "m-1",
                "Vary": "Accept-Encoding",
            },
        )

    gateway[0].responder = with_cors
    sidecar = await logged_in(stack, gateway)
    trusted = await sidecar.get(MYSELF, Origin=APP_ORIGIN)
    assert trusted.status == 200
    assert trusted.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert trusted.headers["Access-Control-Allow-Credentials"] == "true"
    exposed = trusted.headers["Access-Control-Expose-Headers"]
    assert "Mcp-Session-Id" in exposed
    assert "X-Secret-Header" not in exposed
    assert trusted.headers.getall("Access-Control-Allow-Origin") == [APP_ORIGIN]
    assert trusted.headers["Vary"] == "Accept-Encoding, Origin"
    hostile = await sidecar.get(MYSELF, Origin=EVIL_ORIGIN)
    assert hostile.status == 200  # a GET is sent by any page; the browser just cannot read it
    assert not [h for h in hostile.headers if h.lower().startswith("access-control-")]
    plain = await sidecar.get(MYSELF)
    assert not [h for h in plain.headers if h.lower().startswith("access-control-")]


async def test_sidecar_errors_are_readable_by_an_allowed_frontend(
    stack: Stack, gateway: Gateway
) -> None:
    """401 and 403 from the sidecar itself carry CORS headers for trusted origins."""
    sidecar = await stack.sidecar(
        {"SIDECAR_API_URL": gateway[1], "SIDECAR_ALLOWED_ORIGINS": APP_ORIGIN}
    )
    no_session = await sidecar.get(MYSELF, Origin=APP_ORIGIN, **{"Sec-Fetch-Mode": "cors"})
    assert no_session.status == 401
    assert no_session.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    assert "X-Sidecar-Error" in no_session.headers["Access-Control-Expose-Headers"]
    await sidecar.login()
    forbidden = await sidecar.get("/jira/99999999-9999-4999-8999-999999999999/x", Origin=APP_ORIGIN)
    assert forbidden.status == 403
    assert forbidden.headers["Access-Control-Allow-Origin"] == APP_ORIGIN
    csrf = await sidecar.client.post(MYSELF, headers={"Origin": EVIL_ORIGIN})
    assert csrf.status == 403
    assert "Access-Control-Allow-Origin" not in csrf.headers


# --- 401 versus 302 (F23) -----------------------------------------------------------------------

XHR_KINDS = [
    {"Accept": "application/json"},
    {"Accept": "*/*", "X-Requested-With": "XMLHttpRequest"},
    {"Accept": "*/*", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
    {"Accept": "text/html", "Sec-Fetch-Mode": "cors", "Sec-Fetch-Dest": "empty"},
]


async def _assert_json_401(sidecar: Sidecar, headers: dict[str, str], code: str) -> None:
    resp = await sidecar.client.get(MYSELF + "?a=1&b=x", headers=headers, allow_redirects=False)
    assert resp.status == 401, headers
    assert "Location" not in resp.headers
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert body["error"] == code
    assert body["login_url"] == (
        "/auth/login?return_to=" + f"%2Fjira%2F{SITE_A}%2Frest%2Fapi%2F3%2Fmyself%3Fa%3D1%26b%3Dx"
    )


async def _assert_login_redirect(sidecar: Sidecar) -> None:
    resp = await sidecar.client.get(
        MYSELF + "?a=1",
        headers={"Accept": "text/html,application/xhtml+xml", "Sec-Fetch-Mode": "navigate"},
        allow_redirects=False,
    )
    assert resp.status == 302
    assert resp.headers["Location"] == (
        f"/auth/login?return_to=%2Fjira%2F{SITE_A}%2Frest%2Fapi%2F3%2Fmyself%3Fa%3D1"
    )
    assert resp.headers["Cache-Control"] == "no-store"


@pytest.mark.parametrize("headers", XHR_KINDS)
async def test_api_calls_without_a_session_get_json_401(
    stack: Stack, headers: dict[str, str]
) -> None:
    """F23a-c: XHR and fetch (and framed navigations) get 401 JSON with login_url, no Location."""
    sidecar = await stack.sidecar()
    await _assert_json_401(sidecar, headers, "login_required")


@pytest.mark.parametrize("headers", XHR_KINDS)
async def test_api_calls_after_a_refused_refresh_get_json_401(
    stack: Stack, headers: dict[str, str]
) -> None:
    """F23a-c with an expired session whose refresh Atlassian refuses: 401 reauth_required."""
    sidecar = await stack.sidecar()
    await sidecar.login()
    stack.emulator.revoke_grant()
    stack.clock.advance(3600)
    await _assert_json_401(sidecar, headers, "reauth_required")


async def test_only_top_level_navigations_are_redirected_to_login(stack: Stack) -> None:
    """F23f: the same rule for no session, an expired session and a refused refresh."""
    sidecar = await stack.sidecar()
    await _assert_login_redirect(sidecar)
    await sidecar.login()
    stack.emulator.revoke_grant()
    stack.clock.advance(3600)
    await _assert_login_redirect(sidecar)  # refresh refused → session ended → login
    await _assert_login_redirect(sidecar)  # and now simply no session
    post = await sidecar.client.post(
        MYSELF, headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate"}
    )
    assert post.status == 401
    framed = await sidecar.client.get(
        MYSELF,
        headers={"Accept": "text/html", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "iframe"},
        allow_redirects=False,
    )
    assert framed.status == 401
    assert "Location" not in framed.headers


# --- Cookies ------------------------------------------------------------------------------------


async def test_https_cookies_are_host_prefixed_http_only_lax_without_domain(stack: Stack) -> None:
    """Under https both cookies are __Host-, Secure, HttpOnly, SameSite=Lax, Path=/, no Domain."""
    sidecar = await stack.sidecar({"SIDECAR_PUBLIC_URL": "https://sidecar.example.test"})
    start = await sidecar.client.get(
        "/auth/login", params={"return_to": "/app"}, allow_redirects=False
    )
    [login_cookie] = start.headers.getall("Set-Cookie")
    name, _, rest = login_cookie.partition("=")
    assert name == "__Host-sidecar-login"
    callback = await stack.consent(start.headers["Location"])
    done = await sidecar.client.get(
        urlsplit(callback).path + "?" + urlsplit(callback).query,
        headers={"Cookie": f"{name}={rest.split(';')[0]}"},
        allow_redirects=False,
    )
    assert done.status == 302
    [session_cookie] = [
        c for c in done.headers.getall("Set-Cookie") if c.startswith("__Host-sidecar=")
    ]
    for cookie in (login_cookie, session_cookie):
        attributes = {a.strip().split("=")[0].lower() for a in cookie.split(";")[1:]}
        assert {"secure", "httponly", "samesite", "path"} <= attributes, cookie
        assert "domain" not in attributes
        assert "samesite=lax" in cookie.lower().replace(" ", "")
        assert "path=/;" in cookie.lower().replace(" ", "") + ";"


async def test_cookies_without_https_are_plain_names_still_http_only(stack: Stack) -> None:
    """Under http (local use) the names drop the __Host- prefix; HttpOnly and Lax stay."""
    sidecar = await stack.sidecar()
    resp = await sidecar.login()
    [cookie] = [c for c in resp.headers.getall("Set-Cookie") if c.startswith("sidecar_session=")]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    assert "Domain" not in cookie
    assert "Secure" not in cookie


async def test_large_tokens_never_grow_the_cookie_and_never_go_upstream_as_cookie(
    aiohttp_server: AiohttpServer, stack: Stack, gateway: Gateway
) -> None:
    """F21: 3 KB tokens → Set-Cookie < 4096 bytes, opaque; upstream gets Bearer, no Cookie."""
    access, refresh = "at-" + "A" * 3072, "rt-" + "R" * 3072

    async def authorize(request: web.Request) -> web.StreamResponse:
        target = f"{request.query['redirect_uri']}?code=c-1&state={request.query['state']}"
        raise web.HTTPFound(target)

    async def token(_request: web.Request) -> web.StreamResponse:
        return web.json_response(
            {
                "access_token": access,
                "refresh_token": refresh,
                "expires_in": 3600,
                "token_type": "Bearer",
                "scope": "read:jira-work write:jira-work read:me offline_access",
            }
        )

    fake_auth = web.Application()
    fake_auth.router.add_get("/authorize", authorize)
    fake_auth.router.add_post("/oauth/token", token)
    auth_url = str((await aiohttp_server(fake_auth)).make_url("")).rstrip("/")
    sidecar = await stack.sidecar({"SIDECAR_API_URL": gateway[1], "SIDECAR_AUTH_URL": auth_url})
    location = await sidecar.start_login("/a")
    state = parse_qs(urlsplit(location).query)["state"][0]
    done = await sidecar.client.get(
        "/auth/callback", params={"code": "c-1", "state": state}, allow_redirects=False
    )
    assert done.status == 302
    name = sidecar.settings.session.cookie_name
    [cookie] = [c for c in done.headers.getall("Set-Cookie") if c.startswith(name + "=")]
    assert len(cookie.encode()) < 4096
    value = cookie.split(";")[0].partition("=")[2]
    sid, _, secret = value.partition(".")
    assert len(sid) >= 22  # ≥ 128 bits of base64url
    assert len(secret) >= 43  # 256 bits
    assert not value.startswith("eyJ")
    for fragment in ("AAAA", "RRRR", "at-", "rt-"):
        assert fragment not in value
    status, _, _, _ = await raw_request(
        port_of(sidecar),
        MYSELF,
        {"Cookie": f"{name}={value}; theme=dark", "Authorization": "Basic Zm9vOmJhcg=="},
    )
    assert status == 200
    [seen] = gateway[0].ex()
    assert "Cookie" not in seen.headers
    assert seen.headers.getall("Authorization") == [f"Bearer {access}"]


# --- The sidecar's own headers ------------------------------------------------------------------

SECURITY = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@pytest.mark.parametrize(
    ("method", "path", "headers", "status"),
    [
        ("GET", "/auth/session", {"Accept": "application/json"}, 401),
        ("GET", "/auth/session", {"Accept": "text/html"}, 401),
        ("GET", "/auth/callback?state=nope", {"Accept": "text/html"}, 400),
        ("GET", "/auth/callback?state=nope", {}, 400),
        ("GET", "/auth/login?return_to=/x", {}, 302),
        ("POST", "/auth/logout", {}, 204),
        ("GET", "/auth/logout", {}, 405),
        ("GET", "/nothing-here", {"Accept": "text/html"}, 404),
        ("GET", "/jira/x/..%2f..%2fsecret", {}, 400),
        ("GET", "/livez", {}, 200),
    ],
)
async def test_the_sidecars_own_answers_carry_the_security_headers(
    stack: Stack, method: str, path: str, headers: dict[str, str], status: int
) -> None:
    """Pages, JSON errors, redirects, aiohttp's 404/405: no-store, nosniff, CSP, no-referrer."""
    sidecar = await stack.sidecar()
    resp = await sidecar.client.request(method, path, headers=headers, allow_redirects=False)
    assert resp.status == status
    for name, value in SECURITY.items():
        assert resp.headers.get(name) == value, (name, path)
    csp = resp.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp
    assert "frame-ancestors 'none'" in csp
    assert "script-src" not in csp


# --- Return targets (F20) -----------------------------------------------------------------------

BAD_TARGETS = [
    "https://evil.example/",
    "//evil.example/",
    "/\\evil.example/",
    "/%5Cevil.example/",
    "/%09/evil.example/",
    "/\t/evil.example",
    "%2F%2Fevil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "/%2F/evil.example",
    "/%252F%252Fevil.example",
    "/\u2028/evil.example",
    "\\\\evil.example",
]


@pytest.mark.parametrize("target", BAD_TARGETS)
async def test_unsafe_return_to_falls_back_to_root_and_is_counted(
    stack: Stack, target: str
) -> None:
    """F20: login and form logout both land on / and count a bad_return_to rejection each."""
    sidecar = await stack.sidecar()
    resp = await sidecar.login(return_to=target)
    assert resp.status == 302
    assert resp.headers["Location"] == "/"
    assert sidecar.metric("sidecar_proxy_rejected_total", reason="bad_return_to") == 1
    out = await sidecar.client.post(
        "/auth/logout", data={"return_to": target}, allow_redirects=False
    )
    assert out.status == 303
    assert out.headers["Location"] == "/"
    assert sidecar.metric("sidecar_proxy_rejected_total", reason="bad_return_to") == 2


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (MYSELF, MYSELF),
        ("/app?x=1&y=%2F", "/app?x=1&y=%2F"),
        ("/caf\u00e9 menu", "/caf%C3%A9%20menu"),
    ],
)
async def test_same_origin_return_to_is_kept_for_login_and_logout(
    stack: Stack, target: str, expected: str
) -> None:
    """F20: good paths survive both ways (non-ASCII is percent-encoded, never a 500)."""
    sidecar = await stack.sidecar()
    resp = await sidecar.login(return_to=target)
    assert resp.headers["Location"] == expected
    out = await sidecar.client.post(
        "/auth/logout", data={"return_to": target}, allow_redirects=False
    )
    assert out.headers["Location"] == expected
    assert sidecar.metric("sidecar_proxy_rejected_total", reason="bad_return_to") == 0


async def test_each_login_state_is_single_use_and_short_lived(stack: Stack) -> None:
    """F15: a state older than ten minutes is refused even with the right browser cookie."""
    sidecar = await stack.sidecar()
    authorize = await sidecar.start_login("/late")
    callback = await stack.consent(authorize)
    stack.clock.advance(601)
    late = await sidecar.finish(callback)
    assert late.status == 400
    assert stack.emulator.token_calls == []
    state = secrets.token_urlsafe(32)
    forged = await sidecar.get(f"/auth/callback?code=x&state={state}")
    assert forged.status == 400


MCP_CALLS = [
    ("GET", {"Accept": "text/event-stream"}, b""),
    (
        "POST",
        {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"},
        b'{"jsonrpc":"2.0","id":1,"method":"tools/list"}',
    ),
]


@pytest.mark.parametrize(("method", "headers", "body"), MCP_CALLS)
async def test_mcp_calls_without_a_session_get_json_401(
    stack: Stack, method: str, headers: dict[str, str], body: bytes
) -> None:
    """F23d-e: /mcp streams and JSON-RPC posts get the JSON 401, never a redirect or HTML."""
    sidecar = await stack.sidecar()
    resp = await sidecar.client.request(
        method, "/mcp", headers=headers, data=body, allow_redirects=False
    )
    assert resp.status == 401
    assert "Location" not in resp.headers
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.content_type == "application/json"
    payload = await resp.json()
    assert payload["error"] == "login_required"
    assert payload["login_url"] == "/auth/login?return_to=%2Fmcp"
