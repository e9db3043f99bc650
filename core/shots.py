"""The scene cuts of one run, decided once: every part of a colorize run that stops at cuts asks one :class:`ShotCuts`.

Keyframe transfer ends its flow chains at cuts, temporal smoothing ends its windows there, and hosts report the cut
flag of each frame. Each used to run its own :class:`~chromaflow.core.scenecut.SceneCutDetector` over its own copy of
the frame; they agreed only as long as their inputs did. Here each frame's luma statistics and each cut flag are
computed once per run and shared, so the three agree by construction and the statistics are not recomputed.

The frame a cut decision looks at is the frame's L* at the run's working resolution as the uint8 image optical flow
sees (:func:`cut_luma`): every user of one :class:`ShotCuts` describes frame ``n`` that way, and frames are named by
their index in the sequence. A host that reports cuts without the video engine (the PyAV node's device-resident
path) uses :func:`cut_luma` too, so it reports the cuts the video engine would.
"""

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from chromaflow.core.arrays import F32
from chromaflow.core.flow import resize_luma, to_flow_luma, working_size
from chromaflow.core.lru import LRUCache
from chromaflow.core.scenecut import LumaStats, SceneCutDetector

LumaOf = Callable[[int], NDArray[np.uint8]]  # frame index -> its cut luma (called only when not yet known)


def cut_luma(l_star: F32, max_side: int) -> NDArray[np.uint8]:
    """What cut detection sees of a frame: its L* ``(H, W)`` at the working resolution (longer side ``max_side``,
    :func:`~chromaflow.core.flow.working_size`) as the uint8 image flow sees."""
    size = (int(l_star.shape[0]), int(l_star.shape[1]))
    return to_flow_luma(resize_luma(np.asarray(l_star, dtype=np.float32), working_size(size, max_side)))


class ShotCuts:
    """Luma statistics and cut flags of one sequence's frames, computed on first use and kept (thread-safe).

    ``detector`` None turns cut detection off: no frame starts a shot and no statistics are computed. Flags are
    kept for up to ``flag_capacity`` frames (a long chain may ask for old ones after their frames are gone), the
    statistics of up to ``stats_capacity`` frames.
    """

    def __init__(
        self, detector: SceneCutDetector | None, stats_capacity: int = 4096, flag_capacity: int = 1 << 16
    ) -> None:
        self.detector = detector
        self._stats = LRUCache(stats_capacity)
        self._flags = LRUCache(flag_capacity)

    def stats(self, n: int, luma_of: LumaOf) -> LumaStats:
        """The statistics of frame ``n`` (``luma_of(n)`` is read only when they are not known yet)."""
        cached = self._stats.get(n)
        if cached is None:
            cached = (self.detector or SceneCutDetector()).stats(luma_of(n))
            self._stats.put(n, cached)
        return cached

    def is_cut(self, n: int, luma_of: LumaOf) -> bool:
        """True when a new shot starts at frame ``n`` (frame 0 never; never without a detector)."""
        if n <= 0 or self.detector is None:
            return False
        cached = self._flags.get(n)
        if cached is None:
            cached = self.detector.is_cut(self.stats(n - 1, luma_of), self.stats(n, luma_of))
            self._flags.put(n, cached)
        return bool(cached)

    def release_before(self, n: int) -> None:
        """Forget statistics and flags of frames before ``n`` (a stream that moved past them)."""
        self._stats.keep_only(lambda k: isinstance(k, int) and k >= n)
        self._flags.keep_only(lambda k: isinstance(k, int) and k >= n)

    def clear(self) -> None:
        """Forget everything (a new sequence)."""
        self._stats.clear()
        self._flags.clear()
