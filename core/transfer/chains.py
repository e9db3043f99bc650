"""Chain states of one sequence, kept for random access.

Hosts ask for frames in any order and from several threads. The state of the chain from keyframe ``key`` in
``direction`` (+1 forward, -1 backward) at frame ``n`` (:class:`~chromaflow.core.transfer.propagate.ChainState`:
positions and validity at the working resolution) is computed by stepping from the nearest state already known:
every ``cache_every``-th state is kept as a checkpoint, recent states in an LRU, so frame ``n`` costs the steps from
the nearest kept state, not from the keyframe. A state is always computed by the same steps from the same inputs, so
results do not depend on the order of requests; one lock per chain segment ``(direction, key)`` serialises the
stepping of that segment.
"""

import threading
from collections.abc import Callable

from chromaflow.core.lru import LRUCache
from chromaflow.core.transfer.propagate import ChainState

DEAD = (
    "dead"  # kept for a chain stopped by a scene cut, so later frames of the segment know it without stepping
)
Advance = Callable[
    [ChainState, int, int], ChainState | None
]  # (state at m, m, j) -> state at j; None: stopped


class ChainBook:
    """The kept chain states of one sequence (see the module docstring)."""

    def __init__(self, cache_every: int, cache_states: int) -> None:
        self.cache_every = cache_every
        self._lock = threading.Lock()
        self._segment_locks: dict[tuple[int, int], threading.Lock] = {}
        self._states = LRUCache(cache_states)
        self._checkpoints = LRUCache(max(16, 4 * cache_states))

    def _segment_lock(self, direction: int, key: int) -> threading.Lock:
        with self._lock:
            return self._segment_locks.setdefault((direction, key), threading.Lock())

    def _stored(self, tag: tuple[int, int, int]) -> ChainState | str | None:
        st = self._states.get(tag)
        return st if st is not None else self._checkpoints.get(tag)

    def state(
        self, direction: int, key: int, n: int, start: Callable[[], ChainState], advance: Advance
    ) -> ChainState | None:
        """The chain's state at frame ``n``, None if it stopped on the way.

        ``start()`` gives the state at the keyframe; ``advance(state, m, j)`` one step from frame ``m`` to its
        neighbour ``j`` (None where the chain stops, e.g. at a scene cut).
        """
        with self._segment_lock(direction, key):
            m = n
            state = self._stored((direction, key, m))
            while state is None and m != key:
                m -= direction
                state = self._stored((direction, key, m))
            if state is None:  # m == key
                state = start()
                self._checkpoints.put((direction, key, key), state)
            while m != n:
                j = m + direction
                if isinstance(state, ChainState):
                    stepped = advance(state, m, j)
                    state = DEAD if stepped is None else stepped
                tag = (direction, key, j)
                if abs(j - key) % self.cache_every == 0:
                    self._checkpoints.put(tag, state)
                else:
                    self._states.put(tag, state)
                m = j
        return state if isinstance(state, ChainState) else None

    def release_before(self, n: int) -> None:
        """Forget states before frame ``n`` (keyframes' own states are kept)."""
        self._states.keep_only(lambda k: not (isinstance(k, tuple) and k[2] < n))
        self._checkpoints.keep_only(lambda k: not (isinstance(k, tuple) and k[2] < n and k[2] != k[1]))
