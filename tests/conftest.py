"""Shared fixtures: a real redis-server per test session, the Atlassian emulator on loopback,
and sidecar applications wired to them (no mocks anywhere: real sockets, real Redis).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import structlog
from pytest_aiohttp import AiohttpServer

from sidecar.emulator import Emulator, EmulatorConfig

from .harness import CLIENT_ID, CLIENT_SECRET, Clock, Stack
from .upstreams import RawUpstream, RecordingUpstream


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """A redis-server process on a free loopback port, with its data in a temp dir."""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail("redis-server is not installed (apt-get install redis-server)")
        self.binary = binary
        self.workdir = workdir
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, *extra: str) -> None:
        self.process = subprocess.Popen(
            [
                self.binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_timeout=0.5).ping()
                return
            except redis.RedisError:
                time.sleep(0.05)
        pytest.fail("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


def _bus_safe_port() -> int:
    """A free port whose cluster-bus twin (port + 10000) is a valid, free port too."""
    while True:
        port = free_port()
        if port + 10000 > 65535:
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 10000))
            except OSError:
                continue
        return port


class RedisClusterServers:
    """Three redis-server masters joined into a Redis Cluster on loopback."""

    def __init__(self, workdir: Path) -> None:
        self.nodes = [RedisServer(workdir / f"n{i}", _bus_safe_port()) for i in range(3)]

    @property
    def url(self) -> str:
        return self.nodes[0].url

    def start(self) -> None:
        for node in self.nodes:
            node.workdir.mkdir(parents=True, exist_ok=True)
            node.start(
                "--cluster-enabled",
                "yes",
                "--cluster-config-file",
                "nodes.conf",
                "--cluster-node-timeout",
                "2000",
            )
        cli = shutil.which("redis-cli")
        if cli is None:
            pytest.fail("redis-cli is not installed (it comes with redis-server)")
        subprocess.run(
            [
                cli,
                "--cluster",
                "create",
                *(f"127.0.0.1:{n.port}" for n in self.nodes),
                "--cluster-replicas",
                "0",
                "--cluster-yes",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            info = redis.Redis(port=self.nodes[0].port).cluster("info")
            if info.get("cluster_state") == "ok":
                return
            time.sleep(0.1)
        pytest.fail("the Redis cluster did not become ready")

    def flush(self) -> None:
        for node in self.nodes:
            node.client().flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterServers]:
    cluster = RedisClusterServers(tmp_path_factory.mktemp("cluster"))
    cluster.start()
    yield cluster
    cluster.stop()


@pytest.fixture
def store_kind(request: pytest.FixtureRequest) -> str:
    """Which Redis a test runs on: "redis" unless a module parametrizes it (indirect)."""
    return str(getattr(request, "param", "redis"))


@pytest.fixture
def redis_url(request: pytest.FixtureRequest, store_kind: str) -> str:
    """A clean Redis (single server or cluster, per ``store_kind``) for this test."""
    if store_kind == "cluster":
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        cluster.flush()
        return cluster.url
    server: RedisServer = request.getfixturevalue("redis_server")
    server.client().flushall()
    return server.url


@pytest.fixture(autouse=True)
def _clean_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(clock: Clock) -> Emulator:
    return Emulator(EmulatorConfig(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, clock=clock))


@pytest.fixture
async def stack(
    aiohttp_server: AiohttpServer,
    emulator: Emulator,
    clock: Clock,
    redis_url: str,
    store_kind: str,
) -> AsyncIterator[Stack]:
    """The emulator on loopback plus a factory for sidecars sharing one real Redis."""
    server = await aiohttp_server(emulator.app())
    emulator_url = str(server.make_url("")).rstrip("/")
    cluster = store_kind == "cluster"
    async with Stack(emulator, emulator_url, clock, redis_url, cluster=cluster) as built:
        yield built


@pytest.fixture
async def gateway(aiohttp_server: AiohttpServer) -> tuple[RecordingUpstream, str]:
    """A recording stand-in for api.atlassian.com on loopback, and its base URL."""
    upstream = RecordingUpstream()
    server = await aiohttp_server(upstream.app())
    return upstream, str(server.make_url("")).rstrip("/")


@pytest.fixture
async def raw_upstream() -> AsyncIterator[RawUpstream]:
    """A socket server that answers with exact bytes."""
    upstream = RawUpstream()
    await upstream.start()
    yield upstream
    await upstream.close()
