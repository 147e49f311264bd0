"""Confluence REST v2 endpoints under `/ex/confluence/{cloudId}/wiki/api/v2/`: spaces and pages."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any, TypeVar
from urllib.parse import urlencode

from aiohttp import web

from .confluence import ConfluenceSite
from .gateway import ApiCall, Handler, Route, json_response
from .paging import decode_cursor, page
from .scopes import CONFLUENCE_PAGE_READ, CONFLUENCE_SPACE_READ

__all__ = ["ROUTES", "confluence_error", "method_not_allowed", "not_found"]

T = TypeVar("T")
_DEFAULT_LIMIT = 25
_MAX_LIMIT = 250
_TITLES = {400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
_CODES = {400: "INVALID_REQUEST_PARAMETER", 404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}


def confluence_error(status: int, detail: str | None = None) -> web.Response:
    """Return Confluence v2's error envelope."""
    error = {"status": status, "code": _CODES[status], "title": _TITLES[status], "detail": detail}
    return json_response({"errors": [error]}, status=status)


def not_found() -> web.Response:
    """Confluence's answer to a path it does not serve (or an object that is not there)."""
    return confluence_error(404)


def method_not_allowed() -> web.Response:
    """Confluence's answer to a known path with the wrong method."""
    return confluence_error(405)


def _site(call: ApiCall) -> ConfluenceSite:
    return call.emulator.confluence[call.site.cloud_id]


def _paginated(
    call: ApiCall, items: Sequence[T], render: Callable[[T], dict[str, Any]]
) -> web.Response:
    """Answer one cursor page with `_links.next` and the matching `Link` header."""
    query = call.request.query
    try:
        limit = int(query.get("limit", _DEFAULT_LIMIT))
    except ValueError:
        limit = 0
    cursor = query.get("cursor")
    offset = decode_cursor(cursor) if cursor else 0
    if not 1 <= limit <= _MAX_LIMIT:
        return confluence_error(400, f"limit must be between 1 and {_MAX_LIMIT}")
    if offset is None:
        return confluence_error(400, "Invalid cursor")
    chunk, next_cursor = page(items, offset, limit)
    site = _site(call)
    links: dict[str, str] = {"base": site.base}
    headers: dict[str, str] = {}
    if next_cursor is not None:
        kept = [(k, v) for k, v in query.items() if k not in ("limit", "cursor")]
        path = call.request.path.split("/wiki/", 1)[1]
        links["next"] = f"/wiki/{path}?" + urlencode(
            [*kept, ("limit", str(limit)), ("cursor", next_cursor)]
        )
        headers["Link"] = f'<{links["next"]}>; rel="next", <{site.base}>; rel="base"'
    return json_response(
        {"results": [render(item) for item in chunk], "_links": links}, headers=headers
    )


def _id_filter(call: ApiCall, name: str) -> set[str]:
    return {v for raw in call.request.query.getall(name, []) for v in raw.split(",") if v}


async def list_spaces(call: ApiCall) -> web.StreamResponse:
    """GET wiki/api/v2/spaces (filters: ids, keys)."""
    site = _site(call)
    ids, keys = _id_filter(call, "ids"), _id_filter(call, "keys")
    spaces = [s for s in site.spaces if (not ids or s.id in ids) and (not keys or s.key in keys)]
    return _paginated(call, spaces, site.space_json)


async def list_pages(call: ApiCall) -> web.StreamResponse:
    """GET wiki/api/v2/pages (filters: space-id, title; body-format=storage)."""
    site = _site(call)
    space_ids = _id_filter(call, "space-id")
    title = call.request.query.get("title")
    pages = [
        p
        for p in site.pages
        if (not space_ids or p.space.id in space_ids) and (title is None or p.title == title)
    ]
    body_format = call.request.query.get("body-format")
    return _paginated(call, pages, lambda p: site.page_json(p, body_format))


async def get_page(call: ApiCall) -> web.StreamResponse:
    """GET wiki/api/v2/pages/{id}."""
    site = _site(call)
    found = site.page(call.match["page"])
    if found is None:
        return not_found()
    return json_response(site.page_json(found, call.request.query.get("body-format")))


def _route(method: str, path: str, scopes: frozenset[str], handler: Handler) -> Route:
    return Route(method, re.compile(path), scopes, handler)


ROUTES: tuple[Route, ...] = (
    _route("GET", r"wiki/api/v2/spaces", CONFLUENCE_SPACE_READ, list_spaces),
    _route("GET", r"wiki/api/v2/pages", CONFLUENCE_PAGE_READ, list_pages),
    _route("GET", r"wiki/api/v2/pages/(?P<page>[^/]+)", CONFLUENCE_PAGE_READ, get_page),
)
