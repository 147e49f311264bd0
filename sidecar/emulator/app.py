"""Wiring: build the aiohttp application that serves one Emulator (no logic lives here)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from .api_views import accessible_resources, ex_product, me, record_api_requests
from .auth_views import authorize, authorize_decision, token
from .keys import EMULATOR_KEY
from .mcp.auth import add_mcp_auth_routes
from .pages import index_page

if TYPE_CHECKING:
    from .emulator import Emulator

__all__ = ["create_emulator_app"]


async def _index(request: web.Request) -> web.StreamResponse:
    return web.Response(text=index_page(request.app[EMULATOR_KEY].config), content_type="text/html")


def create_emulator_app(emulator: Emulator) -> web.Application:
    """Return the application playing both auth.atlassian.com and api.atlassian.com."""
    app = web.Application(middlewares=[record_api_requests])
    app[EMULATOR_KEY] = emulator
    app.router.add_get("/", _index)
    app.router.add_get("/authorize", authorize)
    app.router.add_post("/authorize/decision", authorize_decision)
    app.router.add_post("/oauth/token", token)
    app.router.add_get("/oauth/token/accessible-resources", accessible_resources)
    app.router.add_get("/me", me)
    app.router.add_route("*", "/ex/{product}/{cloud_id}/{path:.*}", ex_product)
    add_mcp_auth_routes(app)
    return app
