"""The Jira/Confluence proxy: exact routing, header policy, framing, encodings, redirects,
limits and failures, against purpose-built upstreams on loopback (field cases F08, F09, F21,
F25, F26, F27, F30, F32, F33, F34, F35, F37).
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import io
import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from ..harness import SITE_A, SITE_B, SITE_X, Sidecar, Stack
from ..upstreams import RawUpstream, Recorded, RecordingUpstream, json_body, raw_request

Gateway = tuple[RecordingUpstream, str]


async def logged_in(stack: Stack, gateway: Gateway, **env: str) -> Sidecar:
    """A sidecar whose API gateway is the recording upstream, with a live session."""
    sidecar = await stack.sidecar({"SIDECAR_API_URL": gateway[1], **env})
    assert (await sidecar.login()).status == 302
    return sidecar


async def replica(stack: Stack, first: Sidecar, api_url: str, **env: str) -> Sidecar:
    """Another replica on the same Redis, with the first one's session, talking to ``api_url``."""
    other = await stack.sidecar({"SIDECAR_API_URL": api_url, **env})
    cookie = first.cookie()
    assert cookie is not None
    other.use_cookie(cookie)
    return other


def cookie_header(sidecar: Sidecar) -> dict[str, str]:
    """The session cookie as a raw header."""
    return {"Cookie": f"{sidecar.settings.session.cookie_name}={sidecar.cookie()}"}


def port_of(sidecar: Sidecar) -> int:
    """The sidecar's listening port."""
    return int(sidecar.url.rsplit(":", 1)[1])


@pytest.mark.parametrize(
    ("path", "upstream"),
    [
        (f"/jira/{SITE_A}/rest/api/3/myself", f"/ex/jira/{SITE_A}/rest/api/3/myself"),
        (
            f"/jira/{SITE_A}/rest/agile/1.0/board?startAt=0",
            f"/ex/jira/{SITE_A}/rest/agile/1.0/board?startAt=0",
        ),
        (
            f"/jira/{SITE_A}/rest/servicedeskapi/request",
            f"/ex/jira/{SITE_A}/rest/servicedeskapi/request",
        ),
        (
            f"/wiki/{SITE_A}/api/v2/spaces?limit=1",
            f"/ex/confluence/{SITE_A}/wiki/api/v2/spaces?limit=1",
        ),
        (f"/wiki/{SITE_A}/rest/api/space", f"/ex/confluence/{SITE_A}/wiki/rest/api/space"),
        (f"/jira/{SITE_A}/wiki/rest/api/space", f"/ex/jira/{SITE_A}/wiki/rest/api/space"),
        ("/jira/acme/rest/api/3/project", f"/ex/jira/{SITE_A}/rest/api/3/project"),
        ("/jira/BETA/rest/api/3/project", f"/ex/jira/{SITE_B}/rest/api/3/project"),
        (f"/jira/{SITE_A}/rest/api/3/issue/ABC-1/", f"/ex/jira/{SITE_A}/rest/api/3/issue/ABC-1/"),
        (f"/jira/{SITE_A}", f"/ex/jira/{SITE_A}"),
    ],
)
async def test_paths_map_to_the_gateway_exactly(
    stack: Stack, gateway: Gateway, path: str, upstream: str
) -> None:
    """F08: /jira → /ex/jira, /wiki/{site}/X → /ex/confluence/{id}/wiki/X; products never mix."""
    sidecar = await logged_in(stack, gateway)
    resp = await sidecar.get(path)
    assert resp.status == 200
    assert [r.raw_path for r in gateway[0].ex()] == [upstream]


@pytest.mark.parametrize(
    "target",
    [
        f"/jira/{SITE_A}/rest/api/3/issue/ABC-1/properties/my%2Fkey",
        f"/wiki/{SITE_A}/rest/api/content/123/child/attachment?filename=a%2Fb%20c%27%28d%29%40e.png",
        f"/wiki/{SITE_A}/rest/api/content?title=%C3%89t%C3%A9%3A%20plan&spaceKey=ENG",
        f"/jira/{SITE_A}/rest/api/3/search?jql=a+b%2Bc&x=&x=2&y=1&x=3",
        f"/jira/{SITE_A}/rest/api/3/issue/%7Bweird%7D;matrix=1?q=%25%26%3D",
    ],
)
async def test_raw_request_lines_reach_the_gateway_byte_for_byte(
    stack: Stack, gateway: Gateway, target: str
) -> None:
    """F30: percent-encoding, +, repeated keys and their order survive unchanged."""
    sidecar = await logged_in(stack, gateway)
    status, _, _, _ = await raw_request(port_of(sidecar), target, cookie_header(sidecar))
    assert status == 200
    prefix, _, rest = target.lstrip("/").partition("/")
    site, _, tail = rest.partition("/")
    product = "jira" if prefix == "jira" else "confluence/" + site + "/wiki"
    expected = f"/ex/jira/{site}/{tail}" if prefix == "jira" else f"/ex/{product}/{tail}"
    assert [r.raw_path for r in gateway[0].ex()] == [expected]


@pytest.mark.parametrize(
    ("target", "status"),
    [
        (f"/jira/{SITE_A}/../../oauth/token/accessible-resources", 400),
        (
            f"/jira/{SITE_A}/rest/%2e%2e/%2e%2e/%2e%2e/ex/confluence/{SITE_B}/wiki/rest/api/space",
            400,
        ),
        (f"/jira/{SITE_A}/rest/api/3/..%2f..%2f..%2fadmin", 400),
        (f"/jira/{SITE_A}/rest/api/3/%252e%252e/%252e%252e/", 400),
        (f"/jira/{SITE_A}/rest/api/3/issue/ABC-1%5c..%5c..%5c", 400),
        (f"/jira/{SITE_A}/rest/api/3/%2E./x", 400),
        (f"/jira/{SITE_A}/rest/./api", 400),
        (f"/jira/{SITE_A}/rest/api/%zz", 400),
        (f"/jira/{SITE_A}/rest/..;/x", 400),
        (f"/jira/{SITE_A}/rest/%c0%ae%c0%ae/x", 400),
        ("/jira/%2e%2e/ex/confluence/" + SITE_A + "/wiki/rest/api/space", 400),
    ],
)
async def test_dot_segments_in_any_encoding_are_refused_before_anything_is_sent(
    stack: Stack, gateway: Gateway, target: str, status: int
) -> None:
    """F32: traversal attempts get 400 bad_request and the gateway sees nothing."""
    sidecar = await logged_in(stack, gateway)
    got, headers, body, _ = await raw_request(port_of(sidecar), target, cookie_header(sidecar))
    assert got == status
    assert headers["X-Sidecar-Error"] == "bad_request"
    assert json.loads(body)["error"] == "bad_request"
    assert gateway[0].ex() == []
    assert sidecar.metric("sidecar_proxy_rejected_total", reason="path_traversal") == 1


async def test_sites_outside_the_grant_are_forbidden_and_rechecked_sparingly(
    stack: Stack, gateway: Gateway
) -> None:
    """F09: an unknown or wrong-product site is 403 forbidden_site; accessible-resources is
    re-read at most once a minute, and a newly granted site is then found.
    """
    sidecar = await logged_in(stack, gateway)
    upstream = gateway[0]
    for path in (
        f"/jira/{SITE_X}/rest/api/3/myself",
        f"/wiki/{SITE_B}/api/v2/spaces",
        "/jira/nosuchsite/rest/api/3/myself",
    ):
        resp = await sidecar.get(path)
        assert resp.status == 403
        assert (await resp.json())["error"] == "forbidden_site"
    assert upstream.ex() == []
    assert sidecar.metric("sidecar_proxy_rejected_total", reason="forbidden_site") == 3
    upstream.resources.append(
        {
            "id": SITE_X,
            "name": "xeno",
            "url": "https://xeno.atlassian.net",
            "scopes": ["read:jira-work"],
        }
    )
    assert (await sidecar.get(f"/jira/{SITE_X}/rest/api/3/myself")).status == 403
    stack.clock.advance(61)
    assert (await sidecar.get(f"/jira/{SITE_X}/rest/api/3/myself")).status == 200
    assert (await sidecar.get("/jira/xeno/rest/api/3/myself")).status == 200


async def test_empty_accessible_resources_still_logs_in(stack: Stack, gateway: Gateway) -> None:
    """F09c: no sites → the callback still completes; proxied calls are 403."""
    gateway[0].resources.clear()
    sidecar = await logged_in(stack, gateway)
    body = await (await sidecar.get("/auth/session")).json()
    assert body["sites"] == []
    assert (await sidecar.get(f"/jira/{SITE_A}/rest/api/3/myself")).status == 403


async def test_request_headers_lose_credentials_and_hop_by_hop(
    stack: Stack, gateway: Gateway
) -> None:
    """F21/F25: no Cookie, client Authorization, Connection-named or hop-by-hop headers go up."""
    sidecar = await logged_in(stack, gateway)
    headers = {
        **cookie_header(sidecar),
        "Cookie": cookie_header(sidecar)["Cookie"] + "; theme=dark",
        "Authorization": "Basic Zm9vOmJhcg==",
        "Connection": "keep-alive, X-Hop-Req",
        "X-Hop-Req": "1",
        "Keep-Alive": "timeout=5",
        "Proxy-Authorization": "Basic eA==",
        "TE": "trailers",
        "Accept": "application/json",
        "X-Atlassian-Token": "no-check",
        "X-Force-Accept-Language": "true",
        "Accept-Language": "en",
    }
    status, _, _, _ = await raw_request(
        port_of(sidecar), f"/jira/{SITE_A}/rest/api/3/myself", headers
    )
    assert status == 200
    [seen] = gateway[0].ex()
    for gone in ("Cookie", "X-Hop-Req", "Keep-Alive", "Proxy-Authorization", "TE", "Upgrade"):
        assert gone not in seen.headers, gone
    assert seen.headers["Authorization"].startswith("Bearer ")
    assert seen.headers["Authorization"] != "Basic Zm9vOmJhcg=="
    assert seen.headers["X-Atlassian-Token"] == "no-check"
    assert seen.headers["X-Force-Accept-Language"] == "true"
    assert seen.headers["Accept"] == "application/json"
    assert seen.headers["Host"] == gateway[1].split("//")[1]
    assert seen.headers["Accept-Encoding"] == "identity"


async def test_response_headers_are_end_to_end_only_and_framing_is_ours(
    stack: Stack, gateway: Gateway, raw_upstream: RawUpstream
) -> None:
    """F25: hop-by-hop and Set-Cookie are dropped; the rest and the body arrive unchanged."""
    first = await logged_in(stack, gateway)
    sidecar = await replica(stack, first, raw_upstream.url)
    body = b'{"accountId":"5b10ac8d82e05b22cc7d4ef5"}'

    async def answer(_head: bytes) -> list[bytes | float]:
        return [
            b"HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Hop-Resp\r\nX-Hop-Resp: 1\r\n"
            b"Keep-Alive: timeout=5\r\nProxy-Authenticate: Basic\r\nTransfer-Encoding: chunked\r\n"
            b'Trailer: X-Checksum\r\nContent-Type: application/json\r\nETag: "e1"\r\n'
            b"Cache-Control: no-cache\r\nX-RateLimit-Remaining: 42\r\n"
            b"Set-Cookie: atlassian.xsrf.token=abc; Path=/; SameSite=None; Secure\r\n\r\n",
            b"%x\r\n%s\r\n" % (20, body[:20]),
            0.05,
            b"%x\r\n%s\r\n" % (len(body) - 20, body[20:]),
            b"0\r\n\r\n",
        ]

    raw_upstream.answer = answer
    status, headers, got, head = await raw_request(
        port_of(sidecar), f"/jira/{SITE_A}/rest/api/3/myself", cookie_header(sidecar)
    )
    assert status == 200
    assert got == body
    for gone in ("X-Hop-Resp", "Keep-Alive", "Proxy-Authenticate", "Trailer", "Set-Cookie"):
        assert gone not in headers, gone
    assert headers["ETag"] == '"e1"'
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-RateLimit-Remaining"] == "42"
    assert not ("Content-Length" in headers and "Transfer-Encoding" in headers), head


async def test_rate_limit_answers_pass_through_and_are_counted(
    stack: Stack, gateway: Gateway
) -> None:
    """429 and its rate-limit headers reach the client unchanged, counted per product."""
    sidecar = await logged_in(stack, gateway)

    async def limited(_r: web.Request, _rec: Recorded) -> web.StreamResponse:
        return web.json_response(
            {"errorMessages": ["Rate limit exceeded."]},
            status=429,
            headers={
                "Retry-After": "7",
                "X-RateLimit-Limit": "100",
                "X-RateLimit-Remaining": "0",
                "RateLimit-Reason": "jira-burst-based",
                "X-RateLimit-Reset": "2026-12-03T13:00Z",
            },
        )

    gateway[0].responder = limited
    resp = await sidecar.get(f"/jira/{SITE_A}/rest/api/3/myself")
    assert resp.status == 429
    assert resp.headers["Retry-After"] == "7"
    assert resp.headers["RateLimit-Reason"] == "jira-burst-based"
    assert resp.headers["X-RateLimit-Reset"] == "2026-12-03T13:00Z"
    assert "X-Sidecar-Error" not in resp.headers
    assert sidecar.metric("sidecar_upstream_rate_limited_total", product="jira") == 1
    assert sidecar.metric("sidecar_upstream_requests_total", product="jira", status="429") == 1


@pytest.mark.parametrize("accept_encoding", ["gzip", None, "br"])
async def test_compressed_bodies_pass_through_untouched(
    stack: Stack, gateway: Gateway, accept_encoding: str | None
) -> None:
    """F26: gzip stays gzip with its length; without Accept-Encoding the gateway is asked for
    identity; the client never gets an encoding it did not ask for.
    """
    sidecar = await logged_in(stack, gateway)
    original = json_body({"issues": [{"id": str(i), "summary": "x" * 20} for i in range(100)]})
    packed = gzip.compress(original)

    async def maybe_gzip(_r: web.Request, rec: Recorded) -> web.StreamResponse:
        if "gzip" in rec.headers.get("Accept-Encoding", ""):
            return web.Response(
                body=packed,
                headers={
                    "Content-Encoding": "gzip",
                    "Content-Type": "application/json",
                    "Vary": "Accept-Encoding",
                },
            )
        return web.Response(body=original, content_type="application/json")

    gateway[0].responder = maybe_gzip
    headers = {"Accept-Encoding": accept_encoding} if accept_encoding else {}
    status, got_headers, body, _ = await raw_request(
        port_of(sidecar), f"/jira/{SITE_A}/rest/api/3/search", {**cookie_header(sidecar), **headers}
    )
    assert status == 200
    [seen] = gateway[0].ex()
    if accept_encoding == "gzip":
        assert got_headers["Content-Encoding"] == "gzip"
        assert got_headers["Content-Length"] == str(len(packed))
        assert body == packed
        assert gzip.decompress(body) == original
    else:
        assert seen.headers["Accept-Encoding"] == (accept_encoding or "identity")
        assert "Content-Encoding" not in got_headers
        assert body == original


async def test_framing_is_one_method_and_lengths_are_kept(
    stack: Stack, gateway: Gateway, raw_upstream: RawUpstream
) -> None:
    """F27: chunked stays chunked without a length; a length stays a length; never both."""
    first = await logged_in(stack, gateway)
    sidecar = await replica(stack, first, raw_upstream.url)
    body = b"y" * 100_000

    async def sized(_head: bytes) -> list[bytes | float]:
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n", body]

    raw_upstream.answer = sized
    status, headers, got, _ = await raw_request(
        port_of(sidecar), f"/jira/{SITE_A}/x", cookie_header(sidecar)
    )
    assert (status, headers["Content-Length"], got) == (200, "100000", body)
    assert "Transfer-Encoding" not in headers

    async def both(_head: bytes) -> list[bytes | float]:
        return [
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 10\r\n\r\n",
            b"5\r\nhello\r\n0\r\n\r\n",
        ]

    raw_upstream.answer = both
    status, headers, got, _ = await raw_request(
        port_of(sidecar), f"/jira/{SITE_A}/x", cookie_header(sidecar)
    )
    assert status in {200, 502}
    assert not ("Content-Length" in headers and "Transfer-Encoding" in headers)
    if status == 200:
        assert got == b"hello"


async def test_malformed_upstream_answers_are_502(
    stack: Stack, gateway: Gateway, raw_upstream: RawUpstream
) -> None:
    """Garbage instead of HTTP, or a closed connection, is 502 upstream_unavailable."""
    first = await logged_in(stack, gateway)
    sidecar = await replica(stack, first, raw_upstream.url)

    async def garbage(_head: bytes) -> list[bytes | float]:
        return [b"SMTP ready\r\n\r\n"]

    raw_upstream.answer = garbage
    resp = await sidecar.get(f"/jira/{SITE_A}/rest/api/3/myself")
    assert resp.status == 502
    assert (await resp.json())["error"] == "upstream_unavailable"
    assert sidecar.metric("sidecar_upstream_requests_total", product="jira", status="502") == 1


async def test_unreachable_gateway_is_502_and_silent_one_is_504(
    stack: Stack, gateway: Gateway, raw_upstream: RawUpstream
) -> None:
    """Connection refused → 502; no response headers in time → 504 upstream_timeout."""
    first = await logged_in(stack, gateway)
    refused = await replica(stack, first, "http://127.0.0.1:9")
    resp = await refused.get(f"/jira/{SITE_A}/rest/api/3/myself")
    assert resp.status == 502
    slow = await replica(stack, first, raw_upstream.url, SIDECAR_UPSTREAM_HEADER_TIMEOUT="0.3")

    async def never(_head: bytes) -> list[bytes | float]:
        return [5.0]

    raw_upstream.answer = never
    resp = await slow.get(f"/jira/{SITE_A}/rest/api/3/myself")
    assert resp.status == 504
    assert (await resp.json())["error"] == "upstream_timeout"
    assert slow.metric("sidecar_upstream_requests_total", product="jira", status="504") == 1


async def test_stalled_stream_after_headers_is_aborted_not_answered_twice(
    stack: Stack, gateway: Gateway, raw_upstream: RawUpstream
) -> None:
    """F37c: headers and some bytes, then silence past the idle limit: the connection is cut."""
    first = await logged_in(stack, gateway)
    sidecar = await replica(stack, first, raw_upstream.url, SIDECAR_UPSTREAM_READ_TIMEOUT="0.3")

    async def stall(_head: bytes) -> list[bytes | float]:
        return [b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n", b"z" * 100, 3.0]

    raw_upstream.answer = stall
    status, headers, body, _ = await raw_request(
        port_of(sidecar), f"/jira/{SITE_A}/download", cookie_header(sidecar)
    )
    assert status == 200
    assert headers["Content-Length"] == "1000"
    assert body == b"z" * 100  # truncated: the client can tell
    assert sidecar.metric("sidecar_upstream_requests_total", product="jira", status="aborted") == 1


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (
            "http://127.0.0.1:1/file/abc/binary?token=media-jwt&client=c&name=a.png",
            "http://127.0.0.1:1/file/abc/binary?token=media-jwt&client=c&name=a.png",
        ),
        (
            f"/ex/confluence/{SITE_A}/wiki/rest/api/content/123/child/attachment/att456/download?version=2",
            f"/wiki/{SITE_A}/rest/api/content/123/child/attachment/att456/download?version=2",
        ),
        (
            "{api}/ex/jira/" + SITE_A + "/rest/api/3/issue/10002",
            f"/jira/{SITE_A}/rest/api/3/issue/10002",
        ),
        (
            "https://site-a.example.net/secure/attachment/10001/a.png",
            "https://site-a.example.net/secure/attachment/10001/a.png",
        ),
    ],
)
async def test_redirects_go_back_to_the_client_never_followed(
    stack: Stack, gateway: Gateway, location: str, expected: str
) -> None:
    """F35: 30x pass through (gateway locations rewritten to sidecar paths), never followed."""
    sidecar = await logged_in(stack, gateway)

    async def moved(_r: web.Request, _rec: Recorded) -> web.StreamResponse:
        return web.Response(status=303, headers={"Location": location.format(api=gateway[1])})

    gateway[0].responder = moved
    resp = await sidecar.get(f"/jira/{SITE_A}/rest/api/3/attachment/content/10001")
    assert resp.status == 303
    assert resp.headers["Location"] == expected
    assert len(gateway[0].ex()) == 1


async def test_head_keeps_the_upstream_length_without_a_body(
    stack: Stack, gateway: Gateway
) -> None:
    """HEAD answers carry the upstream Content-Length and no body."""
    sidecar = await logged_in(stack, gateway)

    async def sized(_r: web.Request, _rec: Recorded) -> web.StreamResponse:
        return web.Response(body=b"q" * 1234)

    gateway[0].responder = sized
    status, headers, body, _ = await raw_request(
        port_of(sidecar),
        f"/jira/{SITE_A}/rest/api/3/attachment/content/1",
        cookie_header(sidecar),
        method="HEAD",
    )
    assert status == 200
    assert headers["Content-Length"] == "1234"
    assert body == b""
    assert gateway[0].ex()[0].method == "HEAD"


@pytest.mark.parametrize("method", ["PATCH", "PUT", "DELETE", "OPTIONS", "PROPFIND"])
async def test_any_method_is_forwarded(stack: Stack, gateway: Gateway, method: str) -> None:
    """Every method token, known or not, reaches the gateway as sent."""
    sidecar = await logged_in(stack, gateway)
    resp = await sidecar.client.request(
        method,
        f"/jira/{SITE_A}/rest/api/3/issue/ACME-1",
        data=b'{"a":1}',
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 200
    [seen] = gateway[0].ex()
    assert seen.method == method
    assert seen.body == b'{"a":1}'


async def test_multipart_upload_is_byte_identical_and_xsrf_header_not_added(
    stack: Stack, gateway: Gateway
) -> None:
    """F34: boundary, body and X-Atlassian-Token pass unchanged; the sidecar never adds it."""
    sidecar = await logged_in(stack, gateway)
    body = (
        b'------b0undary\r\nContent-Disposition: form-data; name="file"; filename="a.bin"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n"
        + bytes(range(256)) * 400
        + b"\r\n------b0undary--\r\n"
    )
    content_type = "multipart/form-data; boundary=----b0undary"
    path = f"/jira/{SITE_A}/rest/api/3/issue/ABC-1/attachments"
    await sidecar.client.post(
        path, data=body, headers={"Content-Type": content_type, "X-Atlassian-Token": "no-check"}
    )
    await sidecar.client.post(path, data=body, headers={"Content-Type": content_type})
    with_header, without = gateway[0].ex()
    assert with_header.body == body
    assert with_header.headers["Content-Type"] == content_type
    assert with_header.headers["X-Atlassian-Token"] == "no-check"
    assert "X-Atlassian-Token" not in without.headers


async def test_body_over_the_maximum_is_413_before_anything_is_sent(
    stack: Stack, gateway: Gateway
) -> None:
    """F33b/c: a declared or streamed body past SIDECAR_MAX_BODY_BYTES is 413 payload_too_large."""
    sidecar = await logged_in(stack, gateway, SIDECAR_MAX_BODY_BYTES="100000")
    resp = await sidecar.client.post(
        f"/jira/{SITE_A}/rest/api/3/issue",
        data=b"a" * 100_001,
        headers={"Content-Type": "application/json"},
    )
    assert resp.status == 413
    assert (await resp.json())["error"] == "payload_too_large"
    assert gateway[0].ex() == []

    async def endless() -> AsyncIterator[bytes]:
        for _ in range(40):
            yield b"b" * 10_000

    resp = await sidecar.client.post(f"/jira/{SITE_A}/rest/api/3/issue", data=endless())
    assert resp.status == 413


async def test_large_bodies_stream_both_ways_intact(stack: Stack, gateway: Gateway) -> None:
    """A 20 MiB upload and download pass through byte-identical (hash checked)."""
    sidecar = await logged_in(stack, gateway)
    blob = hashlib.sha256(b"seed").digest() * (20 * 1024 * 1024 // 32)

    async def echo_hash(request: web.Request, rec: Recorded) -> web.StreamResponse:
        out = web.StreamResponse(headers={"X-Got": hashlib.sha256(rec.body).hexdigest()})
        out.content_length = len(blob)
        await out.prepare(request)
        for start in range(0, len(blob), 1 << 20):
            await out.write(blob[start : start + (1 << 20)])
        return out

    gateway[0].responder = echo_hash
    resp = await sidecar.client.put(f"/jira/{SITE_A}/upload", data=io.BytesIO(blob))
    got = await resp.read()
    assert resp.headers["X-Got"] == hashlib.sha256(blob).hexdigest()
    assert hashlib.sha256(got).digest() == hashlib.sha256(blob).digest()


async def test_slow_chunked_response_reaches_the_client_as_it_arrives(
    stack: Stack, gateway: Gateway, raw_upstream: RawUpstream
) -> None:
    """F27a: chunks are relayed while the upstream is still writing (no buffering)."""
    first = await logged_in(stack, gateway)
    sidecar = await replica(stack, first, raw_upstream.url)

    async def trickle(_head: bytes) -> list[bytes | float]:
        parts: list[bytes | float] = [b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"]
        for i in range(3):
            parts += [b"6\r\nchunk%d\r\n" % i, 0.3]
        return [*parts, b"0\r\n\r\n"]

    raw_upstream.answer = trickle
    resp = await sidecar.client.get(f"/jira/{SITE_A}/stream")
    loop = asyncio.get_running_loop()
    started = loop.time()
    first_chunk = await resp.content.readany()
    assert first_chunk.startswith(b"chunk0")
    assert loop.time() - started < 0.25
    rest = await resp.read()
    assert first_chunk + rest == b"chunk0chunk1chunk2"
    assert resp.headers.get("Transfer-Encoding") == "chunked"
    assert "Content-Length" not in resp.headers


async def test_close_delimited_and_informational_answers_are_reframed(
    stack: Stack, gateway: Gateway, raw_upstream: RawUpstream
) -> None:
    """A body ended by closing the connection, and a 103 before the 200, arrive whole."""
    first = await logged_in(stack, gateway)
    sidecar = await replica(stack, first, raw_upstream.url)

    async def close_delimited(_head: bytes) -> list[bytes | float]:
        return [b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n", b"until", 0.05, b" close"]

    raw_upstream.answer = close_delimited
    status, headers, body, head = await raw_request(
        port_of(sidecar), f"/jira/{SITE_A}/x", cookie_header(sidecar)
    )
    assert (status, body) == (200, b"until close")
    assert not ("Content-Length" in headers and "Transfer-Encoding" in headers), head

    async def early_hints(_head: bytes) -> list[bytes | float]:
        return [
            b"HTTP/1.1 103 Early Hints\r\nLink: </style.css>; rel=preload\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
        ]

    raw_upstream.answer = early_hints
    status, headers, body, _ = await raw_request(
        port_of(sidecar), f"/jira/{SITE_A}/x", cookie_header(sidecar)
    )
    assert status == 200  # aiohttp skips informational answers: the 200 is what counts
    assert body == b"ok"
    assert headers["Content-Length"] == "2"


PATTERN = hashlib.sha256(b"pattern").digest() * 32768  # 1 MiB


async def test_256_mib_streams_both_ways_checked_by_hash(
    stack: Stack, gateway: Gateway, aiohttp_server: Any
) -> None:
    """256 MiB up (chunked) and down (with a length) pass byte-identical, hashed on the fly."""
    size = 256
    seen: dict[str, str] = {}

    async def sink(request: web.Request) -> web.StreamResponse:
        digest = hashlib.sha256()
        async for chunk in request.content.iter_any():
            digest.update(chunk)
        seen["upload"] = digest.hexdigest()
        return web.json_response({"ok": True})

    async def source(request: web.Request) -> web.StreamResponse:
        out = web.StreamResponse()
        out.content_length = size * len(PATTERN)
        await out.prepare(request)
        for _ in range(size):
            await out.write(PATTERN)
        return out

    big = web.Application(client_max_size=1 << 40)
    big.router.add_put("/ex/jira/{cloud}/upload", sink)
    big.router.add_get("/ex/jira/{cloud}/download", source)
    server = await aiohttp_server(big)
    first = await logged_in(stack, gateway)
    sidecar = await replica(stack, first, str(server.make_url("")).rstrip("/"))
    expected = hashlib.sha256()
    for _ in range(size):
        expected.update(PATTERN)

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(size):
            yield PATTERN

    resp = await sidecar.client.put(f"/jira/{SITE_A}/upload", data=chunks())
    assert resp.status == 200
    assert seen["upload"] == expected.hexdigest()
    resp = await sidecar.client.get(f"/jira/{SITE_A}/download")
    assert resp.headers["Content-Length"] == str(size * len(PATTERN))
    got = hashlib.sha256()
    async for chunk in resp.content.iter_any():
        got.update(chunk)
    assert got.hexdigest() == expected.hexdigest()


async def test_unknown_routes_and_methods_answer_in_the_contract_shape(stack: Stack) -> None:
    """404 not_found and 405 method_not_allowed are JSON with X-Sidecar-Error, never echoes."""
    sidecar = await stack.sidecar()
    missing = await sidecar.get("/nothing/here")
    assert missing.status == 404
    assert missing.headers["X-Sidecar-Error"] == "not_found"
    assert (await missing.json())["error"] == "not_found"
    wrong = await sidecar.client.get("/auth/logout")
    assert wrong.status == 405
    assert wrong.headers["X-Sidecar-Error"] == "method_not_allowed"
    assert "POST" in wrong.headers["Allow"]
    assert wrong.headers["Cache-Control"] == "no-store"
