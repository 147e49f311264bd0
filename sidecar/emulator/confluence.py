"""Confluence data of one emulated site: seeded spaces and pages and their REST v2 JSON.

Pure data and rendering; the HTTP handlers live in `confluence_views`. Links are relative to
`_links.base` (the site's `/wiki`), as in Confluence v2.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

from .config import Site, User

__all__ = ["ConfluencePage", "ConfluenceSite", "ConfluenceSpace", "seed_confluence"]

_SEED_TIME = datetime(2024, 1, 10, 8, 0, tzinfo=UTC).timestamp()
_SEED = (
    # space key, space name, page titles (the first is the space's homepage)
    (
        "ENG",
        "Engineering",
        ("Engineering Home", "Onboarding guide", "Architecture overview", "Release checklist"),
    ),
    ("PEOPLE", "People", ("People Home",)),
)


def _iso(timestamp: float) -> str:
    moment = datetime.fromtimestamp(timestamp, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


@dataclass
class ConfluenceSpace:
    """A Confluence space."""

    id: str
    key: str
    name: str
    homepage_id: str
    created: float


@dataclass
class ConfluencePage:
    """A Confluence page (current version only)."""

    id: str
    title: str
    space: ConfluenceSpace
    parent_id: str | None
    position: int
    created: float
    storage: str


@dataclass
class ConfluenceSite:
    """The spaces and pages of one site."""

    site: Site
    user: User
    spaces: list[ConfluenceSpace] = field(default_factory=list)
    pages: list[ConfluencePage] = field(default_factory=list)

    @property
    def base(self) -> str:
        """The `_links.base` of every answer: the site's wiki root."""
        return f"{self.site.url}/wiki"

    def page(self, page_id: str) -> ConfluencePage | None:
        """Find a page by id."""
        return next((p for p in self.pages if p.id == page_id), None)

    def space_json(self, space: ConfluenceSpace) -> dict[str, Any]:
        """Render a space as `GET /wiki/api/v2/spaces` does."""
        return {
            "id": space.id,
            "key": space.key,
            "name": space.name,
            "type": "global",
            "status": "current",
            "authorId": self.user.account_id,
            "createdAt": _iso(space.created),
            "homepageId": space.homepage_id,
            "spaceOwnerId": self.user.account_id,
            "currentActiveAlias": space.key,
            "description": None,
            "icon": None,
            "_links": {"webui": f"/spaces/{space.key}"},
        }

    def page_json(self, page: ConfluencePage, body_format: str | None) -> dict[str, Any]:
        """Render a page; `body_format="storage"` includes its storage-format body."""
        account = self.user.account_id
        body: dict[str, Any] = {}
        if body_format == "storage":
            body["storage"] = {"value": page.storage, "representation": "storage"}
        return {
            "id": page.id,
            "status": "current",
            "title": page.title,
            "spaceId": page.space.id,
            "parentId": page.parent_id,
            "parentType": "page" if page.parent_id else None,
            "position": page.position,
            "authorId": account,
            "ownerId": account,
            "lastOwnerId": None,
            "createdAt": _iso(page.created),
            "version": {
                "createdAt": _iso(page.created),
                "message": "",
                "number": 1,
                "minorEdit": False,
                "authorId": account,
            },
            "body": body,
            "_links": {
                "webui": f"/spaces/{page.space.key}/pages/{page.id}/{quote_plus(page.title)}",
                "editui": f"/pages/resumedraft.action?draftId={page.id}",
                "tinyui": f"/x/{page.id}",
            },
        }


def seed_confluence(site: Site, user: User) -> ConfluenceSite:
    """Seed a site with two spaces and five pages (the rest are children of the homepage)."""
    data = ConfluenceSite(site, user)
    page_id = 65537
    for space_number, (key, name, titles) in enumerate(_SEED):
        space = ConfluenceSpace(str(98305 + space_number), key, name, str(page_id), _SEED_TIME)
        data.spaces.append(space)
        for position, title in enumerate(titles):
            parent = None if position == 0 else space.homepage_id
            storage = f"<h1>{title}</h1><p>Seeded by the Atlassian emulator.</p>"
            created = _SEED_TIME + 3600 * len(data.pages)
            data.pages.append(
                ConfluencePage(str(page_id), title, space, parent, position, created, storage)
            )
            page_id += 1
    return data
