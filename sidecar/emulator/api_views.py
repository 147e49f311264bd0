"""The emulated api.atlassian.com: Bearer checks, accessible-resources, /me, `/ex/{product}/...`.

Every request here is recorded in `Emulator.api_requests` by `record_api_requests`.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler
from multidict import CIMultiDict

from . import confluence_views, jira_views
from .config import Site
from .gateway import ApiCall, Route, find_route, json_response, scope_mismatch, unauthorized
from .keys import EMULATOR_KEY
from .records import ApiRequest
from .scopes import PRODUCTS, READ_ME, has_any, product_scopes
from .state import AccessToken

__all__ = ["accessible_resources", "bearer_token", "ex_product", "me", "record_api_requests"]


@dataclass(frozen=True)
class _Product:
    routes: tuple[Route, ...]
    not_found: Callable[[], web.Response]
    method_not_allowed: Callable[[], web.Response]
    rate_reason: str


_PRODUCTS = {
    "jira": _Product(
        jira_views.ROUTES,
        jira_views.not_found,
        jira_views.method_not_allowed,
        "jira-burst-based",
    ),
    "confluence": _Product(
        confluence_views.ROUTES,
        confluence_views.not_found,
        confluence_views.method_not_allowed,
        "confluence-quota-global-based",
    ),
}
_API_PATHS = ("/me", "/oauth/token/accessible-resources")


def bearer_token(request: web.Request) -> str | None:
    """Return the Bearer token of a request, if it carries one."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _authenticate(request: web.Request) -> AccessToken | None:
    return request.app[EMULATOR_KEY].state.access_token(bearer_token(request))


async def accessible_resources(request: web.Request) -> web.StreamResponse:
    """GET /oauth/token/accessible-resources: one entry per (site, product), in random order."""
    token = _authenticate(request)
    if token is None:
        return unauthorized()
    resources = [
        {
            "id": site.cloud_id,
            "name": site.name,
            "url": site.url,
            "scopes": scopes,
            "avatarUrl": site.avatar_url,
        }
        for site in request.app[EMULATOR_KEY].config.sites
        for product in PRODUCTS
        if product in site.products and (scopes := product_scopes(token.scopes, product))
    ]
    # Atlassian gives no order; shuffling keeps clients from relying on one.
    secrets.SystemRandom().shuffle(resources)
    return json_response(resources)


async def me(request: web.Request) -> web.StreamResponse:
    """GET /me: the User Identity API (needs read:me)."""
    token = _authenticate(request)
    if token is None:
        return unauthorized()
    if not has_any(token.scopes, READ_ME):
        return scope_mismatch()
    user = request.app[EMULATOR_KEY].config.user(token.account_id)
    if user is None:  # the account was removed from the config after the grant
        return unauthorized()
    return json_response(
        {
            "account_type": "atlassian",
            "account_id": user.account_id,
            "email": user.email,
            "name": user.name,
            "picture": user.picture,
            "account_status": "active",
            "nickname": user.nickname,
            "zoneinfo": user.zoneinfo,
            "locale": user.locale,
            "extended_profile": {"job_title": "Engineer", "organization": user.email},
        }
    )


def _rate_limited(request: web.Request, token: str, reason: str) -> web.Response | None:
    """Count the request against the token's burst budget; the 429 answer when over it."""
    emulator = request.app[EMULATOR_KEY]
    if emulator.limiter is None:
        return None
    decision = emulator.limiter.hit(token)
    if decision.allowed:
        return None
    headers = {
        "Retry-After": str(decision.retry_after(emulator.config.clock())),
        "X-RateLimit-Limit": str(decision.limit),
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": decision.reset_iso(),
        "RateLimit-Reason": reason,
    }
    return json_response({"errorMessages": ["Rate limit exceeded."]}, 429, headers)


def _target(request: web.Request) -> tuple[_Product, Site] | web.Response:
    """Resolve `/ex/{product}/{cloudId}`: the product's API and a site that has it, else 404."""
    name, cloud_id = request.match_info["product"], request.match_info["cloud_id"]
    product = _PRODUCTS.get(name)
    if product is None:
        return json_response({"code": 404, "message": "Not Found"}, 404)
    sites = request.app[EMULATOR_KEY].config.sites
    site = next((s for s in sites if s.cloud_id == cloud_id and name in s.products), None)
    if site is None:
        return json_response({"errorMessages": ["Site not found"]}, 404)
    return product, site


async def ex_product(request: web.Request) -> web.StreamResponse:
    """ANY /ex/{product}/{cloudId}/{path}: auth, burst limit, site, route and scope checks."""
    token = _authenticate(request)
    if token is None:
        return unauthorized()
    target = _target(request)
    if isinstance(target, web.Response):
        return target
    product, site = target
    limited = _rate_limited(request, token.token, product.rate_reason)
    if limited is not None:
        return limited
    found = find_route(product.routes, request.method, request.match_info["path"])
    if isinstance(found, int):
        return product.method_not_allowed() if found == 405 else product.not_found()
    route, match = found
    if not has_any(token.scopes, route.scopes):
        return scope_mismatch()
    return await route.handler(ApiCall(request, request.app[EMULATOR_KEY], site, token, match))


def _is_api_path(path: str) -> bool:
    return path.startswith("/ex/") or path in _API_PATHS


@web.middleware
async def record_api_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Record every gateway request (method, raw path, headers, token, status) on the Emulator."""
    if not _is_api_path(request.path):
        return await handler(request)
    body_length = len(await request.read())
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        _record(request, exc.status, body_length)
        raise
    _record(request, response.status, body_length)
    return response


def _record(request: web.Request, status: int, body_length: int) -> None:
    emulator = request.app[EMULATOR_KEY]
    emulator.api_requests.append(
        ApiRequest(
            method=request.method,
            raw_path=request.raw_path,
            headers=CIMultiDict(request.headers),
            token=bearer_token(request),
            status=status,
            body_length=body_length,
            at=emulator.config.clock(),
        )
    )
