"""The API gateway over HTTP: Bearer checks, accessible-resources, /me, rate limits, records."""

from __future__ import annotations

import dataclasses

from pytest_aiohttp import AiohttpClient

from sidecar.emulator import Emulator, EmulatorConfig

from .helpers import SITE_A, SITE_B, Client, FakeClock, bearer, login

_UNAUTHORIZED = {"code": 401, "message": "Unauthorized"}
_SCOPE_MISMATCH = {"code": 401, "message": "Unauthorized; scope does not match"}


async def test_missing_and_unknown_bearer_are_401(client: Client) -> None:
    """Every gateway route needs a live Bearer token."""
    paths = ("/me", "/oauth/token/accessible-resources", f"/ex/jira/{SITE_A}/rest/api/3/myself")
    for path in paths:
        for headers in ({}, bearer("nope"), {"Authorization": "Basic Zm9vOmJhcg=="}):
            resp = await client.get(path, headers=headers)
            assert resp.status == 401, path
            assert await resp.json() == _UNAUTHORIZED


async def test_accessible_resources_one_entry_per_product(client: Client) -> None:
    """A two-product site appears twice with the same id, each with its product's scopes."""
    tokens = await login(client)
    resp = await client.get(
        "/oauth/token/accessible-resources", headers=bearer(tokens["access_token"])
    )
    assert resp.status == 200
    assert resp.content_type == "application/json"
    entries = sorted(await resp.json(), key=lambda e: (e["id"], e["scopes"]))
    jira = ["read:jira-work", "read:jira-user", "write:jira-work"]
    assert [(e["id"], e["name"], e["url"], e["scopes"]) for e in entries] == [
        (SITE_A, "acme", "https://acme.atlassian.net", ["read:confluence-content.summary"]),
        (SITE_A, "acme", "https://acme.atlassian.net", jira),
        (SITE_B, "beta", "https://beta.atlassian.net", jira),
    ]
    assert all(e["avatarUrl"].startswith("https://") for e in entries)
    assert all(set(e) == {"id", "name", "url", "scopes", "avatarUrl"} for e in entries)


async def test_accessible_resources_only_products_with_scopes(client: Client) -> None:
    """A grant without Jira scopes lists only the Confluence entry."""
    tokens = await login(client, scope="read:confluence-content.all offline_access")
    resp = await client.get(
        "/oauth/token/accessible-resources", headers=bearer(tokens["access_token"])
    )
    assert await resp.json() == [
        {
            "id": SITE_A,
            "name": "acme",
            "url": "https://acme.atlassian.net",
            "scopes": ["read:confluence-content.all"],
            "avatarUrl": "https://site-admin-avatar-cdn.prod.public.atl-paas.net/avatars/240/flag.png",
        }
    ]


async def test_accessible_resources_order_is_shuffled(client: Client) -> None:
    """The order changes between calls, so clients cannot rely on it."""
    headers = bearer((await login(client))["access_token"])
    orders = set()
    for _ in range(40):
        entries = await (
            await client.get("/oauth/token/accessible-resources", headers=headers)
        ).json()
        orders.add(tuple((e["id"], tuple(e["scopes"])) for e in entries))
    assert len(orders) > 1


async def test_me_profile_and_scope(client: Client) -> None:
    """/me answers the documented profile with read:me, and a scope mismatch without it."""
    with_me = await login(client)
    resp = await client.get("/me", headers=bearer(with_me["access_token"]))
    assert resp.status == 200
    body = await resp.json()
    assert body["account_id"] == "5b10ac8d82e05b22cc7d4ef5"
    assert (body["name"], body["email"], body["nickname"]) == (
        "Mia Krystof",
        "mia@example.com",
        "mkrystof",
    )
    assert (body["account_type"], body["account_status"], body["locale"]) == (
        "atlassian",
        "active",
        "en-US",
    )
    assert body["picture"].startswith("https://")
    assert "zoneinfo" in body
    without = await login(client, scope="read:jira-work offline_access")
    resp = await client.get("/me", headers=bearer(without["access_token"]))
    assert resp.status == 401
    assert await resp.json() == _SCOPE_MISMATCH


async def test_unknown_site_or_product(client: Client) -> None:
    """A cloudId outside the grant, or without the product, is 404 Site not found."""
    headers = bearer((await login(client))["access_token"])
    unknown = "99999999-9999-4999-8999-999999999999"
    for path in (
        f"/ex/jira/{unknown}/rest/api/3/myself",
        f"/ex/confluence/{SITE_B}/wiki/api/v2/pages",
    ):
        resp = await client.get(path, headers=headers)
        assert resp.status == 404
        assert await resp.json() == {"errorMessages": ["Site not found"]}
    resp = await client.get(f"/ex/bitbucket/{SITE_A}/2.0/repositories", headers=headers)
    assert resp.status == 404


async def test_api_requests_recorded(client: Client, emulator: Emulator, clock: FakeClock) -> None:
    """Each gateway request is recorded with raw path and query, headers, token and status."""
    token = (await login(client))["access_token"]
    raw = f"/ex/jira/{SITE_A}/rest/api/3/search/jql?jql=project%20%3D%20ACME&fields=a+b&fields=c"
    resp = await client.get(raw, headers={**bearer(token), "X-Atlassian-Token": "no-check"})
    assert resp.status == 200
    await client.post(f"/ex/jira/{SITE_A}/rest/api/3/issue", headers=bearer(token), data=b"12345")
    await client.get("/me")
    get, post, anonymous = emulator.api_requests
    assert (get.method, get.raw_path, get.token, get.status, get.at) == (
        "GET",
        raw,
        token,
        200,
        clock(),
    )
    assert get.headers["X-Atlassian-Token"] == "no-check"
    assert (post.method, post.status, post.body_length) == ("POST", 400, 5)
    assert (anonymous.raw_path, anonymous.token, anonymous.status) == ("/me", None, 401)


async def test_rate_limit_429_headers(
    aiohttp_client: AiohttpClient, config: EmulatorConfig, clock: FakeClock
) -> None:
    """Over the per-token burst budget the gateway answers 429 with Atlassian's headers."""
    emulator = Emulator(dataclasses.replace(config, rate_limit_per_second=2))
    client = await aiohttp_client(emulator.app())
    headers = bearer((await login(client))["access_token"])
    jira = f"/ex/jira/{SITE_A}/rest/api/3/myself"
    wiki = f"/ex/confluence/{SITE_A}/wiki/api/v2/spaces"
    assert [(await client.get(jira, headers=headers)).status for _ in range(2)] == [200, 200]
    resp = await client.get(jira, headers=headers)
    assert resp.status == 429
    assert await resp.json() == {"errorMessages": ["Rate limit exceeded."]}
    assert resp.headers["Retry-After"] == "1"
    assert resp.headers["X-RateLimit-Limit"] == "2"
    assert resp.headers["X-RateLimit-Remaining"] == "0"
    assert resp.headers["RateLimit-Reason"] == "jira-burst-based"
    assert resp.headers["X-RateLimit-Reset"] == "2026-05-28T20:26Z"
    wiki_resp = await client.get(wiki, headers=headers)
    assert wiki_resp.status == 429
    assert wiki_resp.headers["RateLimit-Reason"] == "confluence-quota-global-based"
    assert [r.status for r in emulator.api_requests[-2:]] == [429, 429]
    clock.advance(1)
    assert (await client.get(wiki, headers=headers)).status == 200
