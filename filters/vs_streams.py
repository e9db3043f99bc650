"""A pool of engine copies shared by VapourSynth's worker threads.

VapourSynth asks for frames from ``core.num_threads`` threads at once. Each engine copy (a "stream") serves one
frame at a time: a thread takes a free copy, runs it, and gives it back, so ``num_streams`` frames are computed
concurrently (on a GPU, one CUDA stream's worth of work per copy) and no engine is ever entered by two threads.
"""

import queue
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class StreamPool[T]:
    """``count`` engines built by ``factory(index)``; :meth:`take` lends one to the calling thread."""

    def __init__(self, factory: Callable[[int], T], count: int) -> None:
        if count < 1:
            raise ValueError(f"num_streams must be at least 1, got {count}")
        self.engines: list[T] = [factory(i) for i in range(count)]
        self._free: queue.SimpleQueue[T] = queue.SimpleQueue()
        for engine in self.engines:
            self._free.put(engine)

    def __len__(self) -> int:
        return len(self.engines)

    @contextmanager
    def take(self) -> Iterator[T]:
        """Borrow a free engine for the duration of the ``with`` block (waits while all are busy)."""
        engine = self._free.get()
        try:
            yield engine
        finally:
            self._free.put(engine)
