"""The engine's shared LRU cache."""

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
