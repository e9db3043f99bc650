"""Scene-cut detection from luma statistics.

A cut between two consecutive frames changes the luma histogram and the layout of brightness at once; motion
within a shot changes neither much. The score of a pair of frames is

    score = TV(hist_prev, hist_cur) + mean |block_mean_prev - block_mean_cur| / 100

- ``TV``: total-variation distance (half the L1 distance, in [0, 1]) of the normalised L* histograms (``bins``
  bins over [0, 100]);
- block means: the frame's mean L* over a ``grid`` x ``grid`` layout, so the second term is the mean-luma jump,
  measured per region, in L* units / 100 (in [0, 1]).

A pair is a cut when ``score >= threshold``. The default threshold 0.2 sits in the gap between the highest score
of a pair within a shot and the lowest of a pair across two shots, as measured on the DAVIS-2016 development
sequences (``benchmarks/smoothing.py``: ``scene_cut_within_max`` and ``scene_cut_between_min`` in
``benchmarks/results/smoothing.json``; ``tests/core/test_scenecut.py`` checks the gap).
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from chromaflow.core.errors import InputError, UsageError

DEFAULT_THRESHOLD = 0.2


@dataclass(frozen=True)
class LumaStats:
    """The statistics of one frame that cut detection compares (cheap to keep per frame)."""

    histogram: NDArray[np.float64]
    block_means: NDArray[np.float64]


def _as_lstar(luma: NDArray[np.generic]) -> NDArray[np.float32]:
    arr = np.asarray(luma)
    if arr.ndim != 2 or arr.size == 0:
        raise InputError(f"scene-cut detection needs a non-empty luma plane (H, W), got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) * np.float32(100.0 / 255.0)
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"luma must be uint8 or float L* in [0, 100], got dtype {arr.dtype}")
    return arr.astype(np.float32)


@dataclass(frozen=True)
class SceneCutDetector:
    """Scores pairs of frames and flags cuts; ``threshold`` trades missed cuts against false ones."""

    threshold: float = DEFAULT_THRESHOLD
    bins: int = 32
    grid: int = 4

    def __post_init__(self) -> None:
        if not self.threshold > 0:
            raise UsageError(f"scene-cut threshold must be > 0, got {self.threshold}")
        if self.bins < 2 or self.grid < 1:
            raise UsageError(f"scene-cut bins must be >= 2 and grid >= 1, got {self.bins} and {self.grid}")

    def stats(self, luma: NDArray[np.generic]) -> LumaStats:
        """Statistics of one luma plane (uint8 luma, or float L* in [0, 100])."""
        lstar = _as_lstar(luma)
        hist = np.histogram(lstar, bins=self.bins, range=(0.0, 100.0))[0].astype(np.float64)
        hist /= max(1.0, float(hist.sum()))
        grid = min(self.grid, *lstar.shape)
        blocks = cv2.resize(lstar, (grid, grid), interpolation=cv2.INTER_AREA).astype(np.float64)
        return LumaStats(hist, blocks)

    def score(self, prev: NDArray[np.generic] | LumaStats, cur: NDArray[np.generic] | LumaStats) -> float:
        """Cut score of two consecutive frames (0 for identical frames; see the module docstring)."""
        a = prev if isinstance(prev, LumaStats) else self.stats(prev)
        b = cur if isinstance(cur, LumaStats) else self.stats(cur)
        if a.histogram.shape != b.histogram.shape or a.block_means.shape != b.block_means.shape:
            raise InputError("scene-cut statistics come from detectors with different settings")
        tv = 0.5 * float(np.abs(a.histogram - b.histogram).sum())
        jump = float(np.abs(a.block_means - b.block_means).mean()) / 100.0
        return tv + jump

    def is_cut(self, prev: NDArray[np.generic] | LumaStats, cur: NDArray[np.generic] | LumaStats) -> bool:
        """True when a new shot starts at ``cur``."""
        return self.score(prev, cur) >= self.threshold

    def scores(self, lumas: Iterable[NDArray[np.generic]]) -> list[float]:
        """Scores of consecutive pairs: element ``i`` compares frame ``i`` with frame ``i + 1``."""
        out: list[float] = []
        prev: LumaStats | None = None
        for luma in lumas:
            cur = self.stats(luma)
            if prev is not None:
                out.append(self.score(prev, cur))
            prev = cur
        return out

    def detect(self, lumas: Iterable[NDArray[np.generic]]) -> list[int]:
        """Indices of the frames that start a new shot (frame 0 is not listed)."""
        return [i + 1 for i, s in enumerate(self.scores(lumas)) if s >= self.threshold]


def shot_ids(num_frames: int, cuts: Sequence[int]) -> NDArray[np.int64]:
    """Shot number of every frame, given the frames that start new shots (as from :meth:`detect`)."""
    ids = np.zeros(num_frames, dtype=np.int64)
    for c in sorted(set(cuts)):
        if 0 < c < num_frames:
            ids[c:] += 1
    return ids
