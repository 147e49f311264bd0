"""A bare aiohttp reverse proxy: the floor an aiohttp proxy can reach (no auth, no sessions).

``/jira/<cloudId>/<path>`` goes to ``<upstream>/ex/jira/<cloudId>/<path>`` through one shared
client session; bodies stream both ways; hop-by-hop headers are dropped. Nothing else.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import AsyncIterator

import aiohttp
from aiohttp import web
from yarl import URL

HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "te", "trailer", "transfer-encoding",
     "upgrade", "host", "proxy-authorization", "proxy-authenticate"}
)  # fmt: skip
CLIENT = web.AppKey("client", aiohttp.ClientSession)
UPSTREAM = web.AppKey("upstream", str)


async def handle(request: web.Request) -> web.StreamResponse:
    url = URL(request.app[UPSTREAM] + "/ex" + request.raw_path, encoded=True)
    headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
    data = request.content if request.body_exists else None
    async with request.app[CLIENT].request(
        request.method, url, headers=headers, data=data, allow_redirects=False
    ) as upstream:
        out = {k: v for k, v in upstream.headers.items() if k.lower() not in HOP}
        out.pop("Content-Length", None)
        response = web.StreamResponse(status=upstream.status, headers=out)
        if upstream.content_length is not None:
            response.content_length = upstream.content_length
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


def make_app(upstream: str) -> web.Application:
    app = web.Application(client_max_size=1 << 30)
    app[UPSTREAM] = upstream.rstrip("/")

    async def client(app: web.Application) -> AsyncIterator[None]:
        app[CLIENT] = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),
            auto_decompress=False,
            skip_auto_headers=("Accept-Encoding", "User-Agent"),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        yield
        await app[CLIENT].close()

    app.cleanup_ctx.append(client)
    app.router.add_route("*", "/jira/{tail:.*}", handle)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    with contextlib.suppress(ImportError):  # the same event loop the sidecar's serve picks
        import uvloop  # noqa: PLC0415 - optional, as in cli.py

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    web.run_app(make_app(args.upstream), host="127.0.0.1", port=args.port, access_log=None)


if __name__ == "__main__":
    main()
