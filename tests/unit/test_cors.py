"""The pure cross-origin policy (sidecar.cors) and the return-target rule (safe_return_to)."""

from __future__ import annotations

from urllib.parse import urljoin, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sidecar.auth.flow import safe_return_to
from sidecar.cors import (
    ALLOW_HEADERS,
    EXPOSE_HEADERS,
    MAX_AGE,
    CorsPolicy,
    is_preflight,
    normalize_origin,
    origin_of_url,
)

POLICY = CorsPolicy.build("https://sidecar.example.test", ["https://app.example.test:8443"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("https://App.Example.TEST", "https://app.example.test"),
        ("https://app.example.test:443", "https://app.example.test"),
        ("http://127.0.0.1:80/", "http://127.0.0.1"),
        ("http://127.0.0.1:8081", "http://127.0.0.1:8081"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("null", None),
        ("file://", None),
        ("https://app.example.test/path", None),
        ("https://user@app.example.test", None),
        ("https://app.example.test:99999", None),
        ("javascript:alert(1)", None),
    ],
)
def test_origins_are_normalized_or_refused(value: str, expected: str | None) -> None:
    """Case and default ports never decide trust; null, paths and userinfo are no origin."""
    assert normalize_origin(value) == expected


def test_referer_origin_is_its_scheme_host_and_port() -> None:
    """A Referer counts by its origin only."""
    assert origin_of_url("https://sidecar.example.test/app?x=1") == "https://sidecar.example.test"
    assert origin_of_url("/relative") is None


def test_only_the_own_and_configured_origins_are_trusted() -> None:
    """The public URL's origin and SIDECAR_ALLOWED_ORIGINS; nothing else, not even siblings."""
    assert POLICY.trusts("https://sidecar.example.test")
    assert POLICY.trusts("https://app.example.test:8443")
    assert not POLICY.trusts("https://app.example.test")
    assert not POLICY.trusts("https://evil.example")
    assert not POLICY.trusts("https://sidecar.example.test.evil.example")
    assert not POLICY.trusts("null")
    assert not POLICY.trusts(None)


def test_actual_answers_to_trusted_origins_allow_credentials_and_expose_mcp_session() -> None:
    """F41 step 4: the exact origin echoed, credentials allowed, Mcp-Session-Id readable."""
    headers = POLICY.response_headers("https://app.example.test:8443")
    assert headers["Access-Control-Allow-Origin"] == "https://app.example.test:8443"
    assert headers["Access-Control-Allow-Credentials"] == "true"
    exposed = headers["Access-Control-Expose-Headers"].split(", ")
    assert "Mcp-Session-Id" in exposed
    assert "X-Sidecar-Error" in exposed
    assert exposed == list(EXPOSE_HEADERS)
    assert POLICY.response_headers("https://evil.example") == {}
    assert POLICY.response_headers(None) == {}


def test_preflight_echoes_the_method_and_only_listed_headers() -> None:
    """Requested method echoed when allowed; requested headers filtered through the fixed list."""
    headers = POLICY.preflight_headers(
        "https://app.example.test:8443",
        "POST",
        "content-type, mcp-session-id, MCP-Protocol-Version, last-event-id, authorization",
    )
    assert headers is not None
    assert headers["Access-Control-Allow-Methods"] == "POST"
    assert headers["Access-Control-Allow-Headers"] == (
        "Content-Type, Mcp-Session-Id, MCP-Protocol-Version, Last-Event-ID"
    )
    assert headers["Access-Control-Max-Age"] == str(MAX_AGE)
    assert headers["Access-Control-Allow-Credentials"] == "true"
    assert {"Mcp-Session-Id", "MCP-Protocol-Version", "Last-Event-ID"} <= set(ALLOW_HEADERS)
    assert "Authorization" not in ALLOW_HEADERS
    assert "Cookie" not in ALLOW_HEADERS


def test_preflight_is_refused_for_untrusted_origins_and_unknown_methods() -> None:
    """Nothing for other origins, nor for methods outside the list."""
    assert POLICY.preflight_headers("https://evil.example", "GET", "") is None
    assert POLICY.preflight_headers("https://app.example.test:8443", "PROPFIND", "") is None
    assert POLICY.preflight_headers(None, "GET", "") is None
    without_headers = POLICY.preflight_headers("https://sidecar.example.test", "DELETE", "")
    assert without_headers is not None
    assert "Access-Control-Allow-Headers" not in without_headers


def test_a_preflight_is_options_with_origin_and_a_requested_method() -> None:
    """Plain OPTIONS (an API call) is not a preflight and is proxied."""
    assert is_preflight("OPTIONS", {"Origin": "x", "Access-Control-Request-Method": "GET"})
    assert not is_preflight("OPTIONS", {"Origin": "x"})
    assert not is_preflight("GET", {"Origin": "x", "Access-Control-Request-Method": "GET"})


def _browser_target(location: str) -> tuple[str, str]:
    """Where a browser on the sidecar goes for ``location`` (WHATWG: tabs and newlines removed,
    backslash read as slash in http(s) URLs); (netloc, scheme).
    """
    cleaned = location.replace("\t", "").replace("\n", "").replace("\r", "").replace("\\", "/")
    parts = urlsplit(urljoin("https://sidecar.example.test/now", cleaned.strip()))
    return parts.netloc, parts.scheme


@settings(max_examples=2000, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.text(alphabet="/\\%2fF5cC09 .:@?#ahtps\t\n", max_size=24),
        st.builds(
            lambda a, b: "/" + a + b,
            st.sampled_from(["", "/", "\\", "%2F", "%5C", "%09", "%252F", " ", "\t"]),
            st.text(max_size=20),
        ),
    )
)
def test_any_accepted_return_to_stays_on_the_sidecar(value: str) -> None:
    """F20 as a property: whatever is accepted is a path a browser resolves on our origin."""
    result = safe_return_to(value)
    if result is None:
        return
    assert result.startswith("/")
    assert not result.startswith("//")
    assert all(0x21 <= ord(c) < 0x7F for c in result), result
    assert _browser_target(result) == ("sidecar.example.test", "https")
