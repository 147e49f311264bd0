"""One KeyValueStore contract, run against MemoryStore, RedisStore on a real redis-server and
RedisStore on a real Redis Cluster; and a RedisStore whose Redis is gone.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest

from sidecar.errors import StoreUnavailable
from sidecar.store import KeyValueStore, MemoryStore
from sidecar.store.redis import RedisStore, connect_redis

from ..conftest import RedisClusterServers, RedisServer, free_port

# Keys of one test share a hash tag, so multi-key calls stay in one Cluster slot.
A, B, C = "{t}:a", "{t}:b", "{t}:c"
SHORT = 0.1
EXPIRED = 0.25
LONG = 60.0


@pytest.fixture(params=["memory", "redis", "cluster"])
def backend(request: pytest.FixtureRequest) -> tuple[str, bool]:
    """Which store to build: ("", False) for memory, else a clean Redis URL and cluster flag."""
    if request.param == "memory":
        return "", False
    if request.param == "cluster":
        cluster: RedisClusterServers = request.getfixturevalue("redis_cluster")
        cluster.flush()
        return cluster.url, True
    server: RedisServer = request.getfixturevalue("redis_server")
    server.client().flushall()
    return server.url, False


@asynccontextmanager
async def opened(backend: tuple[str, bool]) -> AsyncIterator[KeyValueStore]:
    """The store under test, pinged first and closed at the end."""
    url, cluster = backend
    store: KeyValueStore = (
        MemoryStore() if not url else RedisStore(connect_redis(url, cluster=cluster))
    )
    try:
        await store.ping()
        yield store
    finally:
        await store.close()


async def test_get_put_get_many(backend: tuple[str, bool]) -> None:
    """Absent is None; put then get; get_many answers in key order with None for gaps."""
    async with opened(backend) as store:
        assert await store.get(A) is None
        await store.put(A, b"\x00value-a\xff", LONG)
        await store.put(B, b"value-b", LONG)
        await store.put(B, b"value-b2", LONG)
        assert await store.get(A) == b"\x00value-a\xff"
        assert await store.get_many(B, C, A) == [b"value-b2", None, b"\x00value-a\xff"]


async def test_values_expire_after_their_ttl(backend: tuple[str, bool]) -> None:
    """A short TTL ends the value; a long one keeps it."""
    async with opened(backend) as store:
        await store.put(A, b"short", SHORT)
        await store.put(B, b"long", LONG)
        assert await store.get(A) == b"short"
        await asyncio.sleep(EXPIRED)
        assert await store.get(A) is None
        assert await store.get_many(A, B) == [None, b"long"]


async def test_set_if_equal_is_compare_and_set(backend: tuple[str, bool]) -> None:
    """Replaces only an exactly equal current value; absent keys are never created."""
    async with opened(backend) as store:
        assert await store.set_if_equal(A, b"x", b"y", LONG) is False
        assert await store.get(A) is None
        await store.put(A, b"v1", LONG)
        assert await store.set_if_equal(A, b"v0", b"v2", LONG) is False
        assert await store.get(A) == b"v1"
        assert await store.set_if_equal(A, b"v1", b"v2", SHORT) is True
        assert await store.get(A) == b"v2"
        await asyncio.sleep(EXPIRED)
        assert await store.get(A) is None  # the new TTL applies


async def test_getdel_reads_once(backend: tuple[str, bool]) -> None:
    """getdel returns the value and removes it; a second call and absent keys give None."""
    async with opened(backend) as store:
        await store.put(A, b"once", LONG)
        assert await store.getdel(A) == b"once"
        assert await store.getdel(A) is None
        assert await store.get(A) is None


async def test_delete_ignores_absent_keys(backend: tuple[str, bool]) -> None:
    """delete removes every key named, absent ones included, and no keys is a no-op."""
    async with opened(backend) as store:
        await store.put(A, b"a", LONG)
        await store.put(B, b"b", LONG)
        await store.put(C, b"c", LONG)
        await store.delete(A, B, "{t}:absent")
        await store.delete()
        assert await store.get_many(A, B, C) == [None, None, b"c"]


async def test_expire_resets_the_ttl_of_existing_keys_only(backend: tuple[str, bool]) -> None:
    """expire lengthens or shortens a live key's TTL and never creates a key."""
    async with opened(backend) as store:
        await store.put(A, b"kept", SHORT)
        await store.put(B, b"ended", LONG)
        await store.expire(A, LONG)
        await store.expire(B, SHORT)
        await store.expire(C, LONG)
        await asyncio.sleep(EXPIRED)
        assert await store.get_many(A, B, C) == [b"kept", None, None]


async def test_lock_semantics(backend: tuple[str, bool]) -> None:
    """One holder at a time; only the holder renews or releases; an expired lock is free."""
    async with opened(backend) as store:
        lock = "{t}:lock"
        assert await store.acquire_lock(lock, "one", LONG) is True
        assert await store.acquire_lock(lock, "two", LONG) is False
        assert await store.acquire_lock(lock, "one", LONG) is False  # not re-entrant
        assert await store.renew_lock(lock, "two", LONG) is False
        assert await store.renew_lock(lock, "one", SHORT) is True
        await store.release_lock(lock, "two")
        assert await store.acquire_lock(lock, "two", LONG) is False  # still held by "one"
        await asyncio.sleep(EXPIRED)  # the renewal shortened it
        assert await store.renew_lock(lock, "one", LONG) is False
        assert await store.acquire_lock(lock, "two", LONG) is True
        await store.release_lock(lock, "one")
        assert await store.acquire_lock(lock, "three", LONG) is False
        await store.release_lock(lock, "two")
        assert await store.acquire_lock(lock, "three", LONG) is True


async def test_index_sets(backend: tuple[str, bool]) -> None:
    """index_add/remove/members behave as a set with a TTL renewed on every add."""
    async with opened(backend) as store:
        index = "{t}:index"
        assert await store.index_members(index) == set()
        await store.index_add(index, "s1", LONG)
        await store.index_add(index, "s2", LONG)
        await store.index_add(index, "s1", LONG)
        assert await store.index_members(index) == {"s1", "s2"}
        await store.index_remove(index, "s1")
        await store.index_remove(index, "absent")
        await store.index_remove("{t}:no-index", "s1")
        assert await store.index_members(index) == {"s2"}
        await store.index_add(index, "s3", SHORT)
        await asyncio.sleep(EXPIRED)
        assert await store.index_members(index) == set()


async def test_push_capped_evicts_oldest_first(backend: tuple[str, bool]) -> None:
    """The list keeps the newest ``cap`` members and returns the pushed-out ones, oldest first."""
    async with opened(backend) as store:
        key = "{t}:list"
        assert [await store.push_capped(key, m, 3, LONG) for m in "abc"] == [[], [], []]
        assert await store.push_capped(key, "d", 3, LONG) == ["a"]
        assert await store.push_capped(key, "e", 3, LONG) == ["b"]
        assert await store.push_capped(key, "f", 1, LONG) == ["c", "d", "e"]
        assert await store.push_capped(key, "g", 2, SHORT) == []
        assert await store.push_capped(key, "h", 2, SHORT) == ["f"]
        await asyncio.sleep(EXPIRED)
        assert await store.push_capped(key, "i", 1, LONG) == []  # the list had expired


async def test_ping_answers(backend: tuple[str, bool]) -> None:
    """ping succeeds on a live store between other calls, changing nothing."""
    async with opened(backend) as store:
        await store.put(A, b"x", LONG)
        await store.ping()
        assert await store.get(A) == b"x"


@pytest.mark.parametrize("cluster", [False, True])
async def test_unreachable_redis_raises_store_unavailable(cluster: bool) -> None:
    """Every call against a closed port raises StoreUnavailable (never a redis exception) and
    reports the operation to on_error.
    """
    errors: list[str] = []
    store = RedisStore(
        connect_redis(f"redis://127.0.0.1:{free_port()}/0", cluster=cluster),
        on_error=errors.append,
    )
    calls: list[tuple[str, Callable[[], Awaitable[object]]]] = [
        ("ping", store.ping),
        ("get", lambda: store.get(A)),
        ("get", lambda: store.get_many(A, B)),
        ("put", lambda: store.put(A, b"x", LONG)),
        ("cas", lambda: store.set_if_equal(A, b"x", b"y", LONG)),
        ("getdel", lambda: store.getdel(A)),
        ("delete", lambda: store.delete(A)),
        ("expire", lambda: store.expire(A, LONG)),
        ("lock", lambda: store.acquire_lock(A, "t", LONG)),
        ("lock", lambda: store.renew_lock(A, "t", LONG)),
        ("lock", lambda: store.release_lock(A, "t")),
        ("index", lambda: store.index_add(A, "m", LONG)),
        ("index", lambda: store.index_remove(A, "m")),
        ("index", lambda: store.index_members(A)),
        ("push", lambda: store.push_capped(A, "m", 2, LONG)),
    ]
    try:
        for operation, call in calls:
            with pytest.raises(StoreUnavailable) as caught:
                await call()
            assert type(caught.value) is StoreUnavailable
            assert caught.value.status == 503
            assert errors[-1] == operation
        assert errors == [operation for operation, _ in calls]
    finally:
        await store.close()


async def test_update_never_brings_back_a_deleted_key(backend: tuple[str, bool]) -> None:
    """update replaces an existing value only; after a delete it writes nothing."""
    async with opened(backend) as store:
        assert await store.update(A, b"ghost", LONG) is False
        assert await store.get(A) is None
        await store.put(A, b"one", LONG)
        assert await store.update(A, b"two", LONG) is True
        assert await store.get(A) == b"two"
        await store.delete(A)
        assert await store.update(A, b"three", LONG) is False
        assert await store.get(A) is None
