"""Emulator configuration and the fixed identities it serves: the app's client, the sites, the user.

Plain dataclasses with no I/O, so both the sans-IO state and the HTTP layer can read them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = [
    "DEFAULT_SITES",
    "DEFAULT_USER",
    "SITE_A",
    "SITE_B",
    "EmulatorConfig",
    "Site",
    "User",
]

_DAY = 86400.0


@dataclass(frozen=True)
class Site:
    """One Atlassian Cloud site (a cloudId) and the products installed on it."""

    cloud_id: str
    name: str
    url: str
    products: tuple[str, ...]  # a subset of ("jira", "confluence")
    avatar_url: str = (
        "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/rocket.png"
    )


@dataclass(frozen=True)
class User:
    """An Atlassian account, as `/me` and Jira's `myself` describe it."""

    account_id: str
    name: str
    email: str
    picture: str
    nickname: str
    zoneinfo: str = "Europe/Berlin"
    locale: str = "en-US"


SITE_A = Site(
    cloud_id="11111111-1111-4111-8111-111111111111",
    name="acme",
    url="https://acme.atlassian.net",
    products=("jira", "confluence"),
    avatar_url="https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/flag.png",
)
SITE_B = Site(
    cloud_id="22222222-2222-4222-8222-222222222222",
    name="beta",
    url="https://beta.atlassian.net",
    products=("jira",),
    avatar_url="https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/koala.png",
)
DEFAULT_SITES: tuple[Site, ...] = (SITE_A, SITE_B)

DEFAULT_USER = User(
    account_id="5b10ac8d82e05b22cc7d4ef5",
    name="Mia Krystof",
    email="mia@example.com",
    picture=(
        "https://avatar-management--avatars.us-west-2.prod.public.atl-paas.net/"
        "5b10ac8d82e05b22cc7d4ef5/8c2b8a8e-7f54-4b8b-9e3b-1c5d5f0e6a1b/128"
    ),
    nickname="mkrystof",
)


@dataclass
class EmulatorConfig:
    """How the emulated auth server and API gateway behave; defaults follow Atlassian's.

    `redirect_uris` empty accepts any callback URL (ad-hoc use); otherwise the match is exact.
    `users[0]` is the account that consents unless the consent form picks another.
    """

    client_id: str
    client_secret: str
    redirect_uris: tuple[str, ...] = ()
    access_token_ttl: float = 3600.0
    code_ttl: float = 600.0
    reuse_window: float = 600.0
    clock: Callable[[], float] = time.time
    sites: tuple[Site, ...] = DEFAULT_SITES
    rate_limit_per_second: float | None = None
    # Rotating refresh tokens die after 90 days unused; the family after 365 days (None: never).
    refresh_token_ttl: float = 90 * _DAY
    family_lifetime: float | None = 365 * _DAY
    users: tuple[User, ...] = field(default=(DEFAULT_USER,))
    app_name: str = "Sidecar Dev App"

    def __post_init__(self) -> None:
        if not self.users:
            raise ValueError("EmulatorConfig.users must name at least one account")

    def user(self, account_id: str | None = None) -> User | None:
        """Return the account with this id (the default user for None), or None if unknown."""
        if account_id is None:
            return self.users[0]
        return next((u for u in self.users if u.account_id == account_id), None)
