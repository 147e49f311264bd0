"""Session-store implementations behind one Protocol."""

from sidecar.store.base import KeyValueStore
from sidecar.store.memory import MemoryStore

__all__ = ["KeyValueStore", "MemoryStore"]
