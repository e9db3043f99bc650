"""What deepfake scoring produces, and how raw face scores become track, frame and video scores.

Scores. fake = P(FAKE) per face (1 - P(REAL) for MesoNet; an ensemble's is the mean of its members'); each track's
score is smoothed over time (:class:`ScoreSmoother`: EMA or running median); a frame's score is the highest smoothed
face score (None without faces). A video's score, as ``aggregate`` chooses:

- ``confident`` (ours, :func:`confident_aggregate`): over frame scores, after the DFDC winners' idea: when more
  than 40 % of the frames (and at least 3) are confidently fake (> 0.8), the mean of those; when more than 90 % are
  confidently real (< 0.2), the mean of those; else the mean. Usable on clips of a few frames.
- ``dfdc`` (the DFDC winners' own rule, :func:`dfdc_confident_strategy` and :func:`dfdc_video_score`): over the raw
  (unsmoothed) scores of every reported face, per model: more than 11 faces above 0.8 and more of them than
  ``n // 2.5`` -> their mean; else more than 90 % below 0.2 -> their mean; else the mean of all; an ensemble's video
  score is the mean of its members' (as their ``predict_on_video`` does). Made for their 32 sampled frames: on
  clips with 11 or fewer confidently fake faces it never takes the fake branch.
- ``mean`` and ``median`` of the frame scores.

The verdict is FAKE when the chosen score is at or above the run's ``threshold`` (default 0.5).

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


def dfdc_confident_strategy(scores: Sequence[float], t: float = 0.8) -> float | None:
    """The DFDC winners' video score of one model's face scores (their ``kernel_utils.confident_strategy``): the
    mean of the scores above ``t`` when there are more than 11 of them and more than ``n // 2.5``; else the mean of
    those below 0.2 when they are more than 90 %; else the mean of all. None for no scores."""
    arr = np.asarray(scores, dtype=np.float64)
    n = arr.size
    if n == 0:
        return None
    fakes = int(np.count_nonzero(arr > t))
    if fakes > n // 2.5 and fakes > 11:
        return float(arr[arr > t].mean())
    if np.count_nonzero(arr < 0.2) > 0.9 * n:
        return float(arr[arr < 0.2].mean())
    return float(arr.mean())


def dfdc_video_score(member_scores: Sequence[Sequence[float]]) -> float | None:
    """The DFDC winners' ensemble video score: :func:`dfdc_confident_strategy` of each model's face scores
    (``member_scores[face][model]``), then the mean over models. None for no faces."""
    if not member_scores:
        return None
    per_model = np.asarray(member_scores, dtype=np.float64).T
    return float(np.mean([dfdc_confident_strategy(list(model)) for model in per_model]))


def median_or_none(scores: Sequence[float]) -> float | None:
    """The median of the scores, None for none."""
    return float(np.median(np.asarray(scores, dtype=np.float64))) if len(scores) else None


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
    score; no track ids, no smoothing, so it depends on that frame alone. ``member_scores``: per face, each
    ensemble member's fake score (one per face for a single classifier; empty when not recorded)."""

    faces: tuple[Face, ...]
    raw_scores: tuple[float, ...]
    member_scores: tuple[tuple[float, ...], ...] = ()


@dataclass(frozen=True)
class FrameResult:
    """Scores of one frame: ``score`` is the highest smoothed face score, None when no face was found; ``model``
    names the classifier that made the scores."""

    index: int
    faces: tuple[FaceScore, ...]
    model: str | None = None

    @property
    def score(self) -> float | None:
        return max((f.score for f in self.faces), default=None)

    def to_json(self, frame: int | None = None, time: float | None = None) -> dict[str, Any]:
        """The JSONL sidecar object: ``{"frame", "time", "score", "faces": [{"track", "box", "score"}]}``, and
        ``"model"`` (the classifier) when known."""
        score = self.score
        out: dict[str, Any] = {
            "frame": self.index if frame is None else frame,
            "time": None if time is None else round(float(time), 6),
            "score": None if score is None else round(score, 4),
            "faces": [f.to_json() for f in self.faces],
        }
        if self.model is not None:
            out["model"] = self.model
        return out


@dataclass(frozen=True)
class VideoSummary:
    """Per-video aggregate: ``score`` is the one chosen by ``aggregate`` (``confident``, ``dfdc``, ``mean`` or
    ``median``; see the module docstring); ``verdict`` compares it with ``threshold``."""

    score: float | None
    mean: float | None
    confident: float | None
    frames: int
    frames_with_faces: int
    model: str
    detector: str
    aggregate: str
    median: float | None = None
    dfdc: float | None = None
    threshold: float = 0.5

    @property
    def verdict(self) -> str | None:
        """``FAKE`` when the score is at or above the threshold, ``REAL`` below it, None without faces."""
        if self.score is None:
            return None
        return "FAKE" if self.score >= self.threshold else "REAL"

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
                "threshold": self.threshold,
                "verdict": self.verdict,
                "mean": r(self.mean),
                "median": r(self.median),
                "confident": r(self.confident),
                "dfdc": r(self.dfdc),
            }
        }
