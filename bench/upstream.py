"""The Python half of the fast upstream: an SSE stream and an upload sink (nginx serves the rest).

``GET /ex/jira/<cloudId>/stream`` answers ``text/event-stream``: one event at once, then one every
``--interval`` seconds (random phase per stream), each carrying ``time.time_ns()`` of its send
so the client can measure relay latency. ``PUT|POST /ex/jira/<cloudId>/upload`` reads the whole
body and answers its size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import time

from aiohttp import web


def make_app(interval: float) -> web.Application:
    async def stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
        )
        await response.prepare(request)
        await response.write(f"event: open\ndata: {time.time_ns()}\n\n".encode())
        await asyncio.sleep(random.uniform(0, interval))
        # Bounded: a stream lives at most an hour even if nobody closes it.
        for _ in range(int(3600 / interval)):
            await response.write(f"data: {time.time_ns()}\n\n".encode())
            await asyncio.sleep(interval)
        return response

    async def upload(request: web.Request) -> web.Response:
        size = 0
        while chunk := await request.content.readany():
            size += len(chunk)
        return web.json_response({"bytes": size})

    app = web.Application()
    app.router.add_get("/ex/jira/{cloud}/stream", stream)
    app.router.add_route("PUT", "/ex/jira/{cloud}/upload", upload)
    app.router.add_route("POST", "/ex/jira/{cloud}/upload", upload)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--interval", type=float, default=2.0)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415 - optional, as in cli.py

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(make_app(args.interval), host="127.0.0.1", port=args.port, access_log=None)


if __name__ == "__main__":
    main()
