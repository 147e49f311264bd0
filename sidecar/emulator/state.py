"""Sans-IO bookkeeping of consents, authorization codes and rotating token families.

Everything here is plain Python over an injected clock, so token lifetimes, rotation and
breach detection can be tested without a server. Failures raise `OAuthError` carrying the
exact status and body Atlassian answers.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from .config import EmulatorConfig

__all__ = [
    "AccessToken",
    "AuthState",
    "AuthorizationCode",
    "OAuthError",
    "PendingConsent",
    "TokenFamily",
    "TokenGrant",
    "pkce_s256",
]

# How long a rendered consent page stays answerable (a person may read it for a while).
CONSENT_TTL = 3600.0
OFFLINE_ACCESS = "offline_access"


class OAuthError(Exception):
    """A token-endpoint failure, carrying Atlassian's status and JSON body."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(f"{status} {error}: {description}")
        self.status = status
        self.error = error
        self.description = description

    def body(self) -> dict[str, str]:
        """Return the JSON body Atlassian sends for this error."""
        return {"error": self.error, "error_description": self.description}


def _unauthorized_client() -> OAuthError:
    return OAuthError(401, "access_denied", "Unauthorized")


def _invalid_code() -> OAuthError:
    return OAuthError(400, "invalid_request", "authorization_code is invalid")


def _invalid_refresh() -> OAuthError:
    return OAuthError(403, "invalid_grant", "Unknown or invalid refresh token.")


def pkce_s256(verifier: str) -> str:
    """Return the S256 code challenge for a verifier: base64url(sha256(verifier)), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _new_secret() -> str:
    return secrets.token_urlsafe(32)


@dataclass(frozen=True)
class PendingConsent:
    """A validated /authorize request waiting for the user's Accept or Deny."""

    consent_id: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str
    code_challenge: str | None
    created_at: float


@dataclass
class AuthorizationCode:
    """A single-use code issued on Accept."""

    code: str
    consent: PendingConsent
    account_id: str
    issued_at: float
    used: bool = False


@dataclass
class TokenFamily:
    """All tokens descending from one code exchange; revoked as a whole on breach or revocation."""

    family_id: str
    account_id: str
    scopes: tuple[str, ...]
    created_at: float
    revoked: bool = False


@dataclass
class AccessToken:
    """An issued access token; `retired_at` is set when its companion refresh token is rotated."""

    token: str
    family: TokenFamily
    expires_at: float
    retired_at: float | None = None

    @property
    def account_id(self) -> str:
        """The account the token acts for."""
        return self.family.account_id

    @property
    def scopes(self) -> tuple[str, ...]:
        """The scopes granted to the token's family."""
        return self.family.scopes


@dataclass
class _RefreshToken:
    token: str
    family: TokenFamily
    issued_at: float
    access_token: AccessToken
    spent_at: float | None = None


@dataclass(frozen=True)
class TokenGrant:
    """A successful token-endpoint answer."""

    access_token: str
    refresh_token: str | None
    expires_in: int
    scope: str

    def body(self) -> dict[str, Any]:
        """Return the JSON body Atlassian sends for this grant."""
        body: dict[str, Any] = {
            "access_token": self.access_token,
            "expires_in": self.expires_in,
            "scope": self.scope,
            "token_type": "Bearer",
        }
        if self.refresh_token is not None:
            body["refresh_token"] = self.refresh_token
        return body


@dataclass
class AuthState:
    """The authorization server's memory: consents, codes, token families."""

    config: EmulatorConfig
    _consents: dict[str, PendingConsent] = field(default_factory=dict)
    _codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    _families: list[TokenFamily] = field(default_factory=list)
    _access: dict[str, AccessToken] = field(default_factory=dict)
    _refresh: dict[str, _RefreshToken] = field(default_factory=dict)

    def _now(self) -> float:
        return self.config.clock()

    def check_client(self, client_id: str | None, client_secret: str | None) -> None:
        """Raise 401 access_denied unless both client credentials are right."""
        if client_id is None or client_secret is None:
            raise _unauthorized_client()
        id_ok = hmac.compare_digest(client_id.encode(), self.config.client_id.encode())
        secret_ok = hmac.compare_digest(client_secret.encode(), self.config.client_secret.encode())
        if not (id_ok and secret_ok):
            raise _unauthorized_client()

    def create_consent(
        self,
        *,
        client_id: str,
        redirect_uri: str,
        scopes: tuple[str, ...],
        state: str,
        code_challenge: str | None,
    ) -> PendingConsent:
        """Remember a validated authorize request under a fresh, unguessable consent id."""
        consent = PendingConsent(
            consent_id=_new_secret(),
            client_id=client_id,
            redirect_uri=redirect_uri,
            scopes=scopes,
            state=state,
            code_challenge=code_challenge,
            created_at=self._now(),
        )
        self._consents[consent.consent_id] = consent
        return consent

    def take_consent(self, consent_id: str) -> PendingConsent | None:
        """Remove and return a pending consent; None if unknown, already answered or stale."""
        consent = self._consents.pop(consent_id, None)
        if consent is None or self._now() - consent.created_at > CONSENT_TTL:
            return None
        return consent

    def issue_code(self, consent: PendingConsent, account_id: str) -> str:
        """Issue the single-use authorization code for an accepted consent."""
        code = AuthorizationCode(_new_secret(), consent, account_id, self._now())
        self._codes[code.code] = code
        return code.code

    def exchange_code(
        self, code: str | None, redirect_uri: str | None, code_verifier: str | None
    ) -> TokenGrant:
        """Redeem a code (once) for a new token family, checking redirect_uri and PKCE."""
        record = self._codes.get(code) if code else None
        if record is None or record.used or self._now() - record.issued_at > self.config.code_ttl:
            raise _invalid_code()
        # Any attempt uses the code up: a code is never good for a second try.
        record.used = True
        if redirect_uri != record.consent.redirect_uri:
            raise OAuthError(403, "invalid_grant", "Invalid authorization code")
        challenge = record.consent.code_challenge
        if challenge is not None and not (
            code_verifier and hmac.compare_digest(pkce_s256(code_verifier), challenge)
        ):
            raise OAuthError(400, "invalid_grant", "Invalid code verifier")
        family = TokenFamily(_new_secret(), record.account_id, record.consent.scopes, self._now())
        self._families.append(family)
        return self._issue_pair(family)

    def refresh(self, refresh_token: str | None) -> TokenGrant:
        """Rotate a refresh token, honouring the reuse window and revoking the family on breach."""
        record = self._refresh.get(refresh_token) if refresh_token else None
        if record is None or not self._refresh_usable(record):
            raise _invalid_refresh()
        now = self._now()
        if record.spent_at is None:
            record.spent_at = now
            record.access_token.retired_at = now
        elif now - record.spent_at > self.config.reuse_window:
            # Reuse outside the leeway is treated as a stolen token: the whole family dies.
            record.family.revoked = True
            raise _invalid_refresh()
        return self._issue_pair(record.family)

    def _refresh_usable(self, record: _RefreshToken) -> bool:
        family, now = record.family, self._now()
        if family.revoked or now - record.issued_at > self.config.refresh_token_ttl:
            return False
        lifetime = self.config.family_lifetime
        return lifetime is None or now - family.created_at <= lifetime

    def _issue_pair(self, family: TokenFamily) -> TokenGrant:
        now = self._now()
        access = AccessToken(_new_secret(), family, now + self.config.access_token_ttl)
        self._access[access.token] = access
        refresh: str | None = None
        if OFFLINE_ACCESS in family.scopes:
            refresh = _new_secret()
            self._refresh[refresh] = _RefreshToken(refresh, family, now, access)
        return TokenGrant(
            access_token=access.token,
            refresh_token=refresh,
            expires_in=round(self.config.access_token_ttl),
            scope=" ".join(family.scopes),
        )

    def access_token(self, token: str | None) -> AccessToken | None:
        """Return the live access token for this string, or None if unknown, expired or revoked."""
        record = self._access.get(token) if token else None
        if record is None or record.family.revoked:
            return None
        now = self._now()
        if now >= record.expires_at:
            return None
        retired = record.retired_at
        if retired is not None and now - retired > self.config.reuse_window:
            return None
        return record

    def revoke_account(self, account_id: str) -> None:
        """Forget the app's grant for an account: its families and unredeemed codes die."""
        for family in self._families:
            if family.account_id == account_id:
                family.revoked = True
        for code in self._codes.values():
            if code.account_id == account_id:
                code.used = True

    def issued_secrets(self) -> set[str]:
        """Return every access token, refresh token and authorization code ever issued."""
        return set(self._access) | set(self._refresh) | set(self._codes)
