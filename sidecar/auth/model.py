"""Plain value types of the auth domain: token sets, sites, users, session records."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from typing import Any

__all__ = ["SessionRecord", "Site", "TokenSet", "UserProfile"]


@dataclass(frozen=True)
class TokenSet:
    """One Atlassian token pair. ``refresh_token`` is None when offline_access was not granted."""

    access_token: str = field(repr=False)
    refresh_token: str | None = field(repr=False)
    expires_at: float
    scopes: tuple[str, ...]

    def needs_refresh(self, now: float, skew: float) -> bool:
        """True when the access token expires within ``skew`` seconds."""
        return self.expires_at - skew <= now

    def to_json(self) -> bytes:
        """Serialise for sealing."""
        return json.dumps(asdict(self), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> TokenSet:
        """Parse what ``to_json`` wrote."""
        data = json.loads(raw)
        return cls(
            access_token=str(data["access_token"]),
            refresh_token=data["refresh_token"],
            expires_at=float(data["expires_at"]),
            scopes=tuple(data["scopes"]),
        )


@dataclass(frozen=True)
class Site:
    """An Atlassian site (cloudId) with the products and scopes this grant covers there."""

    cloud_id: str
    name: str
    url: str
    products: tuple[str, ...]
    scopes: tuple[str, ...]

    @property
    def subdomain(self) -> str:
        """``acme`` for https://acme.atlassian.net (lower-case), or "" when not of that shape."""
        host = self.url.partition("://")[2].partition("/")[0].lower()
        return host.partition(".")[0] if "." in host else ""

    def matches(self, site: str) -> bool:
        """Whether the ``{site}`` path segment names this site (cloudId or subdomain)."""
        lowered = site.lower()
        return lowered == self.cloud_id.lower() or (
            bool(self.subdomain) and lowered == self.subdomain
        )


@dataclass(frozen=True)
class UserProfile:
    """The public profile from /me."""

    account_id: str
    name: str | None
    email: str | None
    picture: str | None


@dataclass(frozen=True)
class SessionRecord:
    """The non-token state of a session (sealed at rest like the tokens)."""

    account_id: str | None
    user: UserProfile | None
    sites: tuple[Site, ...]
    scopes: tuple[str, ...]
    created_at: float
    touched_at: float
    sites_checked_at: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (for the session mapping)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SessionRecord:
        """Parse what ``to_dict`` wrote."""
        user = data.get("user")
        return cls(
            account_id=data.get("account_id"),
            user=UserProfile(**user) if user else None,
            sites=tuple(
                Site(
                    cloud_id=s["cloud_id"],
                    name=s["name"],
                    url=s["url"],
                    products=tuple(s["products"]),
                    scopes=tuple(s["scopes"]),
                )
                for s in data.get("sites", ())
            ),
            scopes=tuple(data.get("scopes", ())),
            created_at=float(data["created_at"]),
            touched_at=float(data["touched_at"]),
            sites_checked_at=float(data["sites_checked_at"]),
        )

    def with_sites(self, sites: tuple[Site, ...], now: float) -> SessionRecord:
        """A copy with a fresh list of sites."""
        return replace(self, sites=sites, sites_checked_at=now)

    def touched(self, now: float) -> SessionRecord:
        """A copy marked as used at ``now`` (idle timeout)."""
        return replace(self, touched_at=now)
