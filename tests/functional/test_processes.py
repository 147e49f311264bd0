"""Real sidecar processes (``python -m sidecar serve``) on one Redis: exactly one refresh across
replicas under a storm, a slow token endpoint, and graceful shutdown on SIGTERM.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from pytest_aiohttp import AiohttpServer
from yarl import URL

from sidecar.emulator import Emulator, EmulatorConfig

from ..conftest import free_port
from ..harness import CLIENT_ID, CLIENT_SECRET, SECRET_KEY, SITE_A, Clock, Stack
from ..upstreams import Recorded, RecordingUpstream, Responder

MYSELF = f"/jira/{SITE_A}/rest/api/3/myself"
SKEW = 3597  # tokens live 3600 s at the emulator: stale for the sidecar 3 s after issue


class Process:
    """One ``python -m sidecar serve`` on a free port."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {
            "PATH": os.environ.get("PATH", ""),
            "SIDECAR_CLIENT_ID": CLIENT_ID,
            "SIDECAR_CLIENT_SECRET": CLIENT_SECRET,
            "SIDECAR_SECRET_KEYS": SECRET_KEY,
            "SIDECAR_LISTEN": f"127.0.0.1:{self.port}",
            "SIDECAR_METRICS_LISTEN": f"127.0.0.1:{free_port()}",
            "SIDECAR_LOG_LEVEL": "warning",
            **env,
        }
        self.log = log
        self._output = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "sidecar", "serve"],
            env=environ,
            stdout=self._output,
            stderr=subprocess.STDOUT,
        )

    async def ready(self) -> None:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                try:
                    async with http.get(f"{self.url}/livez") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        pytest.fail(f"sidecar process did not start: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(30)
        self._output.close()


@contextmanager
def processes(count: int, env: dict[str, str], tmp_path: Path) -> Iterator[list[Process]]:
    """``count`` sidecar processes, stopped at the end."""
    started = [Process(env, tmp_path / f"sidecar-{i}.log") for i in range(count)]
    try:
        yield started
    finally:
        for process in started:
            process.stop()


async def login_through(process: Process, stack: Stack) -> str:
    """Log in through a process with a cookie jar; the session cookie header value."""
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        async with browser.get(f"{process.url}/auth/login", allow_redirects=False) as resp:
            authorize = resp.headers["Location"]
        callback = await stack.consent(authorize)
        back = process.url + URL(callback).path_qs  # the public URL's host may differ
        async with browser.get(back, allow_redirects=False) as resp:
            assert resp.status == 302, await resp.text()
        cookie = next(c for c in jar if c.key == "sidecar_session")
        return f"sidecar_session={cookie.value}"


@pytest.fixture
async def real_emulator(aiohttp_server: AiohttpServer) -> tuple[Emulator, str]:
    """The emulator on the real clock (the processes use wall time)."""
    emulator = Emulator(EmulatorConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET))
    server = await aiohttp_server(emulator.app())
    return emulator, str(server.make_url("")).rstrip("/")


async def test_three_processes_storm_refreshes_exactly_once(
    real_emulator: tuple[Emulator, str], redis_url: str, tmp_path: Path
) -> None:
    """300 concurrent requests over 3 processes on an expired token: one token call; again with
    a token endpoint slower than the refresh lock's initial lifetime: still one.
    """
    emulator, url = real_emulator
    env = {
        "SIDECAR_AUTH_URL": url,
        "SIDECAR_API_URL": url,
        "SIDECAR_REDIS_URL": redis_url,
        "SIDECAR_REFRESH_SKEW": str(SKEW),
        "SIDECAR_PUBLIC_URL": "http://127.0.0.1:1",
    }
    with processes(3, env, tmp_path) as replicas:
        for replica in replicas:
            await replica.ready()
        async with Stack(emulator, url, Clock(), redis_url) as stack:
            cookie = await login_through(replicas[0], stack)
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0), cookie_jar=aiohttp.DummyCookieJar()
        ) as http:

            async def one(i: int) -> int:
                target = replicas[i % 3].url + MYSELF
                async with http.get(target, headers={"Cookie": cookie}) as resp:
                    await resp.read()
                    return resp.status

            for delay in (0.0, 7.0):  # the lock lives 5 s and is renewed while the call runs
                emulator.token_delay = delay
                await asyncio.sleep(3.5)  # the current token is now inside the skew
                before = len([c for c in emulator.token_calls if c.grant_type == "refresh_token"])
                statuses = await asyncio.gather(*(one(i) for i in range(300)))
                assert statuses == [200] * 300
                calls = [c for c in emulator.token_calls if c.grant_type == "refresh_token"]
                assert len(calls) - before == 1
                assert calls[-1].status == 200


@asynccontextmanager
async def replica_behind(
    emulator: tuple[Emulator, str],
    aiohttp_server: AiohttpServer,
    redis_url: str,
    tmp_path: Path,
    responder: Responder,
    **env: str,
) -> AsyncIterator[tuple[Process, str]]:
    """One signed-in `serve` process whose gateway answers with ``responder``: (it, cookie)."""
    gateway = RecordingUpstream(responder=responder)
    gateway_server = await aiohttp_server(gateway.app())
    url = emulator[1]
    base = {
        "SIDECAR_AUTH_URL": url,
        "SIDECAR_API_URL": str(gateway_server.make_url("")).rstrip("/"),
        "SIDECAR_REDIS_URL": redis_url,
    }
    with processes(1, {**base, **env}, tmp_path) as (replica,):
        await replica.ready()
        async with Stack(emulator[0], url, Clock(), redis_url) as stack:
            cookie = await login_through(replica, stack)
        yield replica, cookie


async def test_sigterm_finishes_in_flight_requests_and_exits_cleanly(
    real_emulator: tuple[Emulator, str],
    aiohttp_server: AiohttpServer,
    redis_url: str,
    tmp_path: Path,
) -> None:
    """SIGTERM: the slow request in flight completes, new connections are refused, exit 0."""

    async def slow(_r: web.Request, _rec: Recorded) -> web.StreamResponse:
        await asyncio.sleep(1.5)
        return web.json_response({"slow": True})

    async with (
        replica_behind(
            real_emulator,
            aiohttp_server,
            redis_url,
            tmp_path,
            slow,
            SIDECAR_SHUTDOWN_TIMEOUT="5",
            SIDECAR_LOG_LEVEL="info",
        ) as (replica, cookie),
        aiohttp.ClientSession() as http,
    ):
        slow_request = asyncio.create_task(
            http.get(replica.url + MYSELF, headers={"Cookie": cookie})
        )
        await asyncio.sleep(0.4)
        started = time.monotonic()
        replica.process.send_signal(signal.SIGTERM)
        await asyncio.sleep(0.3)
        with pytest.raises(aiohttp.ClientConnectionError):
            async with aiohttp.ClientSession() as fresh:
                await fresh.get(replica.url + "/livez")
        resp = await slow_request
        assert resp.status == 200
        assert await resp.json() == {"slow": True}
        code = await asyncio.get_running_loop().run_in_executor(None, replica.process.wait, 10)
        assert code == 0
        assert time.monotonic() - started < 5
    log = replica.log.read_text()
    assert '"event": "stopped"' in log
    assert "Traceback" not in log
    assert CLIENT_SECRET not in log


async def test_sigterm_cuts_a_long_stream_at_the_grace_period(
    real_emulator: tuple[Emulator, str],
    aiohttp_server: AiohttpServer,
    redis_url: str,
    tmp_path: Path,
) -> None:
    """A download longer than the grace period is cut when it ends; the process exits 0 in time."""

    async def endless(request: web.Request, _rec: Recorded) -> web.StreamResponse:
        out = web.StreamResponse()
        await out.prepare(request)
        for _ in range(600):
            await out.write(b"x" * 1024)
            await asyncio.sleep(0.1)
        return out

    async with (
        replica_behind(
            real_emulator,
            aiohttp_server,
            redis_url,
            tmp_path,
            endless,
            SIDECAR_SHUTDOWN_TIMEOUT="3",
        ) as (replica, cookie),
        aiohttp.ClientSession() as http,
    ):
        resp = await http.get(replica.url + MYSELF, headers={"Cookie": cookie})
        assert resp.status == 200
        await resp.content.readany()
        started = time.monotonic()
        replica.process.send_signal(signal.SIGTERM)
        code = await asyncio.get_running_loop().run_in_executor(None, replica.process.wait, 20)
        elapsed = time.monotonic() - started
        with pytest.raises(aiohttp.ClientPayloadError):
            await resp.read()  # the stream was cut, visibly (no proper end of body)
    assert code == 0
    assert elapsed < 3 + 2


async def test_a_second_sidecar_on_the_same_address_fails_instead_of_sharing_it(
    redis_url: str, tmp_path: Path
) -> None:
    """Only workers of one supervisor share a port: a stray second process exits non-zero."""
    with processes(1, {"SIDECAR_REDIS_URL": redis_url}, tmp_path) as (first,):
        await first.ready()
        second = Process(
            {"SIDECAR_REDIS_URL": redis_url, "SIDECAR_LISTEN": f"127.0.0.1:{first.port}"},
            tmp_path / "second.log",
        )
        try:
            code = await asyncio.get_running_loop().run_in_executor(None, second.process.wait, 20)
        finally:
            second.stop()
        assert code != 0
        assert "address already in use" in second.log.read_text().lower()
        await first.ready()
