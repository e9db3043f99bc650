"""The engine's shared LRU cache: recency, bounds, and "one thread computes, the others wait"."""

import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from chromaflow.core.lru import LRUCache


def test_eviction_follows_recent_use() -> None:
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3


def test_unbounded_keep_only_and_clear() -> None:
    cache = LRUCache(None)
    for i in range(100):
        cache.put(i, i * i)
    cache.keep_only(lambda k: isinstance(k, int) and k >= 90)
    assert cache.get(89) is None and cache.get(95) == 95 * 95
    cache.clear()
    assert cache.get(95) is None


# ------------------------------------------------------------------------------------------------ get_or_compute
# Threads are synchronised through events and the cache's own waiter count, never through sleeps or clocks.


def _until(condition: Callable[[], bool]) -> None:
    """Wait until ``condition()`` holds (a hang guard, not a timing assertion)."""
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "the threads never got there"
        time.sleep(0.001)


def test_one_computation_per_key_while_threads_ask() -> None:
    cache = LRUCache(0)  # nothing is kept: a thread that did not wait would compute again
    started, release = threading.Event(), threading.Event()
    calls: list[str] = []

    def compute() -> str:
        calls.append("k")
        started.set()
        release.wait()
        return "value"

    with ThreadPoolExecutor(max_workers=5) as pool:
        first = pool.submit(cache.get_or_compute, "k", compute)
        started.wait()
        others = [pool.submit(cache.get_or_compute, "k", compute) for _ in range(4)]
        _until(lambda: cache.waiting("k") == 4)
        release.set()
        assert [f.result() for f in [first, *others]] == ["value"] * 5
    assert calls == ["k"]
    assert cache.waiting("k") == 0 and len(cache) == 0


def test_an_exception_reaches_every_waiter_and_is_not_cached() -> None:
    cache = LRUCache(4)
    started, release = threading.Event(), threading.Event()
    calls: list[int] = []

    def failing() -> int:
        calls.append(1)
        started.set()
        release.wait()
        raise ValueError("frame 3 is unreadable")

    with ThreadPoolExecutor(max_workers=4) as pool:
        first = pool.submit(cache.get_or_compute, 3, failing)
        started.wait()
        others = [pool.submit(cache.get_or_compute, 3, failing) for _ in range(3)]
        _until(lambda: cache.waiting(3) == 3)
        release.set()
        errors = [f.exception() for f in [first, *others]]
    assert len(calls) == 1
    assert all(isinstance(e, ValueError) and "frame 3" in str(e) for e in errors)
    assert cache.get(3) is None and len(cache) == 0
    assert cache.get_or_compute(3, lambda: 9) == 9  # the next request computes again, and keeps it
    assert cache.get(3) == 9


def test_keys_compute_in_parallel_and_may_nest() -> None:
    cache = LRUCache(None)
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        release.wait()
        return "slow"

    with ThreadPoolExecutor(max_workers=2) as pool:
        blocked = pool.submit(cache.get_or_compute, "slow", slow)
        started.wait()
        # another key is not held up by the computation under way (the lock is not held while computing), and a
        # computation may fill other keys of the same cache
        nested = pool.submit(
            cache.get_or_compute, "outer", lambda: cache.get_or_compute("inner", lambda: 1) + 1
        )
        assert nested.result(timeout=30) == 2
        assert not blocked.done()
        release.set()
        assert blocked.result() == "slow"
    assert cache.get("inner") == 1 and cache.get("outer") == 2


def test_computed_values_are_bounded_by_the_capacity() -> None:
    cache = LRUCache(3)
    calls: list[int] = []

    def square(k: int) -> Callable[[], int]:
        def compute() -> int:
            calls.append(k)
            return k * k

        return compute

    for k in range(10):
        assert cache.get_or_compute(k, square(k)) == k * k
        assert len(cache) <= 3
    assert [cache.get(k) for k in (7, 8, 9)] == [49, 64, 81]
    assert cache.get_or_compute(8, square(8)) == 64 and calls == list(range(10))  # kept: not computed again
    assert cache.get_or_compute(0, square(0)) == 0 and calls[-1] == 0  # evicted: computed again
    assert cache.get(7) is None  # 7 was the least recently used (8 and 9 were read after it)
    assert len(cache) == 3
