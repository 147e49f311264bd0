"""Hypothesis against a live sidecar (real sockets, real Redis, the emulator and a recording
gateway): fuzzed paths, query strings, headers, cookies and callback parameters never get a
5xx from the sidecar itself, never reach the gateway outside ``/ex/{product}/{granted cloudId}/``,
and never see a secret in an answer.

Each test builds its servers once in its own event loop and runs every example in it (the
examples are bounded: a few hundred, no deadline).
"""

from __future__ import annotations

import asyncio
import posixpath
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

from aiohttp.test_utils import TestServer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sidecar.cors import CorsPolicy
from sidecar.emulator import Emulator, EmulatorConfig

from ..harness import CLIENT_ID, CLIENT_SECRET, SITE_A, SITE_B, SITE_X, Clock, Sidecar, Stack
from ..upstreams import RecordingUpstream, raw_request

APP_ORIGIN = "http://app.example.test:5173"
FUZZ = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
)


@dataclass
class World:
    """Emulator, recording gateway and one logged-in sidecar, all on loopback."""

    stack: Stack
    sidecar: Sidecar
    gateway: RecordingUpstream
    servers: list[TestServer]

    @classmethod
    async def start(cls, redis_url: str) -> World:
        clock = Clock()
        emulator = Emulator(
            EmulatorConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=clock)
        )
        gateway = RecordingUpstream()
        servers = [TestServer(emulator.app(), host="127.0.0.1"), TestServer(gateway.app())]
        for server in servers:
            await server.start_server()
        emulator_url, gateway_url = (str(s.make_url("")).rstrip("/") for s in servers)
        stack = Stack(emulator, emulator_url, clock, redis_url)
        sidecar = await stack.sidecar(
            {"SIDECAR_API_URL": gateway_url, "SIDECAR_ALLOWED_ORIGINS": APP_ORIGIN}
        )
        assert (await sidecar.login()).status == 302
        return cls(stack, sidecar, gateway, servers)

    async def close(self) -> None:
        await self.stack.__aexit__(None, None, None)
        for server in self.servers:
            await server.close()

    @property
    def port(self) -> int:
        return int(self.sidecar.url.rsplit(":", 1)[1])

    @property
    def cookie(self) -> str:
        value = self.sidecar.cookie()
        assert value is not None
        return value

    def secrets(self) -> set[str]:
        """What must never appear in an answer."""
        return {
            *self.stack.emulator.issued_secrets(),
            CLIENT_SECRET,
            self.cookie.partition(".")[2],
        }


def run(redis_url: str, body: Callable[[World, asyncio.AbstractEventLoop], None]) -> None:
    """Start a World in a fresh loop, hand it to ``body``, always tear it down."""
    loop = asyncio.new_event_loop()
    try:
        world = loop.run_until_complete(World.start(redis_url))
        try:
            body(world, loop)
        finally:
            loop.run_until_complete(world.close())
    finally:
        loop.close()


ALLOWED_PREFIXES = (
    f"/ex/jira/{SITE_A}",
    f"/ex/jira/{SITE_B}",
    f"/ex/confluence/{SITE_A}/wiki",
)


def assert_inside_grant(raw_path: str) -> None:
    """An upstream request stays below a granted cloudId's prefix, even once normalized."""
    path = raw_path.partition("?")[0]
    prefix = next((p for p in ALLOWED_PREFIXES if path == p or path.startswith(p + "/")), None)
    assert prefix is not None, raw_path
    for decoded in (path, unquote(path), unquote(unquote(path))):
        normalized = posixpath.normpath(decoded.replace("\\", "/"))
        assert normalized == prefix or normalized.startswith(prefix + "/"), raw_path


def assert_no_secret(world: World, headers: Any, body: bytes) -> None:
    """No token, code, client secret or cookie secret in the answer (Set-Cookie aside)."""
    text = body.decode("latin-1") + "".join(
        f"{k}: {v}\n" for k, v in headers.items() if k.lower() != "set-cookie"
    )
    for secret in world.secrets():
        assert secret not in text


SEGMENT = st.one_of(
    st.sampled_from(
        [
            ".",
            "..",
            "%2e",
            "%2E%2e",
            "%252e%252e",
            "..%2f",
            "%2f",
            "%5c",
            "%00",
            "%",
            "%zz",
            "a",
            "issue",
            "ABC-1",
            ";x=1",
            "%20",
            "+",
            "~",
            "@",
            ":",
            "%3F",
            "%23",
        ]
    ),
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="?#"),
        max_size=12,
    ),
)
SITE = st.one_of(
    st.sampled_from([SITE_A, SITE_B, SITE_X, "acme", "ACME", "beta", "xeno", "%2e%2e", ".", ""]),
    st.text(alphabet="0123456789abcdef-%2e", max_size=40),
)
QUERY = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="#"),
    max_size=40,
)


def test_fuzzed_paths_and_queries_stay_inside_the_grant(redis_url: str) -> None:
    """Paths and queries: no 5xx, nothing outside /ex/{product}/{granted}/, query byte for byte."""

    def body(world: World, loop: asyncio.AbstractEventLoop) -> None:
        @FUZZ
        @given(
            product=st.sampled_from(["jira", "wiki"]),
            site=SITE,
            segments=st.lists(SEGMENT, max_size=6),
            query=st.none() | QUERY,
        )
        def check(product: str, site: str, segments: list[str], query: str | None) -> None:
            target = f"/{product}/{site}/" + "/".join(segments)
            if query is not None:
                target += "?" + query
            before = len(world.gateway.requests)
            status, headers, answer, _ = loop.run_until_complete(
                raw_request(
                    world.port,
                    target,
                    {"Cookie": f"{world.sidecar.settings.session.cookie_name}={world.cookie}"},
                )
            )
            assert status < 500, (target, status, answer)
            assert_no_secret(world, headers, answer)
            sent = [r for r in world.gateway.requests[before:] if r.raw_path.startswith("/ex/")]
            assert len(sent) <= 1
            for recorded in sent:
                assert_inside_grant(recorded.raw_path)
                assert recorded.raw_path.partition("?")[2] == (query or "")
                assert recorded.headers["Authorization"].startswith("Bearer ")
                assert "Cookie" not in recorded.headers

        check()

    run(redis_url, body)


HEADER_VALUE = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60
).map(str.strip)
ORIGIN = st.one_of(
    st.sampled_from(
        [
            APP_ORIGIN,
            "http://APP.example.test:5173",
            "https://evil.example",
            "null",
            "OWN",
            "http://app.example.test",
            "http://127.0.0.1",
            "",
        ]
    ),
    HEADER_VALUE,
)
HEADERS = st.fixed_dictionaries(
    {},
    optional={
        "Origin": ORIGIN,
        "Referer": st.one_of(st.sampled_from(["OWN/page", "https://evil.example/x"]), HEADER_VALUE),
        "Sec-Fetch-Site": st.sampled_from(["same-origin", "same-site", "cross-site", "none", "x"]),
        "Sec-Fetch-Mode": st.sampled_from(["navigate", "cors", "no-cors", "same-origin", "x"]),
        "Sec-Fetch-Dest": st.sampled_from(["document", "empty", "iframe", "x"]),
        "Accept": st.one_of(
            st.sampled_from(["text/html", "application/json", "*/*", "text/event-stream"]),
            HEADER_VALUE,
        ),
        "X-Requested-With": st.sampled_from(["XMLHttpRequest", "x"]),
        "Authorization": HEADER_VALUE,
        "Content-Type": HEADER_VALUE,
        "X-Request-ID": HEADER_VALUE,
        "Access-Control-Request-Method": st.one_of(st.sampled_from(["GET", "POST"]), HEADER_VALUE),
        "Access-Control-Request-Headers": HEADER_VALUE,
        "Connection": st.sampled_from(["close", "keep-alive, X-Foo", "Authorization"]),
        "X-Atlassian-Token": st.sampled_from(["no-check", "nocheck"]),
    },
)
COOKIE = st.one_of(
    st.just("VALID"),
    st.just(""),
    st.text(
        alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters=";,"),
        max_size=80,
    ),
    st.just("VALID").map(lambda v: v + "x"),
)
METHOD = st.sampled_from(["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "PROPFIND"])
PATH = st.sampled_from(
    [
        f"/jira/{SITE_A}/rest/api/3/myself",
        f"/wiki/{SITE_A}/api/v2/pages",
        f"/jira/{SITE_X}/rest/api/3/myself",
        "/auth/session",
        "/auth/logout",
        "/auth/login?return_to=%2F%2Fevil",
        "/mcp",
        "/nowhere",
    ]
)


def test_fuzzed_headers_and_cookies_never_break_csrf_or_cors(redis_url: str) -> None:
    """Headers and cookies: no 5xx; untrusted unsafe requests never reach the gateway; CORS
    headers only ever name a trusted origin; no secret in an answer.
    """

    def body(world: World, loop: asyncio.AbstractEventLoop) -> None:
        policy = CorsPolicy.build(world.sidecar.url, [APP_ORIGIN])
        name = world.sidecar.settings.session.cookie_name

        @FUZZ
        @given(method=METHOD, path=PATH, headers=HEADERS, cookie=COOKIE, extra=COOKIE)
        def check(method: str, path: str, headers: dict[str, str], cookie: str, extra: str) -> None:
            sent = {k: v.replace("OWN", world.sidecar.url) for k, v in headers.items()}
            if path == "/auth/logout" and cookie == "VALID":
                cookie = "VALID" + "x"  # keep the one session alive for the other examples
            value = cookie.replace("VALID", world.cookie)
            sent["Cookie"] = f"{name}={value}; other={extra.replace('VALID', 'v')}"
            before = len(world.gateway.requests)
            status, got, answer, _ = loop.run_until_complete(
                raw_request(world.port, path, sent, method=method, body=b"{}")
            )
            assert status < 500, (method, path, sent, status, answer)
            assert_no_secret(world, got, answer)
            forwarded = [
                r for r in world.gateway.requests[before:] if r.raw_path.startswith("/ex/")
            ]
            for recorded in forwarded:
                assert_inside_grant(recorded.raw_path)
                assert "Cookie" not in recorded.headers
                assert recorded.headers.getall("Authorization")[0].startswith("Bearer ")
            origin = sent.get("Origin")
            unsafe = method not in {"GET", "HEAD", "OPTIONS"}
            if unsafe and origin is not None and not policy.trusts(origin):
                assert status == 403, (method, path, sent)
                assert forwarded == []
            allow = got.getall("Access-Control-Allow-Origin", [])
            if allow:
                assert allow == [origin]
                assert policy.trusts(origin)
            if status == 302:
                location = got["Location"]
                authorize = world.sidecar.settings.oauth.auth_url + "/authorize?"
                if not location.startswith(authorize):
                    assert location.startswith("/"), location
                    assert not location.startswith("//"), location
                    assert urlsplit(location).netloc == ""

        check()

    run(redis_url, body)


CALLBACK_TEXT = st.text(max_size=40)


def test_fuzzed_callback_parameters_never_fail_or_redirect_off_site(redis_url: str) -> None:
    """Callback state, code, error, return_to and login cookie: 302 on-site, 400 or 403 only."""

    def body(world: World, loop: asyncio.AbstractEventLoop) -> None:
        sidecar = world.sidecar
        login_cookie = sidecar.settings.session.login_cookie_name

        async def start(return_to: str) -> tuple[str, str]:
            location = await sidecar.start_login(return_to)
            state = parse_qs(urlsplit(location).query)["state"][0]
            return location, state

        @settings(max_examples=120, deadline=None, database=None)
        @given(
            real_state=st.booleans(),
            consent=st.sampled_from(["none", "accept", "deny"]),
            return_to=st.one_of(
                st.text(max_size=30), st.sampled_from(["/app", "//evil", "/\\evil"])
            ),
            state=CALLBACK_TEXT,
            code=st.none() | CALLBACK_TEXT,
            error=st.none() | CALLBACK_TEXT,
            description=st.none() | CALLBACK_TEXT,
            browser=st.one_of(st.just("KEEP"), st.just(""), CALLBACK_TEXT),
        )
        def check(
            real_state: bool,
            consent: str,
            return_to: str,
            state: str,
            code: str | None,
            error: str | None,
            description: str | None,
            browser: str,
        ) -> None:
            location, minted = loop.run_until_complete(start(return_to))
            params: dict[str, str] = {"state": minted if real_state else state}
            if consent != "none" and real_state:
                callback = loop.run_until_complete(world.stack.consent(location, consent))
                params = {k: v[0] for k, v in parse_qs(urlsplit(callback).query).items()}
            if code is not None:
                params.setdefault("code", code)
            if error is not None and consent == "none":
                params["error"] = error
            if description is not None:
                params["error_description"] = description
            query = "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in params.items())
            kept = sidecar.cookie(login_cookie) or ""
            jar = kept if browser == "KEEP" else quote(browser, safe="")
            status, got, answer, _ = loop.run_until_complete(
                raw_request(
                    world.port,
                    f"/auth/callback?{query}",
                    {"Cookie": f"{login_cookie}={jar}", "Accept": "text/html"},
                )
            )
            assert status in {302, 400, 403}, (params, status, answer)
            assert_no_secret(world, got, answer)
            if description and "<" in description:  # never echoed unescaped into the page
                assert description not in answer.decode("utf-8", "replace")
            if status == 302:
                target = got["Location"]
                assert target.startswith("/"), target
                assert not target.startswith("//"), target
                assert "\\" not in target
                assert urlsplit(target).netloc == ""

        check()

    run(redis_url, body)
