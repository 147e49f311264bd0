"""Process edge: argv and environment in, a running server out (the only reader of os.environ)."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence

import structlog
from aiohttp import web

from sidecar import __version__
from sidecar.app import Overrides, create_app, create_metrics_app
from sidecar.config import Settings, load_settings
from sidecar.errors import ConfigError
from sidecar.log import configure_logging
from sidecar.metrics import Metrics
from sidecar.server import SidecarRunner
from sidecar.workers import is_worker, supervise

__all__ = ["main", "serve"]

log = structlog.get_logger("sidecar.cli")


async def _start(
    app: web.Application, host: str, port: int, shutdown_timeout: float
) -> web.AppRunner:
    runner = SidecarRunner(
        app,
        handle_signals=False,
        access_log=None,
        shutdown_timeout=shutdown_timeout,
        handler_cancellation=True,
    )
    await runner.setup()
    # Only workers of one supervisor share a port; a second sidecar started by mistake on the
    # same address must fail ("address in use"), not silently take half the traffic.
    await web.TCPSite(runner, host, port, reuse_port=is_worker(os.environ)).start()
    return runner


async def serve(
    settings: Settings,
    *,
    extra: Sequence[web.AppRunner] = (),
    customize: Callable[[web.Application], None] | None = None,
    metrics_listener: bool = True,
) -> None:
    """Run the public and metrics listeners until SIGTERM/SIGINT, then drain and stop."""
    metrics = Metrics()
    app = create_app(settings, overrides=Overrides(metrics=metrics))
    if customize is not None:
        customize(app)
    server = settings.server
    public = await _start(app, server.listen_host, server.listen_port, server.shutdown_timeout)
    private = (
        await _start(create_metrics_app(metrics), server.metrics_host, server.metrics_port, 5)
        if metrics_listener
        else None
    )
    log.info(
        "listening",
        version=__version__,
        listen=f"{server.listen_host}:{server.listen_port}",
        metrics=f"{server.metrics_host}:{server.metrics_port}",
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("shutting_down", grace_seconds=server.shutdown_timeout)
    await public.cleanup()
    if private is not None:
        await private.cleanup()
    for runner in extra:
        await runner.cleanup()
    log.info("stopped")


def _settings_or_exit(environ: Mapping[str, str]) -> Settings:
    try:
        return load_settings(environ)
    except ConfigError as exc:
        print(exc, file=sys.stderr)  # noqa: T201 - logging is not configured yet
        raise SystemExit(2) from exc


def main(argv: Sequence[str] | None = None) -> None:
    """``atlassian-sidecar [serve|dev|check-config]``."""
    parser = argparse.ArgumentParser(prog="atlassian-sidecar", description=__doc__)
    parser.add_argument("--version", action="version", version=__version__)
    sub = parser.add_subparsers(dest="command")
    sub.add_parser("serve", help="run against Atlassian (the default)")
    dev = sub.add_parser("dev", help="run with the built-in Atlassian emulator, no app needed")
    dev.add_argument("--emulator-port", type=int, default=8081)
    dev.add_argument(
        "--emulator-host",
        default="127.0.0.1",
        help="interface the emulator binds (0.0.0.0 inside a container); browsers use localhost",
    )
    sub.add_parser("check-config", help="validate the environment and exit (2 on problems)")
    args = parser.parse_args(argv)
    # aiohttp-session 2.12 keeps its own state under string request keys; not ours to change.
    warnings.filterwarnings("ignore", category=web.NotAppKeyWarning, module="aiohttp_session")
    environ = dict(os.environ)
    if args.command == "dev":
        from sidecar.dev import dev_environment, run_dev  # noqa: PLC0415 - dev-only import

        settings = _settings_or_exit(dev_environment(environ, args.emulator_port))
        configure_logging(settings.log)
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(run_dev(settings, args.emulator_host, args.emulator_port))
        return
    settings = _settings_or_exit(environ)
    if args.command == "check-config":
        print("configuration ok")  # noqa: T201 - the command's output
        return
    configure_logging(settings.log)
    _use_uvloop()
    if settings.server.workers > 1 and not is_worker(environ):
        raise SystemExit(asyncio.run(supervise(settings, environ)))
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(settings, metrics_listener=not is_worker(environ)))


def _use_uvloop() -> None:
    with contextlib.suppress(ImportError):
        import uvloop  # noqa: PLC0415 - optional speed-up

        asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
