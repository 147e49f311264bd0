"""Multi-process serving (``SIDECAR_WORKERS`` > 1): a supervisor starts N worker processes that
share the public port (SO_REUSEPORT), serves the metrics of all of them on the metrics port
(prometheus_client's multiprocess mode), forwards SIGTERM, and exits when they have.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Mapping

import structlog
from aiohttp import web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from sidecar.config import Settings

__all__ = ["WORKER_ENV", "supervise"]

log = structlog.get_logger("sidecar.workers")

WORKER_ENV = "SIDECAR_WORKER_PROCESS"
"""Set in a worker's environment: it serves the public port only, no metrics listener."""


async def _metrics(request: web.Request) -> web.StreamResponse:
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=request.app[_DIR])  # type: ignore[no-untyped-call]
    return web.Response(
        body=generate_latest(registry),
        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
    )


_DIR = web.AppKey("multiprocess_dir", str)


async def supervise(settings: Settings, environ: Mapping[str, str]) -> int:
    """Run ``settings.server.workers`` workers until SIGTERM/SIGINT; their worst exit code."""
    directory = tempfile.mkdtemp(prefix="sidecar-metrics-")
    env = {**environ, WORKER_ENV: "1", "PROMETHEUS_MULTIPROC_DIR": directory}
    workers = [
        await asyncio.create_subprocess_exec(sys.executable, "-m", "sidecar", "serve", env=env)
        for _ in range(settings.server.workers)
    ]
    app = web.Application()
    app[_DIR] = directory
    app.router.add_get("/metrics", _metrics)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    server = settings.server
    await web.TCPSite(runner, server.metrics_host, server.metrics_port, reuse_port=True).start()
    log.info("supervising", workers=len(workers))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    while not stop.is_set() and all(w.returncode is None for w in workers):
        try:
            await asyncio.wait_for(stop.wait(), timeout=0.5)
        except TimeoutError:
            continue
    for worker in workers:
        if worker.returncode is None:
            worker.send_signal(signal.SIGTERM)
    codes = [await w.wait() for w in workers]
    await runner.cleanup()
    shutil.rmtree(directory, ignore_errors=True)
    log.info("stopped", exit_codes=codes)
    return max(codes, default=0) if stop.is_set() else max(1, *codes)


def is_worker(environ: Mapping[str, str]) -> bool:
    """Whether this process is a worker started by ``supervise``."""
    return environ.get(WORKER_ENV) == "1" and bool(os.environ.get("PROMETHEUS_MULTIPROC_DIR"))
