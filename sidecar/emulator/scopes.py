"""Scope arithmetic of the API gateway: which product a scope is for, what each endpoint needs."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "CONFLUENCE_PAGE_READ",
    "CONFLUENCE_SPACE_READ",
    "JIRA_READ",
    "JIRA_USER_READ",
    "JIRA_WRITE",
    "PRODUCTS",
    "READ_ME",
    "has_any",
    "product_scopes",
]

PRODUCTS = ("jira", "confluence")
READ_ME = frozenset({"read:me"})
JIRA_READ = frozenset({"read:jira-work"})
JIRA_USER_READ = frozenset({"read:jira-user", "read:jira-work"})
JIRA_WRITE = frozenset({"write:jira-work"})
_CONFLUENCE_CLASSIC_READ = frozenset(
    {"read:confluence-content.summary", "read:confluence-content.all"}
)
CONFLUENCE_PAGE_READ = _CONFLUENCE_CLASSIC_READ | {"read:page:confluence"}
CONFLUENCE_SPACE_READ = _CONFLUENCE_CLASSIC_READ | {
    "read:space:confluence",
    "read:confluence-space.summary",
}


def product_scopes(scopes: Iterable[str], product: str) -> list[str]:
    """Return the granted scopes that belong to a product ("jira" or "confluence").

    The gateway lists a site once per product, each entry carrying that product's scopes only;
    product-less scopes such as offline_access and read:me appear nowhere.
    """
    return [scope for scope in scopes if product in scope]


def has_any(granted: Iterable[str], required: Iterable[str]) -> bool:
    """Return whether any required scope was granted."""
    return not set(required).isdisjoint(granted)
