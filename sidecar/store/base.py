"""The key-value seam every stateful part of the sidecar goes through.

One Protocol, two implementations (in-process and Redis), one contract test suite. Values are
opaque bytes (already sealed by the caller); every key has a TTL.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["KeyValueStore"]


class KeyValueStore(Protocol):
    """What the sidecar needs from a session store. Every failure raises StoreUnavailable."""

    async def get(self, key: str) -> bytes | None:
        """The value, or None when absent or expired."""

    async def get_many(self, *keys: str) -> list[bytes | None]:
        """Several values in one round trip (keys of one session share a Cluster slot)."""

    async def put(self, key: str, value: bytes, ttl: float) -> None:
        """Store ``value`` for ``ttl`` seconds."""

    async def update(self, key: str, value: bytes, ttl: float) -> bool:
        """Replace only an existing value (never bring back a deleted key); whether it did."""

    async def set_if_equal(self, key: str, expected: bytes, value: bytes, ttl: float) -> bool:
        """Compare-and-set: replace only when the current value is exactly ``expected``."""

    async def getdel(self, key: str) -> bytes | None:
        """Read and delete in one step (single-use values)."""

    async def delete(self, *keys: str) -> None:
        """Delete keys; absent ones are ignored."""

    async def expire(self, key: str, ttl: float) -> None:
        """Reset the TTL of an existing key."""

    async def acquire_lock(self, key: str, token: str, ttl: float) -> bool:
        """Take a lock held by ``token`` for ``ttl`` seconds unless someone holds it."""

    async def renew_lock(self, key: str, token: str, ttl: float) -> bool:
        """Extend the lock only while ``token`` still holds it."""

    async def release_lock(self, key: str, token: str) -> None:
        """Release the lock only when ``token`` still holds it."""

    async def index_add(self, key: str, member: str, ttl: float) -> None:
        """Add ``member`` to a set, extending the set's TTL."""

    async def index_remove(self, key: str, member: str) -> None:
        """Remove ``member`` from a set."""

    async def index_members(self, key: str) -> set[str]:
        """All members of a set."""

    async def push_capped(self, key: str, member: str, cap: int, ttl: float) -> list[str]:
        """Append to a list kept at most ``cap`` long; return the members pushed out."""

    async def ping(self) -> None:
        """Round trip to the store."""

    async def close(self) -> None:
        """Release connections."""
