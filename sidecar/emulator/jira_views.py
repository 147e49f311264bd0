"""Jira REST v3 endpoints under `/ex/jira/{cloudId}/`: myself, search/jql, issue, project."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from .gateway import ApiCall, Handler, Route, json_response
from .jira import JiraSite, parse_jql
from .paging import decode_cursor, page
from .scopes import JIRA_READ, JIRA_USER_READ, JIRA_WRITE

__all__ = ["ROUTES", "jira_error", "method_not_allowed", "not_found"]

_MAX_RESULTS = 5000


def jira_error(
    status: int, messages: list[str], errors: dict[str, str] | None = None
) -> web.Response:
    """Return Jira's error envelope."""
    return json_response({"errorMessages": messages, "errors": errors or {}}, status=status)


def not_found() -> web.Response:
    """Jira's answer to a path it does not serve."""
    return jira_error(404, ["No API endpoint found for this path."])


def method_not_allowed() -> web.Response:
    """Jira's answer to a known path with the wrong method."""
    return jira_error(405, ["Method not allowed for this resource."])


def _site(call: ApiCall) -> JiraSite:
    return call.emulator.jira[call.site.cloud_id]


def _int(value: Any, default: int) -> int | None:
    if value is None:
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


async def myself(call: ApiCall) -> web.StreamResponse:
    """GET rest/api/3/myself: the token's user as this site knows them."""
    return json_response(_site(call).user_json())


def _requested_fields(raw: list[str] | None) -> set[str] | None:
    """Map Jira's `fields` parameter to a field set (None: all); absent means ids only."""
    if raw is None:
        return set()
    names = {name.strip() for item in raw for name in item.split(",") if name.strip()}
    return None if names & {"*all", "*navigable"} else names


async def search_jql(call: ApiCall) -> web.StreamResponse:
    """GET/POST rest/api/3/search/jql: token-paginated issue search."""
    query = call.request.query
    params: dict[str, Any]
    if call.request.method == "POST":
        body = await call.json_body()
        if not isinstance(body, dict):
            return jira_error(
                400, ["Invalid request payload. Refer to the REST API documentation."]
            )
        params = body
    else:
        params = {k: query.get(k) for k in ("jql", "maxResults", "nextPageToken")}
        params["fields"] = query.getall("fields", None)
    site = _site(call)
    found = parse_jql(str(params.get("jql") or ""), site)
    if isinstance(found, str):
        return jira_error(400, [found])
    limit = _int(params.get("maxResults"), 50)
    token = params.get("nextPageToken")
    offset = decode_cursor(str(token)) if token else 0
    if limit is None or limit < 1 or offset is None:
        return jira_error(400, ["Invalid maxResults or nextPageToken."])
    chunk, next_token = page(found, offset, min(limit, _MAX_RESULTS))
    fields_param = params.get("fields")
    fields = _requested_fields(fields_param if isinstance(fields_param, list) else None)
    issues = [site.issue_json(issue, fields) for issue in chunk]
    if fields == set():
        issues = [{"id": issue["id"]} for issue in issues]
    answer: dict[str, Any] = {"issues": issues, "isLast": next_token is None}
    if next_token is not None:
        answer["nextPageToken"] = next_token
    return json_response(answer)


async def get_issue(call: ApiCall) -> web.StreamResponse:
    """GET rest/api/3/issue/{issueIdOrKey}."""
    site = _site(call)
    issue = site.issue(call.match["issue"])
    if issue is None:
        return jira_error(404, ["Issue does not exist or you do not have permission to see it."])
    fields = _requested_fields(call.request.query.getall("fields", None) or ["*all"])
    return json_response(site.issue_json(issue, fields))


async def create_issue(call: ApiCall) -> web.StreamResponse:
    """POST rest/api/3/issue: validates summary and project, answers 201 {id, key, self}."""
    body = await call.json_body()
    fields = body.get("fields") if isinstance(body, dict) else None
    if not isinstance(fields, dict):
        return jira_error(400, ["Invalid request payload. Refer to the REST API documentation."])
    site = _site(call)
    errors: dict[str, str] = {}
    summary = fields.get("summary")
    if not isinstance(summary, str) or not summary.strip():
        errors["summary"] = "You must specify a summary of the issue."
    project_ref = fields.get("project")
    ref = project_ref.get("key") or project_ref.get("id") if isinstance(project_ref, dict) else None
    project = site.project(str(ref)) if ref else None
    if project is None:
        errors["project"] = "Specify a valid project ID or key"
    if errors or project is None or not isinstance(summary, str):
        return jira_error(400, [], errors)
    issuetype = fields.get("issuetype")
    kind = issuetype.get("name") if isinstance(issuetype, dict) else None
    issue = site.add_issue(
        project,
        summary,
        str(kind or "Task"),
        status="To Do",
        created=call.now,
        description=fields.get("description"),
    )
    return json_response(
        {"id": issue.id, "key": issue.key, "self": site.url(f"issue/{issue.id}")}, 201
    )


async def list_projects(call: ApiCall) -> web.StreamResponse:
    """GET rest/api/3/project: every project, unpaginated."""
    site = _site(call)
    return json_response([site.project_json(p) for p in site.projects])


async def search_projects(call: ApiCall) -> web.StreamResponse:
    """GET rest/api/3/project/search: offset-paginated projects."""
    site = _site(call)
    start = _int(call.request.query.get("startAt"), 0)
    limit = _int(call.request.query.get("maxResults"), 50)
    if start is None or limit is None or start < 0 or limit < 1:
        return jira_error(400, ["Invalid startAt or maxResults."])
    chunk = site.projects[start : start + limit]
    is_last = start + len(chunk) >= len(site.projects)
    answer: dict[str, Any] = {
        "self": site.url(f"project/search?maxResults={limit}&startAt={start}"),
        "maxResults": limit,
        "startAt": start,
        "total": len(site.projects),
        "isLast": is_last,
        "values": [site.project_json(p) for p in chunk],
    }
    if not is_last:
        answer["nextPage"] = site.url(f"project/search?maxResults={limit}&startAt={start + limit}")
    return json_response(answer)


async def agile_not_emulated(call: ApiCall) -> web.StreamResponse:
    """Jira Software (agile) paths: the scope check is real, the data is not emulated."""
    del call
    return not_found()


def _route(method: str, path: str, scopes: frozenset[str], handler: Handler) -> Route:
    return Route(method, re.compile(path), scopes, handler)


_API = r"rest/api/(?:2|3)/"
_AGILE_SCOPES = frozenset(
    {"read:board-scope:jira-software", "read:sprint:jira-software", "read:issue:jira-software"}
)

ROUTES: tuple[Route, ...] = (
    _route("GET", _API + "myself", JIRA_USER_READ, myself),
    _route("GET", _API + "search/jql", JIRA_READ, search_jql),
    _route("POST", _API + "search/jql", JIRA_READ, search_jql),
    _route("GET", _API + r"issue/(?P<issue>[^/]+)", JIRA_READ, get_issue),
    _route("POST", _API + "issue", JIRA_WRITE, create_issue),
    _route("GET", _API + "project", JIRA_READ, list_projects),
    _route("GET", _API + "project/search", JIRA_READ, search_projects),
    _route("*", r"rest/agile/1\.0/.*", _AGILE_SCOPES, agile_not_emulated),
)
