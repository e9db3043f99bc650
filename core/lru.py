"""A small thread-safe LRU map shared by the engine's per-frame caches (flows, frames, propagated states)."""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any


class LRUCache:
    """Least-recently-used map with an optional capacity (``None``: unbounded).

    Values are computed by callers outside the lock, so two threads may compute the same value; the engine's
    values are deterministic, so a duplicate computation is harmless.
    """

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> Any:
        """The value for ``key`` (marked as recently used), or ``None``."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
            return None

    def put(self, key: Hashable, value: Any) -> None:
        """Store ``value``, evicting the least recently used entries beyond the capacity."""
        with self._lock:
            self._data[key] = value
            self._data.move_to_end(key)
            while self.capacity is not None and len(self._data) > self.capacity:
                self._data.popitem(last=False)

    def keep_only(self, keep: Callable[[Hashable], bool]) -> None:
        """Drop every entry whose key fails ``keep`` (e.g. frames a stream has moved past)."""
        with self._lock:
            for key in [k for k in self._data if not keep(k)]:
                del self._data[key]

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._data.clear()
