"""A pool of engine copies shared by VapourSynth's worker threads.

VapourSynth asks for frames from ``core.num_threads`` threads. Each engine copy (a "stream") serves one frame at a
time: a thread takes a free copy, runs it, and gives it back, so no engine is ever entered by two threads. Note:
VapourSynth R81 calls a Python filter's frame callbacks one at a time (measured here: one callback in flight with
``core.num_threads = 4``, even while it sleeps; vapoursynth/vapoursynth#1102), so one copy is busy at a time and
the parallelism is inside the engine (torch, numba and OpenCV threads); the pool keeps that safe if callbacks ever
overlap.
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
