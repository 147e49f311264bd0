"""The sans-IO OAuth logic (sidecar.auth.flow): token answers sorted into outcomes, authorize
URLs, PKCE, return targets, accessible resources and /me.
"""

from __future__ import annotations

import base64
import hashlib
import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from sidecar.auth.flow import (
    Misconfigured,
    Refused,
    TokenResult,
    Transient,
    Updated,
    authorize_url,
    classify_token_response,
    new_pkce,
    parse_accessible_resources,
    parse_me,
    safe_return_to,
)
from sidecar.auth.model import Site, TokenSet, UserProfile

NOW = 1_780_000_000.0
OLD_REFRESH = "old-refresh-token"


def body(data: Any) -> bytes:
    return json.dumps(data).encode()


def classify(status: int, raw: bytes) -> TokenResult:
    return classify_token_response(status, raw, now=NOW, previous_refresh=OLD_REFRESH)


GOOD = {"access_token": "at-1", "expires_in": 3600, "scope": "read:me offline_access"}


@pytest.mark.parametrize(
    ("extra", "refresh", "rotated"),
    [
        ({"refresh_token": "rt-2"}, "rt-2", True),
        ({}, OLD_REFRESH, False),
        ({"refresh_token": None}, OLD_REFRESH, False),
        ({"refresh_token": ""}, OLD_REFRESH, False),
        ({"refresh_token": 42}, OLD_REFRESH, False),
    ],
)
def test_good_token_answer_keeps_old_refresh_token_unless_rotated(
    extra: dict[str, Any], refresh: str, rotated: bool
) -> None:
    """200: a new refresh token rotates; missing, null, empty or non-string keeps the old one."""
    result = classify(200, body({**GOOD, **extra}))
    assert result == Updated(
        TokenSet(
            access_token="at-1",
            refresh_token=refresh,
            expires_at=NOW + 3600,
            scopes=("read:me", "offline_access"),
        ),
        rotated=rotated,
    )


def test_first_exchange_without_previous_refresh_token_has_none() -> None:
    """No refresh token in the answer and none before: the pair has None (no offline_access)."""
    result = classify_token_response(200, body(GOOD), now=NOW, previous_refresh=None)
    assert isinstance(result, Updated)
    assert result.tokens.refresh_token is None
    assert result.rotated is False


@pytest.mark.parametrize(
    ("expires_in", "expected"),
    [(120, 120.0), (90.5, 90.5), (0, 3600.0), (-5, 3600.0), ("60", 3600.0), (True, 3600.0)],
)
def test_expires_in_falls_back_to_an_hour_when_unusable(expires_in: Any, expected: float) -> None:
    """A positive number is used; zero, negative, strings and booleans mean Atlassian's 3600."""
    result = classify(200, body({**GOOD, "expires_in": expires_in}))
    assert isinstance(result, Updated)
    assert result.tokens.expires_at == NOW + expected


def test_missing_scope_gives_empty_scopes() -> None:
    """No scope field: an empty tuple, not a crash."""
    result = classify(200, body({"access_token": "at-1"}))
    assert isinstance(result, Updated)
    assert result.tokens.scopes == ()
    assert result.tokens.expires_at == NOW + 3600


@pytest.mark.parametrize(
    ("status", "raw", "expected"),
    [
        (200, b"<html>gateway</html>", Transient("token answer is not JSON")),
        (200, b"[1, 2]", Transient("token answer is not JSON")),
        (200, body({"token_type": "bearer"}), Transient("token answer has no access_token")),
        (200, body({"access_token": ""}), Transient("token answer has no access_token")),
        (200, body({"access_token": 5}), Transient("token answer has no access_token")),
        (400, body({"error": "invalid_grant"}), Refused("invalid_grant")),
        (401, body({"error": "invalid_grant"}), Refused("invalid_grant")),
        (
            403,
            body({"error": "invalid_grant", "error_description": "Unknown or invalid refresh"}),
            Refused("invalid_grant"),
        ),
        (403, body({"error": "unauthorized_client"}), Refused("unauthorized_client")),
        (400, body({"error": "invalid_token"}), Refused("invalid_token")),
        (401, body({"error": "invalid_client"}), Misconfigured("invalid_client")),
        (
            401,
            body({"error": "access_denied", "error_description": "Unauthorized"}),
            Misconfigured("access_denied"),
        ),
        (400, body({"error": "invalid_request"}), Misconfigured("invalid_request")),
        (400, body({"error": "something_new"}), Misconfigured("something_new")),
        (403, body({"error": "something_new"}), Refused("something_new")),
        (403, body({}), Refused("forbidden")),
        (400, body({}), Misconfigured("status 400")),
        (429, body({"error": "invalid_grant"}), Transient("status 429")),
        (429, b"", Transient("status 429")),
        (500, body({"error": "invalid_grant"}), Transient("status 500")),
        (502, b"Bad Gateway", Transient("status 502")),
        (503, b"", Transient("status 503")),
        (400, b"<html><body>Bad Request</body></html>", Transient("status 400")),
        (403, b"<html>Forbidden</html>", Transient("status 403")),
        (401, b"\xff\xfe", Transient("status 401")),
    ],
)
def test_token_answers_are_classified(status: int, raw: bytes, expected: TokenResult) -> None:
    """Refusals end the grant, client faults are the operator's, outages and garbage are
    transient (even an HTML 4xx: it is not the token endpoint speaking).
    """
    assert classify(status, raw) == expected


def test_authorize_url_carries_every_parameter() -> None:
    """Atlassian's documented parameters plus PKCE S256; scopes joined by %20, never +."""
    url = authorize_url(
        "https://auth.example.test",
        client_id="client 1",
        scopes=("read:jira-work", "read:me", "offline_access"),
        redirect_uri="http://localhost:8080/auth/callback",
        state="st-1",
        code_challenge="ch_-1",
    )
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "auth.example.test", "/authorize")
    assert "scope=read%3Ajira-work%20read%3Ame%20offline_access" in parts.query
    assert "+" not in parts.query
    assert parse_qs(parts.query) == {
        "audience": ["api.atlassian.com"],
        "client_id": ["client 1"],
        "scope": ["read:jira-work read:me offline_access"],
        "redirect_uri": ["http://localhost:8080/auth/callback"],
        "state": ["st-1"],
        "response_type": ["code"],
        "prompt": ["consent"],
        "code_challenge": ["ch_-1"],
        "code_challenge_method": ["S256"],
    }


def test_pkce_challenge_is_the_s256_of_a_43_char_verifier() -> None:
    """Verifier: 43 base64url chars; challenge: unpadded base64url SHA-256 of it; never reused."""
    verifier, challenge = new_pkce()
    assert len(verifier) == 43
    assert set(verifier) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    assert challenge == base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    assert len(challenge) == 43
    assert new_pkce()[0] != verifier


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("/", "/"),
        ("/app/page?x=1&y=2#frag", "/app/page?x=1&y=2#frag"),
        ("/a?next=//evil.test", "/a?next=//evil.test"),
        ("/päge", "/p%C3%A4ge"),
        ("/a b", "/a%20b"),
        ("/already%20encoded", "/already%20encoded"),
        ("/" + "a" * 2047, "/" + "a" * 2047),
    ],
)
def test_same_origin_paths_are_accepted(value: str, expected: str) -> None:
    """Paths on this origin come back, non-ASCII and spaces percent-encoded."""
    assert safe_return_to(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "relative/path",
        "https://evil.test/",
        "javascript:alert(1)",
        "//evil.test",
        "/\\evil.test",
        "/a\\b",
        "/%5cevil.test",
        "/%255cevil.test",
        "/%2F%2Fevil.test",
        "/%252f%252fevil.test",
        "/ /evil.test",
        "/%20/evil.test",
        "/\t/evil.test",
        "/%0d%0aSet-Cookie:%20x=1",
        "/%250d%250a",
        "/?x=%00",
        "/\u2028",
        "/%E2%80%A8",
        "/\x85",
        "/\ud800",
        "/" + "a" * 2048,
    ],
)
def test_other_return_targets_are_refused(value: str | None) -> None:
    """Absolute URLs, protocol-relative tricks (raw, encoded, double-encoded), backslashes,
    control characters, lone surrogates and overlong values are all refused.
    """
    assert safe_return_to(value) is None


def test_accessible_resources_merge_per_cloud_id() -> None:
    """Two entries for one cloudId become one Site with both products; garbage is skipped."""
    data = [
        {
            "id": "b-cloud",
            "name": "Beta",
            "url": "https://beta.atlassian.net",
            "scopes": ["read:confluence-content.summary"],
        },
        "not an entry",
        {"name": "no id"},
        {"id": 7, "scopes": ["read:jira-work"]},
        {
            "id": "a-cloud",
            "name": "Acme",
            "url": "https://acme.atlassian.net",
            "scopes": ["read:jira-work", "read:jira-user", 3],
        },
        {
            "id": "a-cloud",
            "name": "Acme (other)",
            "url": "https://acme.atlassian.net",
            "scopes": ["read:confluence-content.summary", "read:jira-user"],
        },
        {"id": "jsm-cloud", "scopes": ["read:servicedesk-request"]},
        {"id": "no-product", "scopes": ["read:me"]},
    ]
    assert parse_accessible_resources(data) == (
        Site(
            cloud_id="a-cloud",
            name="Acme",
            url="https://acme.atlassian.net",
            products=("confluence", "jira"),
            scopes=("read:jira-work", "read:jira-user", "read:confluence-content.summary"),
        ),
        Site(
            cloud_id="b-cloud",
            name="Beta",
            url="https://beta.atlassian.net",
            products=("confluence",),
            scopes=("read:confluence-content.summary",),
        ),
        Site(
            cloud_id="jsm-cloud",
            name="",
            url="",
            products=("jira",),
            scopes=("read:servicedesk-request",),
        ),
        Site(cloud_id="no-product", name="", url="", products=(), scopes=("read:me",)),
    )


@pytest.mark.parametrize("data", [[], None, {"id": "a"}, "[]", 5])
def test_accessible_resources_empty_or_not_a_list(data: Any) -> None:
    """An empty list or any non-list answer gives no sites, never an exception."""
    assert parse_accessible_resources(data) == ()


def test_me_is_parsed() -> None:
    """The documented /me fields; non-string optional fields become None."""
    assert parse_me(
        {"account_id": "acc-1", "name": "Ada", "email": "ada@example.test", "picture": None}
    ) == UserProfile(account_id="acc-1", name="Ada", email="ada@example.test", picture=None)
    assert parse_me({"account_id": "acc-2", "name": 3}) == UserProfile(
        account_id="acc-2", name=None, email=None, picture=None
    )


@pytest.mark.parametrize("data", [None, [], {"name": "Ada"}, {"account_id": 1}, "acc-1"])
def test_me_of_another_shape_is_none(data: Any) -> None:
    """Without a string account_id the answer is not a profile."""
    assert parse_me(data) is None
