"""Shared pieces of the emulated API gateway: the per-request context, routes and error bodies."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from .config import Site
from .state import AccessToken

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = [
    "ApiCall",
    "Handler",
    "Route",
    "find_route",
    "json_response",
    "scope_mismatch",
    "unauthorized",
]


@dataclass(frozen=True)
class ApiCall:
    """An authenticated request that reached a product route of a granted site."""

    request: web.Request
    emulator: Emulator
    site: Site
    token: AccessToken
    match: re.Match[str]

    @property
    def now(self) -> float:
        """The emulator's clock."""
        return self.emulator.config.clock()

    async def json_body(self) -> Any:
        """Return the JSON request body, or None if it is absent or not JSON."""
        raw = await self.request.read()
        try:
            return json.loads(raw) if raw else None
        except ValueError:
            return None


Handler = Callable[[ApiCall], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Route:
    """One product endpoint: method ("*" for any), path regex below the cloudId, scopes (any of)."""

    method: str
    pattern: re.Pattern[str]
    scopes: frozenset[str]
    handler: Handler


def find_route(
    routes: Sequence[Route], method: str, path: str
) -> tuple[Route, re.Match[str]] | int:
    """Return the route and match for a request, or 404/405 when none fits."""
    status = 404
    for route in routes:
        match = route.pattern.fullmatch(path)
        if match is None:
            continue
        if route.method in ("*", method) or (method == "HEAD" and route.method == "GET"):
            return route, match
        status = 405
    return status


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    """Return a compact JSON answer with Content-Type application/json."""
    return web.json_response(body, status=status, headers=headers)


def unauthorized() -> web.Response:
    """The gateway's answer to a missing, unknown, expired or revoked token."""
    return json_response({"code": 401, "message": "Unauthorized"}, status=401)


def scope_mismatch() -> web.Response:
    """The gateway's answer to a valid token lacking the endpoint's scope (names no scope)."""
    return json_response({"code": 401, "message": "Unauthorized; scope does not match"}, status=401)
