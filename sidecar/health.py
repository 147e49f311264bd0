"""Liveness, readiness and the metrics endpoint."""

from __future__ import annotations

import asyncio

from aiohttp import web

from sidecar.errors import StoreUnavailable
from sidecar.keys import METRICS, STORE
from sidecar.responses import json_response

__all__ = ["READY_TIMEOUT", "livez", "metrics_view", "readyz"]

# Probes time out in about a second; a store slower than that is not ready.
READY_TIMEOUT = 1.0


async def livez(_request: web.Request) -> web.StreamResponse:
    """The process answers."""
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    """The session store answers; otherwise 503 so the replica leaves the Service."""
    try:
        async with asyncio.timeout(READY_TIMEOUT):
            await request.app[STORE].ping()
    except (StoreUnavailable, TimeoutError):
        return json_response({"status": "unavailable", "store": "unreachable"}, status=503)
    return json_response({"status": "ok", "store": "ok"})


async def metrics_view(request: web.Request) -> web.StreamResponse:
    """Prometheus text exposition."""
    return web.Response(
        body=request.app[METRICS].render(),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )
