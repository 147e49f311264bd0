"""The proxy's pure parts: dot-segment refusal, routing to the upstream URL
(sidecar.proxy.targets) and the header policy both ways (sidecar.proxy.headers).
"""

from __future__ import annotations

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from sidecar.proxy.headers import request_headers, response_headers
from sidecar.proxy.targets import Target, has_dot_segment, parse_target, upstream_url

API = "https://api.example.test"
CLOUD = "11111111-1111-4111-8111-111111111111"


@pytest.mark.parametrize(
    "path",
    [
        "/jira/s/../x",
        "/jira/s/./x",
        "/jira/s/..",
        "/jira/s/.",
        "..",
        "/jira/s/%2e%2e/x",
        "/jira/s/%2E%2E/x",
        "/jira/s/%2e./x",
        "/jira/s/.%2E/x",
        "/jira/s/%2e/x",
        "/jira/s/%252e%252e/x",
        "/jira/s/%252E./x",
        "/jira/s/%252e/x",
        "/jira/s/..%2fadmin",
        "/jira/s/..%2Fadmin",
        "/jira/s/x%2f..%2fadmin",
        "/jira/s/x%2f.",
        "/jira/s/%2e%2e%2f",
        "/jira/s/..%252fadmin",
        "/jira/s/%252f..",
        "/jira/s/ABC-1%5c..%5c..%5c",
        "/jira/s/ABC-1%5C..",
        "/jira/s/x%255c..",
        "/jira/s/\\..\\x",
        "/jira/s/x\\.",
        "/jira/s/%zz",
        "/jira/s/%2",
        "/jira/s/%",
        "/jira/s/a%g1",
        "/jira/s/%u002e%u002e/",
        "/jira/s/a\x00b",
        "/jira/s/a\nb",
        "/jira/s/a\x7fb",
        "/jira/s/a%00b",
        "/jira/s/a%0d%0ab",
        "/jira/s/a%7f",
        "/jira/s/a%2500b",
    ],
)
def test_dot_segments_in_any_encoding_are_refused(path: str) -> None:
    """Plain, encoded, mixed-case, double-encoded, %2f- or backslash-joined dot-segments,
    malformed escapes and control characters (raw or encoded) are all refused.
    """
    assert has_dot_segment(path) is True


@pytest.mark.parametrize(
    "path",
    [
        "",
        "/",
        "/jira/s/rest/api/3/myself",
        "/jira/s/rest/api/3/issue/ABC-1/",
        "/jira/s//double//slash",
        "/jira/s/attachment/a.png",
        "/wiki/s/rest/api/v1.0/x",
        "/jira/s/..foo",
        "/jira/s/foo..",
        "/jira/s/...",
        "/jira/s/.well-known",
        "/jira/s/.hidden/a.b.c",
        "/jira/s/%2efoo",
        "/jira/s/foo%2e",
        "/jira/s/%2e%2e%2e",
        "/jira/s/a%2fb",
        "/jira/s/search%20..%20x",
        "/jira/s/%C3%A4%20b",
        "/jira/s/caf\u00e9",
        "/jira/s/a+b",
        "/jira/s/%25",
    ],
)
def test_paths_with_dots_that_are_not_dot_segments_pass(path: str) -> None:
    """Dots inside names (a.png, v1.0, ..foo, foo.., ...) and other escapes are legitimate."""
    assert has_dot_segment(path) is False


@pytest.mark.parametrize(
    ("raw", "target", "url"),
    [
        (
            "/jira/acme/rest/api/3/myself",
            Target("jira", "acme", "/rest/api/3/myself", ""),
            f"{API}/ex/jira/{CLOUD}/rest/api/3/myself",
        ),
        (
            "/wiki/acme/api/v2/pages?limit=5",
            Target("confluence", "acme", "/api/v2/pages", "?limit=5"),
            f"{API}/ex/confluence/{CLOUD}/wiki/api/v2/pages?limit=5",
        ),
        (
            "/wiki/acme/rest/api/space",
            Target("confluence", "acme", "/rest/api/space", ""),
            f"{API}/ex/confluence/{CLOUD}/wiki/rest/api/space",
        ),
        ("/jira/acme", Target("jira", "acme", "", ""), f"{API}/ex/jira/{CLOUD}"),
        ("/jira/acme/", Target("jira", "acme", "/", ""), f"{API}/ex/jira/{CLOUD}/"),
        ("/wiki/acme", Target("confluence", "acme", "", ""), f"{API}/ex/confluence/{CLOUD}/wiki"),
        ("/jira/acme?x=1", Target("jira", "acme", "", "?x=1"), f"{API}/ex/jira/{CLOUD}?x=1"),
        (
            "/jira/acme/rest/api/3/search?jql=project%20%3D%20X&jql=a+b&b=%2B&a=1",
            Target(
                "jira", "acme", "/rest/api/3/search", "?jql=project%20%3D%20X&jql=a+b&b=%2B&a=1"
            ),
            f"{API}/ex/jira/{CLOUD}/rest/api/3/search?jql=project%20%3D%20X&jql=a+b&b=%2B&a=1",
        ),
        (
            "/jira/acme/rest/api/3/issue/A%2FB/comment?",
            Target("jira", "acme", "/rest/api/3/issue/A%2FB/comment", "?"),
            f"{API}/ex/jira/{CLOUD}/rest/api/3/issue/A%2FB/comment?",
        ),
        (
            "/jira/acme/rest/api/3/label/\u00c4rger?q=\u00fc ",
            Target("jira", "acme", "/rest/api/3/label/\u00c4rger", "?q=\u00fc "),
            f"{API}/ex/jira/{CLOUD}/rest/api/3/label/%C3%84rger?q=%C3%BC ",
        ),
        (
            "/wiki/my%20site/x",
            Target("confluence", "my site", "/x", ""),
            f"{API}/ex/confluence/{CLOUD}/wiki/x",
        ),
    ],
)
def test_targets_map_to_the_gateway_byte_for_byte(raw: str, target: Target, url: str) -> None:
    """Jira and Confluence (with /wiki inserted); path and query kept raw, only raw non-ASCII
    percent-encoded (UTF-8); the site segment is decoded.
    """
    assert parse_target(raw) == target
    assert upstream_url(API, CLOUD, target) == url


@pytest.mark.parametrize("raw", ["/jira", "/jira/", "/jira//rest", "/mcp", "/other/acme/x", "/"])
def test_non_proxied_paths_have_no_target(raw: str) -> None:
    """Other prefixes, and a prefix without a site, are not proxied routes."""
    assert parse_target(raw) is None


def incoming(*pairs: tuple[str, str]) -> CIMultiDictProxy[str]:
    return CIMultiDictProxy(CIMultiDict(pairs))


def test_request_headers_drop_credentials_hop_by_hop_and_connection_named() -> None:
    """Client credentials, Host, Expect, hop-by-hop and every Connection-named header (any
    case, several Connection headers) go; end-to-end headers stay in order; our bearer is added.
    """
    out = request_headers(
        incoming(
            ("Host", "sidecar.example.test"),
            ("Authorization", "Bearer client-supplied"),
            ("Cookie", "sidecar_session=abc"),
            ("Connection", "keep-alive, X-Drop-Me"),
            ("connection", " x-also-DROP ,"),
            ("X-Drop-Me", "1"),
            ("X-ALSO-drop", "2"),
            ("Keep-Alive", "timeout=5"),
            ("TE", "trailers"),
            ("Trailer", "X-T"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "websocket"),
            ("Proxy-Authorization", "Basic eA=="),
            ("Proxy-Connection", "keep-alive"),
            ("Expect", "100-continue"),
            ("Content-Length", "999"),
            ("Accept", "application/json"),
            ("X-Atlassian-Token", "no-check"),
            ("Accept", "text/plain"),
            ("Content-Type", "application/json"),
        ),
        "at-1",
        12,
    )
    assert list(out.items()) == [
        ("Accept", "application/json"),
        ("X-Atlassian-Token", "no-check"),
        ("Accept", "text/plain"),
        ("Content-Type", "application/json"),
        ("Authorization", "Bearer at-1"),
        ("Content-Length", "12"),
        ("Accept-Encoding", "identity"),
    ]


def test_request_headers_keep_the_clients_accept_encoding_and_length_unknown() -> None:
    """A client's Accept-Encoding is kept as sent; no length given means no Content-Length."""
    out = request_headers(
        incoming(("accept-encoding", "gzip, br"), ("Content-Length", "5")), "at-2", None
    )
    assert list(out.items()) == [("accept-encoding", "gzip, br"), ("Authorization", "Bearer at-2")]


def test_request_headers_never_add_the_atlassian_xsrf_header() -> None:
    """X-Atlassian-Token is passed through, never invented."""
    out = request_headers(incoming(("Accept", "*/*")), "at-3", None)
    assert "X-Atlassian-Token" not in out
    assert out["Authorization"] == "Bearer at-3"
    assert out["Accept-Encoding"] == "identity"


def test_response_headers_drop_cookies_framing_and_hop_by_hop() -> None:
    """Set-Cookie, Content-Length, Transfer-Encoding, hop-by-hop and Connection-named headers
    go; everything else (repeats and Content-Encoding included) comes back unchanged.
    """
    out = response_headers(
        incoming(
            ("Content-Type", "application/json"),
            ("Set-Cookie", "atl.xsrf.token=1; Path=/"),
            ("set-cookie", "other=2"),
            ("Content-Length", "10"),
            ("Transfer-Encoding", "chunked"),
            ("Connection", "close, X-Private"),
            ("X-Private", "secret"),
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Authenticate", "Basic"),
            ("Upgrade", "h2c"),
            ("Trailer", "X-T"),
            ("Content-Encoding", "gzip"),
            ("Link", "<a>; rel=next"),
            ("Link", "<b>; rel=prev"),
            ("X-RateLimit-Remaining", "99"),
        )
    )
    assert list(out.items()) == [
        ("Content-Type", "application/json"),
        ("Content-Encoding", "gzip"),
        ("Link", "<a>; rel=next"),
        ("Link", "<b>; rel=prev"),
        ("X-RateLimit-Remaining", "99"),
    ]
