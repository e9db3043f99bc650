"""What deepfake scoring produces, and how raw face scores become track, frame and video scores.

Scores. fake = 1 - P(REAL) per face; each track's score is smoothed over time (:class:`ScoreSmoother`: EMA or
running median); a frame's score is the highest smoothed face score (None without faces); a video's score is the
mean of frame scores and a DFDC-style "confident" aggregate (:func:`confident_aggregate`, after the DFDC winners'
strategy: when many frames are confidently fake, average only those; when nearly all are confidently real, average
those; else the plain mean).

The records (:class:`FrameFaces`, :class:`FaceScore`, :class:`FrameResult`, :class:`VideoSummary`) and their JSON
are kept apart from the scorer (:mod:`chromaflow.core.deepfake`) so that hosts, sidecar writers and overlays can use
the results without the detection and classification machinery; the scorer re-exports them.
"""

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from chromaflow.core.faces import Box, Face
from chromaflow.core.options import DeepfakeOptions, Smoothing, check_score_smoothing


def confident_aggregate(
    scores: Sequence[float],
    high: float = 0.8,
    low: float = 0.2,
    fake_fraction: float = 0.4,
    min_fake: int = 3,
    real_fraction: float = 0.9,
) -> float | None:
    """DFDC-style video score: the mean of confidently fake scores (> ``high``) when they are more than
    ``fake_fraction`` of all and at least ``min_fake``; else the mean of confidently real scores (< ``low``) when
    they are more than ``real_fraction``; else the mean of all. None for no scores."""
    arr = np.asarray([s for s in scores if s is not None], dtype=np.float64)
    if arr.size == 0:
        return None
    fake = arr[arr > high]
    if fake.size > fake_fraction * arr.size and fake.size >= min_fake:
        return float(fake.mean())
    real = arr[arr < low]
    if real.size > real_fraction * arr.size:
        return float(real.mean())
    return float(arr.mean())


class ScoreSmoother:
    """Per-track temporal smoothing: EMA (``alpha`` = weight of the newest score), running median over ``window``
    scores, or none."""

    def __init__(
        self,
        method: Smoothing = DeepfakeOptions.smoothing,
        alpha: float = DeepfakeOptions.alpha,
        window: int = DeepfakeOptions.window,
    ) -> None:
        check_score_smoothing(method, alpha, window)
        self.method, self.alpha, self.window = method, alpha, window
        self._ema: dict[int, float] = {}
        self._hist: dict[int, deque[float]] = {}

    def update(self, track: int, score: float) -> float:
        if self.method == "none":
            return score
        if self.method == "ema":
            prev = self._ema.get(track)
            value = score if prev is None else self.alpha * score + (1 - self.alpha) * prev
            self._ema[track] = value
            return value
        hist = self._hist.setdefault(track, deque(maxlen=self.window))
        hist.append(score)
        return float(np.median(np.fromiter(hist, dtype=np.float64)))

    def forget(self, live: set[int]) -> None:
        """Drop state of tracks that ended."""
        for store in (self._ema, self._hist):
            for key in [k for k in store if k not in live]:
                del store[key]


@dataclass(frozen=True)
class FaceScore:
    """One face in one frame: track id, box (frame pixels), smoothed fake score, raw fake score, detector score."""

    track: int
    box: Box
    score: float
    raw_score: float
    detector_score: float

    def to_json(self) -> dict[str, Any]:
        return {"track": self.track, "box": [round(v, 1) for v in self.box], "score": round(self.score, 4)}


@dataclass(frozen=True)
class FrameFaces:
    """Stage (1) of one frame (:meth:`DeepfakeScorer.analyse`): its faces, best first, and each face's raw fake
    score (1 - P(REAL)); no track ids, no smoothing, so it depends on that frame alone."""

    faces: tuple[Face, ...]
    raw_scores: tuple[float, ...]


@dataclass(frozen=True)
class FrameResult:
    """Scores of one frame: ``score`` is the highest smoothed face score, None when no face was found."""

    index: int
    faces: tuple[FaceScore, ...]

    @property
    def score(self) -> float | None:
        return max((f.score for f in self.faces), default=None)

    def to_json(self, frame: int | None = None, time: float | None = None) -> dict[str, Any]:
        """The JSONL sidecar object: ``{"frame", "time", "score", "faces": [{"track", "box", "score"}]}``."""
        score = self.score
        return {
            "frame": self.index if frame is None else frame,
            "time": None if time is None else round(float(time), 6),
            "score": None if score is None else round(score, 4),
            "faces": [f.to_json() for f in self.faces],
        }


@dataclass(frozen=True)
class VideoSummary:
    """Per-video aggregate: ``score`` is the one chosen by ``aggregate`` ("confident" or "mean")."""

    score: float | None
    mean: float | None
    confident: float | None
    frames: int
    frames_with_faces: int
    model: str
    detector: str
    aggregate: str

    def to_json(self) -> dict[str, Any]:
        """The sidecar's last line: ``{"video": {"score", "frames", "frames_with_faces", "model", ...}}``."""

        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 4)

        return {
            "video": {
                "score": r(self.score),
                "frames": self.frames,
                "frames_with_faces": self.frames_with_faces,
                "model": self.model,
                "detector": self.detector,
                "aggregate": self.aggregate,
                "mean": r(self.mean),
                "confident": r(self.confident),
            }
        }
