"""Confluence REST v2 through the emulated gateway: spaces, pages, cursors, errors."""

from __future__ import annotations

from typing import Any

import pytest
from yarl import URL

from .helpers import SITE_A, Client, bearer, login

_WIKI = f"/ex/confluence/{SITE_A}/wiki/api/v2"


@pytest.fixture
async def headers(client: Client) -> dict[str, str]:
    return bearer((await login(client))["access_token"])


async def test_spaces(client: Client, headers: dict[str, str]) -> None:
    """spaces lists the seeded spaces with the site's wiki as base."""
    resp = await client.get(f"{_WIKI}/spaces", headers=headers)
    body = await resp.json()
    assert resp.status == 200
    assert [(s["key"], s["name"]) for s in body["results"]] == [
        ("ENG", "Engineering"),
        ("PEOPLE", "People"),
    ]
    assert body["_links"] == {"base": "https://acme.atlassian.net/wiki"}
    assert "Link" not in resp.headers


async def test_pages_cursor_pagination(client: Client, headers: dict[str, str]) -> None:
    """pages honours limit and links the next page in the Link header and _links.next."""
    titles: list[str] = []
    path: str | None = f"{_WIKI}/pages?limit=2"
    links: list[str] = []
    while path is not None:
        resp = await client.get(path, headers=headers)
        body: dict[str, Any] = await resp.json()
        assert len(body["results"]) <= 2
        titles += [p["title"] for p in body["results"]]
        nxt = body["_links"].get("next")
        if nxt is None:
            assert "Link" not in resp.headers
            path = None
            continue
        assert URL(nxt).path == "/wiki/api/v2/pages"
        assert nxt.startswith("/wiki/api/v2/pages?limit=2&cursor=")
        assert resp.headers["Link"] == (
            f'<{nxt}>; rel="next", <https://acme.atlassian.net/wiki>; rel="base"'
        )
        links.append(nxt)
        path = f"/ex/confluence/{SITE_A}{nxt}"
    assert titles == [
        "Engineering Home",
        "Onboarding guide",
        "Architecture overview",
        "Release checklist",
        "People Home",
    ]
    assert len(links) == 2


async def test_pages_filters_keep_in_next_link(client: Client, headers: dict[str, str]) -> None:
    """space-id filters pages and survives into the next link."""
    spaces = await (await client.get(f"{_WIKI}/spaces", headers=headers)).json()
    eng = spaces["results"][0]["id"]
    body = await (
        await client.get(f"{_WIKI}/pages", params={"space-id": eng, "limit": "3"}, headers=headers)
    ).json()
    assert [p["spaceId"] for p in body["results"]] == [eng] * 3
    assert URL(body["_links"]["next"]).query["space-id"] == eng


async def test_bad_limit_and_cursor(client: Client, headers: dict[str, str]) -> None:
    """Out-of-range limits and foreign cursors are 400 in the v2 envelope."""
    for query in ("limit=0", "limit=251", "limit=x", "cursor=garbage"):
        resp = await client.get(f"{_WIKI}/pages?{query}", headers=headers)
        assert resp.status == 400, query
        (error,) = (await resp.json())["errors"]
        assert (error["status"], error["code"]) == (400, "INVALID_REQUEST_PARAMETER")


async def test_page_by_id_and_missing(client: Client, headers: dict[str, str]) -> None:
    """A page is served by id (with storage body on request); a missing one is the v2 404."""
    resp = await client.get(f"{_WIKI}/pages/65538?body-format=storage", headers=headers)
    page = await resp.json()
    assert resp.status == 200
    assert (page["id"], page["title"], page["parentId"]) == ("65538", "Onboarding guide", "65537")
    assert page["body"]["storage"]["representation"] == "storage"
    assert page["body"]["storage"]["value"].startswith("<h1>Onboarding guide</h1>")
    resp = await client.get(f"{_WIKI}/pages/1", headers=headers)
    assert resp.status == 404
    assert await resp.json() == {
        "errors": [{"status": 404, "code": "NOT_FOUND", "title": "Not Found", "detail": None}]
    }


async def test_unknown_confluence_path(client: Client, headers: dict[str, str]) -> None:
    """Paths the emulator does not serve are the v2 404 envelope."""
    for path in ("wiki/api/v2/blogposts", "rest/api/space"):
        resp = await client.get(f"/ex/confluence/{SITE_A}/{path}", headers=headers)
        assert resp.status == 404
        assert (await resp.json())["errors"][0]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    "scope", ["read:confluence-content.all", "read:page:confluence read:space:confluence"]
)
async def test_alternative_read_scopes(client: Client, scope: str) -> None:
    """Classic and granular read scopes both open spaces and pages."""
    headers = bearer((await login(client, scope=scope))["access_token"])
    assert (await client.get(f"{_WIKI}/spaces", headers=headers)).status == 200
    assert (await client.get(f"{_WIKI}/pages", headers=headers)).status == 200


async def test_confluence_scope_mismatch(client: Client) -> None:
    """A token with only Jira scopes gets the gateway's scope mismatch on Confluence."""
    headers = bearer((await login(client, scope="read:jira-work"))["access_token"])
    resp = await client.get(f"{_WIKI}/pages", headers=headers)
    assert resp.status == 401
    assert await resp.json() == {"code": 401, "message": "Unauthorized; scope does not match"}
