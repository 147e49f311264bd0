"""Jira REST v3 through the emulated gateway: myself, search, issues, projects, errors."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import SITE_A, SITE_B, Client, bearer, login

_JIRA_A = f"/ex/jira/{SITE_A}/rest/api/3"
_JIRA_B = f"/ex/jira/{SITE_B}/rest/api/3"
_SCOPE_MISMATCH = {"code": 401, "message": "Unauthorized; scope does not match"}


@pytest.fixture
async def headers(client: Client) -> dict[str, str]:
    return bearer((await login(client))["access_token"])


async def test_myself(client: Client, headers: dict[str, str]) -> None:
    """myself describes the token's user with site-URL links."""
    resp = await client.get(f"{_JIRA_A}/myself", headers=headers)
    body = await resp.json()
    assert resp.status == 200
    assert body["accountId"] == "5b10ac8d82e05b22cc7d4ef5"
    assert body["displayName"] == "Mia Krystof"
    assert body["emailAddress"] == "mia@example.com"
    assert body["self"] == (
        "https://acme.atlassian.net/rest/api/3/user?accountId=5b10ac8d82e05b22cc7d4ef5"
    )


async def test_myself_accepts_read_jira_user_only(client: Client) -> None:
    """myself works with read:jira-user alone; other reads need read:jira-work."""
    headers = bearer((await login(client, scope="read:jira-user"))["access_token"])
    assert (await client.get(f"{_JIRA_A}/myself", headers=headers)).status == 200
    resp = await client.get(f"{_JIRA_A}/project", headers=headers)
    assert resp.status == 401
    assert await resp.json() == _SCOPE_MISMATCH


async def test_search_jql_get_and_post(client: Client, headers: dict[str, str]) -> None:
    """search/jql filters by project and returns issues with the asked-for fields."""
    resp = await client.get(
        f"{_JIRA_A}/search/jql",
        params={"jql": "project = ACME ORDER BY created DESC", "fields": "summary,status"},
        headers=headers,
    )
    body = await resp.json()
    assert resp.status == 200
    assert body["isLast"] is True
    assert "nextPageToken" not in body
    assert [i["key"] for i in body["issues"]] == ["ACME-1", "ACME-2", "ACME-3"]
    first = body["issues"][0]
    assert first["self"] == f"https://acme.atlassian.net/rest/api/3/issue/{first['id']}"
    assert set(first["fields"]) == {"summary", "status"}
    assert first["fields"]["summary"] == "Set up the CI pipeline"
    assert first["fields"]["status"]["statusCategory"]["key"] == "done"
    resp = await client.post(
        f"{_JIRA_B}/search/jql", json={"jql": "project = BETA", "fields": ["*all"]}, headers=headers
    )
    body = await resp.json()
    assert [i["key"] for i in body["issues"]] == ["BETA-1", "BETA-2"]
    assert body["issues"][1]["fields"]["project"]["key"] == "BETA"


async def test_search_jql_pagination_and_default_fields(
    client: Client, headers: dict[str, str]
) -> None:
    """nextPageToken pages through results; without fields only ids come back."""
    seen: list[dict[str, Any]] = []
    token: str | None = None
    for _ in range(5):
        payload: dict[str, Any] = {"jql": "", "maxResults": 3}
        if token:
            payload["nextPageToken"] = token
        body = await (
            await client.post(f"{_JIRA_A}/search/jql", json=payload, headers=headers)
        ).json()
        seen.extend(body["issues"])
        token = body.get("nextPageToken")
        if body["isLast"]:
            break
    assert token is None
    assert seen == [{"id": "10001"}, {"id": "10002"}, {"id": "10003"}, {"id": "10004"}]


async def test_search_jql_unknown_project(client: Client, headers: dict[str, str]) -> None:
    """An unknown project in JQL is a 400 in Jira's envelope."""
    resp = await client.get(
        f"{_JIRA_A}/search/jql", params={"jql": "project = NOPE"}, headers=headers
    )
    assert resp.status == 400
    assert await resp.json() == {
        "errorMessages": ["The value 'NOPE' does not exist for the field 'project'."],
        "errors": {},
    }


async def test_get_issue_by_key_and_id(client: Client, headers: dict[str, str]) -> None:
    """An issue is found by key or id; a missing one is Jira's 404 envelope."""
    by_key = await (await client.get(f"{_JIRA_A}/issue/ACME-2", headers=headers)).json()
    by_id = await (await client.get(f"{_JIRA_A}/issue/{by_key['id']}", headers=headers)).json()
    assert by_key == by_id
    assert by_key["fields"]["summary"] == "Login page shows a blank screen in Safari"
    assert by_key["fields"]["reporter"]["accountId"] == "5b10ac8d82e05b22cc7d4ef5"
    resp = await client.get(f"{_JIRA_A}/issue/ACME-99", headers=headers)
    assert resp.status == 404
    assert await resp.json() == {
        "errorMessages": ["Issue does not exist or you do not have permission to see it."],
        "errors": {},
    }


async def test_create_issue(client: Client, headers: dict[str, str]) -> None:
    """POST issue creates the next key of the project and is then readable and searchable."""
    resp = await client.post(
        f"{_JIRA_A}/issue",
        json={
            "fields": {
                "project": {"key": "ACME"},
                "summary": "New bug",
                "issuetype": {"name": "Bug"},
            }
        },
        headers=headers,
    )
    created = await resp.json()
    assert resp.status == 201
    assert created["key"] == "ACME-4"
    assert created["self"] == f"https://acme.atlassian.net/rest/api/3/issue/{created['id']}"
    issue = await (await client.get(f"{_JIRA_A}/issue/ACME-4", headers=headers)).json()
    assert issue["fields"]["summary"] == "New bug"
    assert issue["fields"]["issuetype"]["name"] == "Bug"


async def test_create_issue_validation(client: Client, headers: dict[str, str]) -> None:
    """Missing summary and unknown project are reported per field."""
    resp = await client.post(
        f"{_JIRA_A}/issue", json={"fields": {"project": {"key": "NOPE"}}}, headers=headers
    )
    assert resp.status == 400
    assert await resp.json() == {
        "errorMessages": [],
        "errors": {
            "summary": "You must specify a summary of the issue.",
            "project": "Specify a valid project ID or key",
        },
    }


async def test_create_issue_needs_write_scope(client: Client) -> None:
    """Creating without write:jira-work is a scope mismatch."""
    headers = bearer((await login(client, scope="read:jira-work"))["access_token"])
    resp = await client.post(
        f"{_JIRA_A}/issue",
        json={"fields": {"project": {"key": "ACME"}, "summary": "x"}},
        headers=headers,
    )
    assert resp.status == 401
    assert await resp.json() == _SCOPE_MISMATCH


async def test_projects(client: Client, headers: dict[str, str]) -> None:
    """project lists every project; project/search pages them."""
    listed = await (await client.get(f"{_JIRA_A}/project", headers=headers)).json()
    assert [(p["key"], p["name"]) for p in listed] == [
        ("ACME", "Acme Platform"),
        ("OPS", "Operations"),
    ]
    assert listed[0]["self"] == "https://acme.atlassian.net/rest/api/3/project/10000"
    resp = await client.get(
        f"{_JIRA_A}/project/search", params={"maxResults": "1"}, headers=headers
    )
    page = await resp.json()
    assert (page["total"], page["isLast"], page["startAt"], page["maxResults"]) == (2, False, 0, 1)
    assert [p["key"] for p in page["values"]] == ["ACME"]
    assert page["nextPage"].endswith("project/search?maxResults=1&startAt=1")


async def test_unknown_path_and_method(client: Client, headers: dict[str, str]) -> None:
    """Unknown paths are 404 and wrong methods 405, in Jira's envelope."""
    resp = await client.get(f"{_JIRA_A}/nothing-here", headers=headers)
    assert resp.status == 404
    assert set(await resp.json()) == {"errorMessages", "errors"}
    resp = await client.delete(f"{_JIRA_A}/myself", headers=headers)
    assert resp.status == 405
    assert set(await resp.json()) == {"errorMessages", "errors"}


async def test_agile_needs_jira_software_scope(client: Client, headers: dict[str, str]) -> None:
    """Jira Software paths are a scope mismatch for classic Jira scopes."""
    resp = await client.get(f"/ex/jira/{SITE_A}/rest/agile/1.0/board", headers=headers)
    assert resp.status == 401
    assert await resp.json() == _SCOPE_MISMATCH
