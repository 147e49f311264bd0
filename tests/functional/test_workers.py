"""``SIDECAR_WORKERS=2``: a supervisor with two worker processes sharing the public port, their
metrics summed on the metrics port, and a clean stop on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

import aiohttp
import pytest

from ..conftest import free_port
from ..harness import CLIENT_ID, CLIENT_SECRET, SECRET_KEY

GRACE = 5.0
REQUESTS = 20


def children(pid: int) -> list[int]:
    """The pids whose parent is ``pid``."""
    found = subprocess.run(
        ["pgrep", "-P", str(pid)], capture_output=True, text=True, check=False, timeout=10
    )
    return sorted(int(line) for line in found.stdout.split())


def start(env: dict[str, str], output: IO[bytes]) -> subprocess.Popen[bytes]:
    """``python -m sidecar serve`` (the supervisor) with ``env``, output to ``output``."""
    return subprocess.Popen(
        [sys.executable, "-m", "sidecar", "serve"], env=env, stdout=output, stderr=subprocess.STDOUT
    )


def alive(pid: int) -> bool:
    return (
        Path(f"/proc/{pid}").exists()
        and "zombie" not in Path(f"/proc/{pid}/status").read_text(encoding="utf-8").lower()
    )


async def test_two_workers_share_the_port_and_sum_their_metrics(
    redis_url: str, tmp_path: Path
) -> None:
    """Two workers answer /livez; /metrics on the supervisor sums them; SIGTERM exits 0."""
    port, metrics_port = free_port(), free_port()
    log_path = tmp_path / "supervisor.log"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "SIDECAR_CLIENT_ID": CLIENT_ID,
        "SIDECAR_CLIENT_SECRET": CLIENT_SECRET,
        "SIDECAR_SECRET_KEYS": SECRET_KEY,
        "SIDECAR_REDIS_URL": redis_url,
        "SIDECAR_WORKERS": "2",
        "SIDECAR_LISTEN": f"127.0.0.1:{port}",
        "SIDECAR_METRICS_LISTEN": f"127.0.0.1:{metrics_port}",
        "SIDECAR_SHUTDOWN_TIMEOUT": str(GRACE),
        "SIDECAR_LOG_LEVEL": "info",
    }
    with log_path.open("wb") as output:
        supervisor = start(env, output)
        workers: list[int] = []
        try:
            # Ready when both workers have logged that they listen (no request may be
            # spent on polling: the count below must be exactly ours).
            for _ in range(300):
                if log_path.read_text().count('"event": "listening"') == 2:
                    break
                assert supervisor.poll() is None, log_path.read_text()[-2000:]
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"workers did not start: {log_path.read_text()[-2000:]}")
            workers = children(supervisor.pid)
            assert len(workers) == 2
            assert all(alive(pid) for pid in workers)

            statuses = []
            for _ in range(REQUESTS):  # a new connection each: SO_REUSEPORT spreads them
                async with (
                    aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http,
                    http.get(f"http://127.0.0.1:{port}/livez") as resp,
                ):
                    statuses.append(resp.status)
                    await resp.read()
            assert statuses == [200] * REQUESTS

            async with (
                aiohttp.ClientSession() as http,
                http.get(f"http://127.0.0.1:{metrics_port}/metrics") as resp,
            ):
                assert resp.status == 200
                metrics = await resp.text()
            line = 'sidecar_http_requests_total{method="GET",route="health",status="200"} 20.0'
            assert line in metrics.splitlines()

            supervisor.send_signal(signal.SIGTERM)
            code = await asyncio.get_running_loop().run_in_executor(None, supervisor.wait, GRACE)
            assert code == 0
            assert not [pid for pid in workers if alive(pid)]
        finally:
            if supervisor.poll() is None:
                supervisor.kill()
                supervisor.wait(10)
            for pid in workers:  # never leave an orphaned worker behind a failed test
                if alive(pid):
                    os.kill(pid, signal.SIGKILL)
    log = log_path.read_text()
    assert log.count('"event": "stopped"') == 3  # two workers and the supervisor
    assert "Traceback" not in log
    assert CLIENT_SECRET not in log
