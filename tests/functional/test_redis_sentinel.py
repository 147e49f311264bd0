"""Redis Sentinel: a master, a replica and three sentinels on loopback; a failover under load
keeps sessions, and writes land on the new master (field case F46).
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from pytest_aiohttp import AiohttpServer

from sidecar.emulator import Emulator

from ..conftest import RedisServer, free_port
from ..harness import Clock, Stack


class SentinelGroup:
    """A master, one replica and three sentinels watching them as ``mymaster``."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.master = RedisServer(workdir / "m")
        self.replica = RedisServer(workdir / "r")
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/mymaster"

    def start(self) -> None:
        for server in (self.master, self.replica):
            server.workdir.mkdir(parents=True, exist_ok=True)
        self.master.start("--repl-diskless-sync-delay", "0")
        self.replica.start(
            "--replicaof", "127.0.0.1", str(self.master.port), "--repl-diskless-sync-delay", "0"
        )
        binary = shutil.which("redis-server") or "redis-server"
        for port in self.sentinel_ports:
            conf = self.workdir / f"sentinel-{port}.conf"
            conf.write_text(
                f"port {port}\nbind 127.0.0.1\ndir {self.workdir}\n"
                f"sentinel monitor mymaster 127.0.0.1 {self.master.port} 2\n"
                "sentinel down-after-milliseconds mymaster 1000\n"
                "sentinel failover-timeout mymaster 3000\n"
            )
            self.sentinels.append(
                subprocess.Popen(
                    [binary, str(conf), "--sentinel"],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                replicas = self.sentinel(0).sentinel_slaves("mymaster")
                others = self.sentinel(0).sentinel_sentinels("mymaster")
                link = self.replica.client().info("replication").get("master_link_status")
                if replicas and len(others) == 2 and link == "up":
                    return
            except redis.RedisError:
                pass
            time.sleep(0.2)
        pytest.fail("sentinels did not discover the replica and each other")

    def sentinel(self, index: int) -> Any:
        return redis.Redis(port=self.sentinel_ports[index], socket_timeout=1)

    def master_port(self) -> int:
        _host, port = self.sentinel(0).sentinel_get_master_addr_by_name("mymaster")
        return int(port)

    def stop(self) -> None:
        for process in self.sentinels:
            process.terminate()
            process.wait(10)
        self.replica.stop()
        self.master.stop()


@pytest.fixture
def sentinel_group(tmp_path: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(tmp_path)
    group.start()
    yield group
    group.stop()


@pytest.fixture
async def sentinel_stack(
    aiohttp_server: AiohttpServer, emulator: Emulator, clock: Clock, sentinel_group: SentinelGroup
) -> AsyncIterator[Stack]:
    server = await aiohttp_server(emulator.app())
    url = str(server.make_url("")).rstrip("/")
    async with Stack(emulator, url, clock, sentinel_group.url) as stack:
        yield stack


async def test_failover_under_load_keeps_sessions_and_moves_writes(
    sentinel_stack: Stack, sentinel_group: SentinelGroup
) -> None:
    """Only 503s during the switch; afterwards the old session works and new logins are
    written to the promoted replica, never to the demoted master (no lasting READONLY).
    """
    sidecar = await sentinel_stack.sidecar()
    assert (await sidecar.login()).status == 302
    cookie = sidecar.cookie()
    assert cookie is not None
    assert sentinel_group.master.client().wait(1, 2000) == 1  # the session is on the replica
    old_master = sentinel_group.master.port
    statuses: list[int] = []

    async def traffic() -> None:
        for _ in range(120):
            resp = await sidecar.get("/auth/session")
            statuses.append(resp.status)
            await asyncio.sleep(0.05)

    load = asyncio.create_task(traffic())
    await asyncio.sleep(0.3)
    assert sentinel_group.sentinel(0).execute_command("SENTINEL FAILOVER mymaster")
    for _ in range(100):
        if sentinel_group.master_port() != old_master:
            break
        await asyncio.sleep(0.1)
    assert sentinel_group.master_port() == sentinel_group.replica.port
    await load
    assert set(statuses) <= {200, 503}
    assert statuses[-10:] == [200] * 10
    other = await sentinel_stack.sidecar()
    assert (await other.login()).status == 302
    new_cookie = other.cookie()
    assert new_cookie is not None
    sid = new_cookie.partition(".")[0]
    assert sentinel_group.replica.client().exists(f"sc:{{{sid}}}:s") == 1
    assert sentinel_group.replica.client().info("replication")["role"] == "master"
    for _ in range(50):  # the demoted master becomes a replica of the new one
        if sentinel_group.master.client().info("replication")["role"] == "slave":
            break
        await asyncio.sleep(0.1)
    assert sentinel_group.master.client().info("replication")["role"] == "slave"
    # once demoted, the old master answers READONLY: the same replica's pooled connections
    # drop it and write to the promoted node
    assert (await sidecar.client.get("/auth/login", allow_redirects=False)).status == 302
    assert sentinel_group.replica.client().keys("sc:state:*")
    sidecar.use_cookie(cookie)
    assert (await sidecar.get("/auth/session")).status == 200
