"""A small thread-safe LRU map shared by the engine's and the hosts' per-frame caches (flows, frames, propagated
states, converted frames, face analyses).

Two ways to fill it: :meth:`LRUCache.put` for values the caller has computed anyway, and
:meth:`LRUCache.get_or_compute` for "one thread computes, the others wait" (a frame several render threads need at
once is converted or analysed once, not once per thread).
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any


class _InFlight:
    """A computation under way: its outcome, and how many other threads wait for it."""

    def __init__(self) -> None:
        self.outcome: Future[Any] = Future()
        self.waiters = 0


class LRUCache:
    """Least-recently-used map with an optional capacity (``None``: unbounded).

    Values given to :meth:`put` are computed by callers outside the lock, so two threads may compute the same value
    (harmless for deterministic values); :meth:`get_or_compute` computes each missing key once while others wait.
    """

    def __init__(self, capacity: int | None) -> None:
        self.capacity = capacity
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._in_flight: dict[Hashable, _InFlight] = {}
        self._lock = threading.Lock()

    def __len__(self) -> int:
        with self._lock:
            return len(self._data)

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
            self._store(key, value)

    def get_or_compute[V](self, key: Hashable, compute: Callable[[], V]) -> V:
        """The value for ``key``; when it is missing, ``compute()`` runs once and its value is stored.

        Threads asking for a key whose computation is under way wait for it and get its value (even if the capacity
        evicts it at once); if it raises, every one of them gets that exception and nothing is stored, so a later
        call computes again. Different keys compute in parallel; ``compute`` may use the cache for other keys, but
        must not ask for its own key (it would wait for itself).
        """
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
            flight = self._in_flight.get(key)
            owner = flight is None
            if flight is None:
                flight = self._in_flight[key] = _InFlight()
            else:
                flight.waiters += 1
        if not owner:
            return flight.outcome.result()
        try:
            value = compute()
        except BaseException as err:
            with self._lock:
                del self._in_flight[key]
            flight.outcome.set_exception(err)
            raise
        with self._lock:
            del self._in_flight[key]
            self._store(key, value)
        flight.outcome.set_result(value)
        return value

    def waiting(self, key: Hashable) -> int:
        """How many threads wait for ``key``'s computation now (0 when none is under way)."""
        with self._lock:
            flight = self._in_flight.get(key)
            return 0 if flight is None else flight.waiters

    def keep_only(self, keep: Callable[[Hashable], bool]) -> None:
        """Drop every entry whose key fails ``keep`` (e.g. frames a stream has moved past)."""
        with self._lock:
            for key in [k for k in self._data if not keep(k)]:
                del self._data[key]

    def clear(self) -> None:
        """Drop every entry."""
        with self._lock:
            self._data.clear()

    def _store(self, key: Hashable, value: Any) -> None:
        """Store under the held lock, evicting beyond the capacity."""
        self._data[key] = value
        self._data.move_to_end(key)
        while self.capacity is not None and len(self._data) > self.capacity:
            self._data.popitem(last=False)
