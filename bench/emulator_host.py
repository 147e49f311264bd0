"""The Atlassian emulator with two bench knobs: a token-endpoint delay and a stats route.

``GET /_bench/stats`` answers how many refresh-token calls the sidecars made (probe calls,
whose refresh token is ``bench-probe``, are left out) so the refresh storm can count them.
"""

from __future__ import annotations

import argparse

from aiohttp import web

from sidecar.emulator import Emulator, EmulatorConfig

PROBE = "bench-probe"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--access-token-ttl", type=float, default=3600.0)
    parser.add_argument("--token-delay", type=float, default=0.0)
    args = parser.parse_args()
    emulator = Emulator(
        EmulatorConfig(
            client_id=args.client_id,
            client_secret=args.client_secret,
            access_token_ttl=args.access_token_ttl,
        )
    )
    emulator.token_delay = args.token_delay

    async def stats(_request: web.Request) -> web.Response:
        calls = [
            c
            for c in emulator.token_calls
            if c.grant_type == "refresh_token" and c.refresh_token != PROBE
        ]
        return web.json_response(
            {"refresh_calls": len(calls), "statuses": [c.status for c in calls]}
        )

    app = emulator.app()
    app.router.add_get("/_bench/stats", stats)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None)


if __name__ == "__main__":
    main()
