"""In-process store: the one-process default when no Redis is configured."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["MemoryStore"]


class MemoryStore:
    """A dict with expiry, implementing KeyValueStore for a single process."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._values: dict[str, tuple[float, object]] = {}

    def _live(self, key: str) -> object | None:
        item = self._values.get(key)
        if item is None:
            return None
        if item[0] <= self._clock():
            del self._values[key]
            return None
        return item[1]

    def _put(self, key: str, value: object, ttl: float) -> None:
        self._values[key] = (self._clock() + ttl, value)

    async def get(self, key: str) -> bytes | None:
        """See KeyValueStore.get."""
        value = self._live(key)
        return value if isinstance(value, bytes) else None

    async def get_many(self, *keys: str) -> list[bytes | None]:
        """See KeyValueStore.get_many."""
        return [await self.get(key) for key in keys]

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        """See KeyValueStore.put."""
        self._put(key, value, ttl)

    async def update(self, key: str, value: bytes, ttl: float) -> bool:
        """See KeyValueStore.update."""
        if self._live(key) is None:
            return False
        self._put(key, value, ttl)
        return True

    async def set_if_equal(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        """See KeyValueStore.set_if_equal."""
        if self._live(key) != expected:
            return False
        self._put(key, value, ttl)
        return True

    async def getdel(self, key: str) -> bytes | None:
        """See KeyValueStore.getdel."""
        value = await self.get(key)
        self._values.pop(key, None)
        return value

    async def delete(self, *keys: str) -> None:
        """See KeyValueStore.delete."""
        for key in keys:
            self._values.pop(key, None)

    async def expire(self, key: str, ttl: float) -> None:
        """See KeyValueStore.expire."""
        value = self._live(key)
        if value is not None:
            self._put(key, value, ttl)

    async def acquire_lock(self, key: str, token: str, ttl: float) -> bool:
        """See KeyValueStore.acquire_lock."""
        if self._live(key) is not None:
            return False
        self._put(key, token, ttl)
        return True

    async def renew_lock(self, key: str, token: str, ttl: float) -> bool:
        """See KeyValueStore.renew_lock."""
        if self._live(key) != token:
            return False
        self._put(key, token, ttl)
        return True

    async def release_lock(self, key: str, token: str) -> None:
        """See KeyValueStore.release_lock."""
        if self._live(key) == token:
            del self._values[key]

    async def index_add(self, key: str, member: str, ttl: float) -> None:
        """See KeyValueStore.index_add."""
        members = self._live(key)
        new = set(members) if isinstance(members, frozenset) else set()
        new.add(member)
        self._put(key, frozenset(new), ttl)

    async def index_remove(self, key: str, member: str) -> None:
        """See KeyValueStore.index_remove."""
        members = self._live(key)
        if isinstance(members, frozenset):
            self._values[key] = (self._values[key][0], members - {member})

    async def index_members(self, key: str) -> set[str]:
        """See KeyValueStore.index_members."""
        members = self._live(key)
        return set(members) if isinstance(members, frozenset) else set()

    async def push_capped(self, key: str, member: str, cap: int, ttl: float) -> list[str]:
        """See KeyValueStore.push_capped."""
        current = self._live(key)
        items = [*current, member] if isinstance(current, tuple) else [member]
        evicted, kept = items[:-cap], items[-cap:]
        self._put(key, tuple(kept), ttl)
        return evicted

    async def ping(self) -> None:
        """See KeyValueStore.ping."""

    async def close(self) -> None:
        """See KeyValueStore.close."""
        self._values.clear()
