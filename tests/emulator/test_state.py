"""Sans-IO tests of the token bookkeeping, rate limiter, cursors and JQL, on a fake clock."""

from __future__ import annotations

import base64
import hashlib

import pytest

from sidecar.emulator import DEFAULT_USER, EmulatorConfig
from sidecar.emulator.config import SITE_A
from sidecar.emulator.jira import parse_jql, seed_jira
from sidecar.emulator.paging import decode_cursor, encode_cursor, page
from sidecar.emulator.ratelimit import BurstLimiter
from sidecar.emulator.state import AuthState, OAuthError, TokenGrant, pkce_s256

from .helpers import CLIENT_ID, CLIENT_SECRET, REDIRECT_URI, FakeClock


def _state(clock: FakeClock) -> AuthState:
    return AuthState(EmulatorConfig(CLIENT_ID, CLIENT_SECRET, clock=clock))


def _grant(state: AuthState, scopes: tuple[str, ...] = ("read:me", "offline_access")) -> TokenGrant:
    consent = state.create_consent(
        client_id=CLIENT_ID,
        redirect_uri=REDIRECT_URI,
        scopes=scopes,
        state="s",
        code_challenge=None,
    )
    code = state.issue_code(consent, DEFAULT_USER.account_id)
    return state.exchange_code(code, REDIRECT_URI, None)


def test_pkce_s256_matches_rfc7636_example() -> None:
    """The S256 transform gives RFC 7636 appendix B's challenge."""
    verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    assert pkce_s256(verifier) == "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
    expected = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert pkce_s256(verifier) == expected.decode()


def test_grant_body_has_refresh_token_only_with_offline_access() -> None:
    """offline_access decides whether a refresh token is issued at all."""
    state = _state(FakeClock())
    with_offline = _grant(state).body()
    without = _grant(state, ("read:me",)).body()
    assert set(with_offline) == {
        "access_token",
        "refresh_token",
        "expires_in",
        "scope",
        "token_type",
    }
    assert set(without) == {"access_token", "expires_in", "scope", "token_type"}
    assert with_offline["scope"] == "read:me offline_access"
    assert with_offline["expires_in"] == 3600


def test_rotation_reuse_window_and_breach() -> None:
    """A spent refresh token works inside the window, then kills the whole family."""
    clock = FakeClock()
    state = _state(clock)
    first = _grant(state)
    assert first.refresh_token is not None
    second = state.refresh(first.refresh_token)
    assert second.refresh_token not in (None, first.refresh_token)
    clock.advance(599)
    third = state.refresh(first.refresh_token)  # reuse inside the 600 s leeway
    assert third.access_token not in (first.access_token, second.access_token)
    clock.advance(2)
    with pytest.raises(OAuthError) as caught:
        state.refresh(first.refresh_token)
    assert (caught.value.status, caught.value.body()) == (
        403,
        {"error": "invalid_grant", "error_description": "Unknown or invalid refresh token."},
    )
    assert state.access_token(third.access_token) is None
    assert third.refresh_token is not None
    with pytest.raises(OAuthError):
        state.refresh(third.refresh_token)


def test_retired_access_token_lives_exactly_the_reuse_window() -> None:
    """After rotation the old access token works for reuse_window seconds, then dies."""
    clock = FakeClock()
    state = _state(clock)
    first = _grant(state)
    assert first.refresh_token is not None
    state.refresh(first.refresh_token)
    clock.advance(600)
    assert state.access_token(first.access_token) is not None
    clock.advance(0.5)
    assert state.access_token(first.access_token) is None


def test_access_token_expires_at_ttl() -> None:
    """An access token is dead at issued + access_token_ttl."""
    clock = FakeClock()
    state = _state(clock)
    grant = _grant(state)
    clock.advance(3599.9)
    assert state.access_token(grant.access_token) is not None
    clock.advance(0.1)
    assert state.access_token(grant.access_token) is None


def test_refresh_token_inactivity_expiry() -> None:
    """A refresh token unused for 90 days is refused without revoking the family."""
    clock = FakeClock()
    state = _state(clock)
    grant = _grant(state)
    assert grant.refresh_token is not None
    clock.advance(90 * 86400 + 1)
    with pytest.raises(OAuthError) as caught:
        state.refresh(grant.refresh_token)
    assert caught.value.status == 403


def test_check_client_rejects_wrong_secret() -> None:
    """Wrong or missing client credentials give 401 access_denied."""
    state = _state(FakeClock())
    state.check_client(CLIENT_ID, CLIENT_SECRET)
    for client_id, secret in ((CLIENT_ID, "nope"), ("other", CLIENT_SECRET), (CLIENT_ID, None)):
        with pytest.raises(OAuthError) as caught:
            state.check_client(client_id, secret)
        assert caught.value.body() == {
            "error": "access_denied",
            "error_description": "Unauthorized",
        }


def test_burst_limiter_window() -> None:
    """Two per second: the third request in a window is refused until the window ends."""
    clock = FakeClock(1_780_000_000.25)
    limiter = BurstLimiter(2, clock)
    assert [limiter.hit("t").allowed for _ in range(3)] == [True, True, False]
    assert limiter.hit("other").allowed
    refused = limiter.hit("t")
    assert (refused.remaining, refused.limit, refused.retry_after(clock())) == (0, 2, 1)
    assert refused.reset_iso() == "2026-05-28T20:26Z"
    clock.advance(1.0)
    assert limiter.hit("t").allowed


def test_cursor_round_trip_and_garbage() -> None:
    """Cursors decode to their offset; foreign strings decode to None."""
    assert decode_cursor(encode_cursor(7)) == 7
    assert decode_cursor("not-a-cursor") is None
    assert decode_cursor("!!!") is None
    assert page([1, 2, 3], 0, 2) == ([1, 2], encode_cursor(2))
    assert page([1, 2, 3], 2, 2) == ([3], None)


def test_jql_project_key_and_unknown_project() -> None:
    """The tiny JQL filters by project and key, ignores ORDER BY, and names unknown projects."""
    site = seed_jira(SITE_A, DEFAULT_USER, first=True)
    keys = parse_jql('project = "ACME" ORDER BY created DESC', site)
    assert not isinstance(keys, str)
    assert [i.key for i in keys] == ["ACME-1", "ACME-2", "ACME-3"]
    both = parse_jql("project in (ACME, OPS) AND key = OPS-1", site)
    assert not isinstance(both, str)
    assert [i.key for i in both] == ["OPS-1"]
    assert parse_jql("project = NOPE", site) == (
        "The value 'NOPE' does not exist for the field 'project'."
    )
