"""The proxied routes: ``/jira/{site}/…`` and ``/wiki/{site}/…`` to the API gateway."""

from __future__ import annotations

import re
import time

import structlog
from aiohttp import web

from sidecar.auth.model import Site
from sidecar.auth.sessions import SessionContext, require_session
from sidecar.errors import ForbiddenSite
from sidecar.keys import (
    AUTH_CLIENT,
    CLOCK,
    FORWARDER,
    METRICS,
    PRELOADED_TOKENS,
    REFRESHER,
    SESSIONS,
    SETTINGS,
)
from sidecar.proxy.targets import Target, parse_target, upstream_url

__all__ = ["proxy_handler"]

log = structlog.get_logger("sidecar.proxy")

# A site missing from the session may have been granted since login; look again, but at most
# once a minute per session so a bad link cannot hammer accessible-resources.
SITES_RECHECK = 60.0


def _find(sites: tuple[Site, ...], product: str, site: str) -> Site | None:
    return next((s for s in sites if product in s.products and s.matches(site)), None)


async def _resolve_site(request: web.Request, ctx: SessionContext, target: Target) -> Site:
    found = _find(ctx.record.sites, target.product, target.site)
    now = request.app[CLOCK]()
    if found is None and now - ctx.record.sites_checked_at >= SITES_RECHECK:
        tokens = await request.app[REFRESHER].current(ctx.ref, ctx.ttl)
        sites = await request.app[AUTH_CLIENT].accessible_resources(tokens.access_token)
        record = ctx.record.with_sites(sites, now)
        await request.app[SESSIONS].save(ctx.ref, record)
        found = _find(sites, target.product, target.site)
    if found is None:
        request.app[METRICS].proxy_rejected.labels("forbidden_site").inc()
        raise ForbiddenSite
    return found


def _location_rewriter(api_url: str) -> re.Pattern[str]:
    return re.compile(
        rf"^(?:{re.escape(api_url)})?/ex/(jira|confluence)/([0-9a-fA-F-]{{36}})(/wiki)?(/.*)?$"
    )


async def proxy_handler(request: web.Request) -> web.StreamResponse:
    """Forward a Jira or Confluence request with the session's bearer token."""
    target = parse_target(request.raw_path)
    if target is None:
        raise web.HTTPNotFound
    app = request.app
    ctx = await require_session(request, app[SESSIONS])
    site = await _resolve_site(request, ctx, target)
    api_url = app[SETTINGS].oauth.api_url
    pattern = _location_rewriter(api_url)

    def rewrite(location: str) -> str:
        """Gateway locations back to sidecar paths; anything else (media hosts) unchanged."""
        match = pattern.match(location)
        if match is None:
            return location
        product, cloud_id, wiki, rest = match.groups()
        if product == "confluence" and wiki:
            return f"/wiki/{cloud_id}{rest or ''}"
        return f"/jira/{cloud_id}{rest or ''}" if product == "jira" else location

    async def token(rejected: str | None) -> str:
        preloaded = request.get(PRELOADED_TOKENS) if rejected is None else None
        tokens = await app[REFRESHER].current(
            ctx.ref, ctx.ttl, reject_access=rejected, preloaded=preloaded
        )
        return tokens.access_token

    started = time.perf_counter()
    response = await app[FORWARDER].forward(
        request,
        product=target.product,
        url=upstream_url(api_url, site.cloud_id, target),
        token=token,
        rewrite_location=rewrite,
    )
    log.debug(
        "proxied",
        product=target.product,
        upstream_ms=round((time.perf_counter() - started) * 1000, 2),
    )
    return response
