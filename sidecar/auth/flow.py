"""Sans-IO OAuth 2.0 (3LO) logic: authorize URLs, PKCE, return targets, and the reading and
classification of Atlassian's token, accessible-resources and /me answers.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, unquote, urlencode

from sidecar.auth.model import Site, TokenSet, UserProfile

__all__ = [
    "Misconfigured",
    "Refused",
    "TokenResult",
    "Transient",
    "Updated",
    "authorize_url",
    "classify_token_response",
    "new_pkce",
    "parse_accessible_resources",
    "parse_me",
    "safe_return_to",
]


def new_pkce() -> tuple[str, str]:
    """A PKCE verifier (43 chars of base64url) and its S256 challenge."""
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def authorize_url(
    auth_url: str,
    *,
    client_id: str,
    scopes: tuple[str, ...],
    redirect_uri: str,
    state: str,
    code_challenge: str,
) -> str:
    """Atlassian's documented authorize URL plus PKCE S256 (harmless there, checked if honoured)."""
    query = urlencode(
        {
            "audience": "api.atlassian.com",
            "client_id": client_id,
            "scope": " ".join(scopes),
            "redirect_uri": redirect_uri,
            "state": state,
            "response_type": "code",
            "prompt": "consent",
            "code_challenge": code_challenge,
            "code_challenge_method": "S256",
        },
        quote_via=quote,
    )
    return f"{auth_url}/authorize?{query}"


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
# Printable ASCII but space: what may stand in a Location header as it is. Everything else in
# an accepted target is percent-encoded (UTF-8), the way a browser would send it.
_LOCATION_SAFE = "".join(chr(c) for c in range(0x21, 0x7F))
_MAX_RETURN_TO = 2048


def safe_return_to(value: str | None) -> str | None:
    """``value`` when it is a same-origin path (one leading ``/``), else None (caller uses "/").

    Checked raw and after percent-decoding twice: no scheme, no ``//`` or ``/\\`` authority trick,
    no backslash anywhere, no control characters or whitespace smuggling. An accepted target
    comes back with non-ASCII characters and spaces percent-encoded, so it is always a valid,
    same-origin ``Location``; one that cannot be encoded (lone surrogates) or is longer than
    2 KiB is refused.
    """
    if not value or not value.startswith("/") or len(value) > _MAX_RETURN_TO:
        return None
    candidates = [value, unquote(value), unquote(unquote(value))]
    for candidate in candidates:
        if _CONTROL.search(candidate) or "\\" in candidate:
            return None
        stripped = candidate.replace(" ", "")
        if stripped.startswith("//") or not candidate.startswith("/"):
            return None
    try:
        return quote(value, safe=_LOCATION_SAFE)
    except UnicodeEncodeError:
        return None


@dataclass(frozen=True)
class Updated:
    """A good token answer. ``rotated`` is False when no refresh token came back (kept the old)."""

    tokens: TokenSet
    rotated: bool


@dataclass(frozen=True)
class Refused:
    """The grant is dead (invalid_grant and kin): the user must log in again."""

    error: str


@dataclass(frozen=True)
class Misconfigured:
    """Our client was refused (bad secret, bad request): an operator problem, not the user's."""

    error: str


@dataclass(frozen=True)
class Transient:
    """Network, 5xx, 429 or garbage: try later, keep everything."""

    reason: str


TokenResult = Updated | Refused | Misconfigured | Transient

_TERMINAL = frozenset({"invalid_grant", "unauthorized_client", "invalid_token"})
_CLIENT_FAULTS = frozenset({"invalid_client", "access_denied"})


def _json_object(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def classify_token_response(
    status: int, body: bytes, *, now: float, previous_refresh: str | None
) -> TokenResult:
    """Sort an /oauth/token answer into the four outcomes the sidecar acts on."""
    data = _json_object(body)
    if status == 200:
        return _parse_success(data, now=now, previous_refresh=previous_refresh)
    if status == 429 or status >= 500 or data is None:
        return Transient(f"status {status}")
    error = str(data.get("error", ""))
    if error in _TERMINAL:
        return Refused(error)
    if error in _CLIENT_FAULTS:
        return Misconfigured(error)
    if status == 403:
        return Refused(error or "forbidden")
    return Misconfigured(error or f"status {status}")


def _parse_success(
    data: dict[str, Any] | None, *, now: float, previous_refresh: str | None
) -> TokenResult:
    if data is None:
        return Transient("token answer is not JSON")
    access = data.get("access_token")
    expires_in = data.get("expires_in", 3600)
    if not isinstance(access, str) or not access:
        return Transient("token answer has no access_token")
    if isinstance(expires_in, bool) or not isinstance(expires_in, int | float) or expires_in <= 0:
        expires_in = 3600
    fresh = data.get("refresh_token")
    rotated = isinstance(fresh, str) and bool(fresh)
    scope = data.get("scope")
    tokens = TokenSet(
        access_token=access,
        refresh_token=fresh if rotated else previous_refresh,
        expires_at=now + float(expires_in),
        scopes=tuple(scope.split()) if isinstance(scope, str) else (),
    )
    return Updated(tokens, rotated=rotated)


def _product_of(scopes: list[str]) -> str | None:
    if any("confluence" in s for s in scopes):
        return "confluence"
    if any("jira" in s or "servicedesk" in s or "jsm" in s for s in scopes):
        return "jira"
    return None


def parse_accessible_resources(data: Any) -> tuple[Site, ...]:
    """Merge Atlassian's per-product entries (same cloudId twice) into one Site each.

    The list has no order and may be empty; unknown shapes are skipped, never fatal.
    """
    merged: dict[str, dict[str, Any]] = {}
    for entry in data if isinstance(data, list) else []:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), str):
            continue
        scopes = [s for s in entry.get("scopes", []) if isinstance(s, str)]
        item = merged.setdefault(
            entry["id"],
            {
                "name": str(entry.get("name", "")),
                "url": str(entry.get("url", "")),
                "products": [],
                "scopes": [],
            },
        )
        product = _product_of(scopes)
        if product and product not in item["products"]:
            item["products"].append(product)
        item["scopes"].extend(s for s in scopes if s not in item["scopes"])
    return tuple(
        Site(
            cloud_id=cid,
            name=i["name"],
            url=i["url"],
            products=tuple(sorted(i["products"])),
            scopes=tuple(i["scopes"]),
        )
        for cid, i in sorted(merged.items())
    )


def parse_me(data: Any) -> UserProfile | None:
    """The profile from /me, or None when the answer is not the documented shape."""
    if not isinstance(data, dict) or not isinstance(data.get("account_id"), str):
        return None

    def text(key: str) -> str | None:
        value = data.get(key)
        return value if isinstance(value, str) else None

    return UserProfile(
        account_id=data["account_id"],
        name=text("name"),
        email=text("email"),
        picture=text("picture"),
    )
