"""`python -m sidecar.emulator`: run the emulator standalone on a local port."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Sequence

from aiohttp import web

from .config import EmulatorConfig
from .emulator import Emulator

__all__ = ["main", "parse_args"]


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        prog="python -m sidecar.emulator",
        description="Emulate auth.atlassian.com and api.atlassian.com in memory.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=9000, help="port to bind (default 9000)")
    parser.add_argument("--client-id", required=True, help="the 3LO app's client id")
    parser.add_argument("--client-secret", required=True, help="the 3LO app's client secret")
    parser.add_argument(
        "--redirect-uri",
        action="append",
        default=[],
        help="a registered callback URL (repeatable; none registered: any URL is accepted)",
    )
    parser.add_argument("--access-token-ttl", type=float, default=3600.0, help="seconds")
    parser.add_argument("--reuse-window", type=float, default=600.0, help="seconds")
    parser.add_argument(
        "--rate-limit", type=float, default=None, help="requests per second per access token"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Run the emulator until interrupted."""
    args = parse_args(argv)
    config = EmulatorConfig(
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uris=tuple(args.redirect_uri),
        access_token_ttl=args.access_token_ttl,
        reuse_window=args.reuse_window,
        rate_limit_per_second=args.rate_limit,
    )
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    web.run_app(Emulator(config).app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
