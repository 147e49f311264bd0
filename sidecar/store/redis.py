"""Redis store (plain, TLS, unix socket, Sentinel or Cluster) through ``redis.asyncio``.

Compare-and-set, lock renewal/release and the capped list are Lua scripts on one key each, so
they are atomic and work on Cluster. Every Redis or socket failure becomes StoreUnavailable and
is counted; the pool reconnects on its own when Redis returns.
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster
from redis.asyncio.retry import Retry
from redis.asyncio.sentinel import Sentinel
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisClusterException, RedisError

from sidecar.errors import StoreUnavailable

__all__ = ["RedisStore", "connect_redis"]

_T = TypeVar("_T")

_CAS = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1
end
return 0
"""
_RENEW = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""
_PUSH_CAPPED = """
redis.call('RPUSH', KEYS[1], ARGV[1])
local n = redis.call('LLEN', KEYS[1])
local cap = tonumber(ARGV[2])
local evicted = {}
if n > cap then
  evicted = redis.call('LRANGE', KEYS[1], 0, n - cap - 1)
  redis.call('LTRIM', KEYS[1], n - cap, -1)
end
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return evicted
"""

# A store that cannot be reached in 1 s is down for this request (503, the client retries). The
# read timeout is longer: under a burst it also times the event loop's own backlog, and a busy
# process must not turn a healthy Redis into 503s.
_CONNECT_TIMEOUT = 2.0
_POOL_SIZE = 64
_SOCKET_TIMEOUT = 5.0
_CLIENT_OPTIONS: dict[str, Any] = {
    "socket_timeout": _SOCKET_TIMEOUT,
    "socket_connect_timeout": _CONNECT_TIMEOUT,
    "health_check_interval": 15,
    # One quick retry on a dropped connection (a restarted Redis, a failover); a timeout is
    # not retried: it already waited the full read timeout.
    "retry": Retry(
        ExponentialBackoff(cap=0.2, base=0.02), retries=1, supported_errors=(RedisConnectionError,)
    ),
    "retry_on_error": [RedisConnectionError],
}


def _ms(seconds: float) -> int:
    return max(1, math.ceil(seconds * 1000))


def _sentinel_client(url: str) -> Any:
    parts = urlsplit(url)
    hosts: list[tuple[str, int]] = []
    for item in parts.netloc.rpartition("@")[2].split(","):
        host, _, port = item.rpartition(":")
        hosts.append((host.strip("[]") or "localhost", int(port or 26379)))
    path = [p for p in parts.path.split("/") if p]
    master = path[0] if path else "mymaster"
    db = int(path[1]) if len(path) > 1 else 0
    password = unquote(parts.password) if parts.password else None
    username = unquote(parts.username) if parts.username else None
    sentinel = Sentinel(  # type: ignore[no-untyped-call]
        hosts,
        sentinel_kwargs={"socket_timeout": _CONNECT_TIMEOUT, "password": password},
        password=password,
        username=username,
        db=db,
        **_CLIENT_OPTIONS,
    )
    return sentinel.master_for(master)


def connect_redis(url: str, *, cluster: bool) -> Any:
    """A redis.asyncio client for a plain, TLS, unix, Sentinel or Cluster URL."""
    if url.startswith("redis+sentinel://"):
        return _sentinel_client(url)
    if cluster:
        return RedisCluster.from_url(
            url, socket_timeout=_SOCKET_TIMEOUT, socket_connect_timeout=_CONNECT_TIMEOUT
        )
    # A bounded pool that queues: a burst of requests shares a few connections instead of
    # opening hundreds at once (each with a handshake that a busy event loop may not finish
    # within the connect timeout).
    pool = aioredis.BlockingConnectionPool.from_url(
        url, max_connections=_POOL_SIZE, timeout=_SOCKET_TIMEOUT, **_CLIENT_OPTIONS
    )
    return aioredis.Redis.from_pool(pool)  # owns the pool: closing the client closes it


class RedisStore:
    """KeyValueStore over redis.asyncio; ``on_error(operation)`` counts failures."""

    def __init__(self, client: Any, on_error: Callable[[str], None] = lambda _op: None) -> None:
        self._client = client
        self._on_error = on_error
        self._cas = client.register_script(_CAS)
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)
        self._push = client.register_script(_PUSH_CAPPED)

    async def _call(self, operation: str, awaitable: Awaitable[_T]) -> _T:
        try:
            return await awaitable
        # RedisClusterException (no reachable cluster node) is not a RedisError.
        except (RedisError, RedisClusterException, OSError, TimeoutError) as exc:
            self._on_error(operation)
            raise StoreUnavailable from exc

    async def get(self, key: str) -> bytes | None:
        """See KeyValueStore.get."""
        value: bytes | None = await self._call("get", self._client.get(key))
        return value

    async def get_many(self, *keys: str) -> list[bytes | None]:
        """See KeyValueStore.get_many."""
        values: list[bytes | None] = await self._call("get", self._client.mget(keys))
        return values

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        """See KeyValueStore.put."""
        await self._call("put", self._client.set(key, value, px=_ms(ttl)))

    async def update(self, key: str, value: bytes, ttl: float) -> bool:
        """See KeyValueStore.update."""
        done = await self._call("put", self._client.set(key, value, px=_ms(ttl), xx=True))
        return bool(done)

    async def set_if_equal(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        """See KeyValueStore.set_if_equal."""
        done = await self._call("cas", self._cas(keys=[key], args=[expected, value, _ms(ttl)]))
        return bool(done)

    async def getdel(self, key: str) -> bytes | None:
        """See KeyValueStore.getdel."""
        value: bytes | None = await self._call("getdel", self._client.getdel(key))
        return value

    async def delete(self, *keys: str) -> None:
        """See KeyValueStore.delete."""
        if keys:
            await self._call("delete", self._client.delete(*keys))

    async def expire(self, key: str, ttl: float) -> None:
        """See KeyValueStore.expire."""
        await self._call("expire", self._client.pexpire(key, _ms(ttl)))

    async def acquire_lock(self, key: str, token: str, ttl: float) -> bool:
        """See KeyValueStore.acquire_lock."""
        taken = await self._call("lock", self._client.set(key, token, px=_ms(ttl), nx=True))
        return bool(taken)

    async def renew_lock(self, key: str, token: str, ttl: float) -> bool:
        """See KeyValueStore.renew_lock."""
        return bool(await self._call("lock", self._renew(keys=[key], args=[token, _ms(ttl)])))

    async def release_lock(self, key: str, token: str) -> None:
        """See KeyValueStore.release_lock."""
        await self._call("lock", self._release(keys=[key], args=[token]))

    async def index_add(self, key: str, member: str, ttl: float) -> None:
        """See KeyValueStore.index_add."""
        await self._call("index", self._client.sadd(key, member))
        await self._call("index", self._client.pexpire(key, _ms(ttl)))

    async def index_remove(self, key: str, member: str) -> None:
        """See KeyValueStore.index_remove."""
        await self._call("index", self._client.srem(key, member))

    async def index_members(self, key: str) -> set[str]:
        """See KeyValueStore.index_members."""
        members = await self._call("index", self._client.smembers(key))
        return {m.decode() if isinstance(m, bytes) else str(m) for m in members}

    async def push_capped(self, key: str, member: str, cap: int, ttl: float) -> list[str]:
        """See KeyValueStore.push_capped."""
        evicted = await self._call("push", self._push(keys=[key], args=[member, cap, _ms(ttl)]))
        return [m.decode() if isinstance(m, bytes) else str(m) for m in evicted]

    async def ping(self) -> None:
        """See KeyValueStore.ping."""
        await self._call("ping", self._client.ping())

    async def close(self) -> None:
        """See KeyValueStore.close."""
        await self._client.aclose()
