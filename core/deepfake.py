"""Deepfake scoring of video frames: faces -> square crops -> MesoNet -> per-face, per-frame and per-video scores.

Crops. MesoNet was trained on 256 x 256 face crops that show the whole face with some hair, ears and neck, with
OpenCV's Haar box covering a fixed share of the crop side and sitting a little above its centre; ``CROP_SPECS``
holds that share (as its inverse, ``scale``) and offset, measured on the authors' own test images
(``mesonet-test-images``). We reproduce that framing: the crop is a square of ``scale`` x the box side, centred
``shift_y`` box sides below the box centre, padded by edge replication where it leaves the frame, and resized to
256 (INTER_AREA when shrinking, bilinear when enlarging). BlazeFace boxes are a little smaller and lower than
Haar's, so its crop constants differ. MesoNet's pipeline also aligned faces with landmarks; we do not rotate (the
frontal detectors see upright faces).

Scores (fake = 1 - P(REAL) per face, smoothed per track, aggregated per frame and per video) and the result records
are :mod:`chromaflow.core.deepfake_results`; this module re-exports them.

Two stages. Scoring a frame is (1) :meth:`DeepfakeScorer.analyse`: detect faces, crop, classify: per frame, no
state, safe to call from several threads at once (each thread borrows its own Haar cascade), the expensive part;
then (2) :meth:`DeepfakeScorer.track`: track ids and per-track score smoothing, which must see the frames in order
and is cheap. Hosts that render frames in any order from several threads (VapourSynth) run (1) on the thread that
renders the frame and (2) in frame order; :meth:`DeepfakeScorer.score_frames` does both for a batch of consecutive
frames.

Engines. Stage (1) runs on the host (OpenCV tiles and crops, the nets on the scorer's device) or, with BlazeFace,
device-resident (:mod:`chromaflow.core.device_faces`: frames go up once as uint8, boxes and scores come back). The
``engine`` argument picks: ``"auto"`` (device for BlazeFace on CUDA, else host), ``"device"`` or ``"host"``.

Options come as one :class:`~chromaflow.core.options.DeepfakeOptions` (every host builds one).

Usage (streaming)::

    scorer = DeepfakeScorer(options=DeepfakeOptions(detector="haar", classifier="meso4-df"))
    for batch in batches:                        # lists of RGB uint8 HxWx3 frames, in order
        for result in scorer.score_frames(batch):
            ...                                  # result.score, result.faces, result.to_json(time=t)
    summary = scorer.finish()                    # VideoSummary; summary.to_json()
"""

import queue
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import cv2
import numpy as np
import torch
from torch import nn

from chromaflow.core import registry
from chromaflow.core.deepfake_results import FaceScore as FaceScore
from chromaflow.core.deepfake_results import FrameFaces as FrameFaces
from chromaflow.core.deepfake_results import FrameResult as FrameResult
from chromaflow.core.deepfake_results import ScoreSmoother as ScoreSmoother
from chromaflow.core.deepfake_results import VideoSummary as VideoSummary
from chromaflow.core.deepfake_results import confident_aggregate as confident_aggregate
from chromaflow.core.device import resolve_device
from chromaflow.core.errors import UsageError
from chromaflow.core.faces import Backend, Box, FaceDetector, as_rgb_frame
from chromaflow.core.nets import mesonet
from chromaflow.core.options import (
    CLASSIFIERS as CLASSIFIERS,  # re-exported: hosts import it from here
)
from chromaflow.core.options import (
    Aggregate,
    DeepfakeOptions,
    Engine,
    Smoothing,
    check_analysis_engine,
    given,
)
from chromaflow.core.tracking import IoUTracker

CROP_SIZE = mesonet.INPUT_SIZE


@dataclass(frozen=True)
class CropSpec:
    """Square crop side = ``scale`` x the box's longer side; centre moved down by ``shift_y`` box sides."""

    scale: float
    shift_y: float


CROP_SPECS = {"haar": CropSpec(1.41, 0.10), "blazeface": CropSpec(1.55, -0.05)}


def crop_face(frame: np.ndarray, box: Box, spec: CropSpec, size: int = CROP_SIZE) -> np.ndarray:
    """The ``size`` x ``size`` RGB crop of ``frame`` around ``box`` (edge-replicated where it leaves the frame)."""
    x0, y0, x1, y1 = box
    side = max(1.0, max(x1 - x0, y1 - y0) * spec.scale)
    cx = (x0 + x1) / 2
    cy = (y0 + y1) / 2 + spec.shift_y * max(x1 - x0, y1 - y0)
    left, top = round(cx - side / 2), round(cy - side / 2)
    n = max(1, round(side))
    h, w = frame.shape[:2]
    sx0, sy0, sx1, sy1 = max(0, left), max(0, top), min(w, left + n), min(h, top + n)
    if sx1 <= sx0 or sy1 <= sy0:
        return np.zeros((size, size, 3), dtype=np.uint8)
    patch = frame[sy0:sy1, sx0:sx1]
    pads = (sy0 - top, top + n - sy1, sx0 - left, left + n - sx1)
    if any(pads):
        patch = cv2.copyMakeBorder(patch, *pads, borderType=cv2.BORDER_REPLICATE)
    interp = cv2.INTER_AREA if n > size else cv2.INTER_LINEAR
    return cv2.resize(patch, (size, size), interpolation=interp)


class DeepfakeScorer:
    """Scores faces in a stream of frames. Feed batches in order with :meth:`score_frames`, then :meth:`finish`.

    ``options``: the run's :class:`DeepfakeOptions` (detector, classifier, device, score smoothing, aggregate,
    engine, ``min_track``; see their fields). ``detector`` / ``classifier`` (positional) and the keywords up to
    ``min_track`` are their keyword form, for direct callers (the hosts pass ``options``): given ones replace the options'
    values. ``tracker``: the face tracker to use (default: a new :class:`IoUTracker`).
    """

    def __init__(
        self,
        detector: str | FaceDetector | None = None,
        classifier: str | nn.Module | None = None,
        *,
        options: DeepfakeOptions | None = None,
        tracker: IoUTracker | None = None,
        device: str | None = None,
        smoothing: Smoothing | None = None,
        alpha: float | None = None,
        window: int | None = None,
        aggregate: Aggregate | None = None,
        min_face: int | None = None,
        classifier_path: str | Path | None = None,
        classifier_name: str | None = None,
        crop: CropSpec | None = None,
        max_batch: int | None = None,
        engine: Engine | None = None,
        min_track: int | None = None,
    ) -> None:
        opts = given(
            options or DeepfakeOptions(),
            detector=detector,
            classifier=classifier,
            device=device,
            smoothing=smoothing,
            alpha=alpha,
            window=window,
            aggregate=aggregate,
            min_face=min_face,
            classifier_path=classifier_path,
            classifier_name=classifier_name,
            crop=crop,
            max_batch=max_batch,
            engine=engine,
            min_track=min_track,
        )
        self.options = opts
        self.device = resolve_device(opts.device)
        self.detector = (
            opts.detector
            if isinstance(opts.detector, FaceDetector)
            else self._make_detector(opts.detector, opts.min_face)
        )
        self.classifier, self.model_name = self._make_classifier(
            opts.classifier, opts.classifier_path, opts.classifier_name
        )
        self.classifier = self.classifier.to(self.device).eval()
        self.crop = opts.crop or CROP_SPECS.get(self.detector.name, CROP_SPECS["haar"])
        self.smoother = ScoreSmoother(opts.smoothing, opts.alpha, opts.window)
        self.tracker = tracker or IoUTracker()
        self.aggregate = opts.aggregate
        self.max_batch = opts.max_batch
        self.min_track = opts.min_track
        self._next_index = 0
        self._frame_scores: list[float | None] = []
        # Haar cascades keep scratch state while they scan, so each thread analysing frames borrows its own copy
        # (BlazeFace is a torch module in inference mode: one serves every thread).
        self._detectors: queue.SimpleQueue[FaceDetector] = queue.SimpleQueue()
        self._detectors.put(self.detector)
        self.engine = choose_engine(opts.engine, self.detector.backend, self.device)
        self._device_analyser: Any = None
        if self.engine == "device":
            from chromaflow.core.device_faces import DeviceFaceAnalyser  # imports this module

            self._device_analyser = DeviceFaceAnalyser(
                self.detector, self.classifier, self.crop, self.device, self.max_batch
            )

    def _make_detector(self, name: str, min_face: int) -> FaceDetector:
        return FaceDetector(cast(Backend, name), min_size=min_face, device=str(self.device))  # checked above

    @staticmethod
    def _make_classifier(
        classifier: str | nn.Module, path: str | Path | None, name: str | None
    ) -> tuple[nn.Module, str]:
        if isinstance(classifier, nn.Module):
            return classifier, name or type(classifier).__name__
        if path is not None:  # that classifier's architecture, its weights from a file
            return registry.get_spec(classifier).builder.load(path), classifier
        return registry.load(classifier), classifier

    def reset(self) -> None:
        """Start a new video (or a new scene): tracks, smoothing and collected scores are cleared."""
        self.tracker.reset()
        self.smoother = ScoreSmoother(self.smoother.method, self.smoother.alpha, self.smoother.window)
        self._next_index = 0
        self._frame_scores = []

    @torch.inference_mode()
    def classify(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Fake scores (1 - P(REAL)) for 256 x 256 RGB uint8 crops, in batches of ``max_batch``."""
        out = []
        for start in range(0, len(crops), self.max_batch):
            batch = torch.from_numpy(np.stack(crops[start : start + self.max_batch])).to(self.device)
            x = batch.permute(0, 3, 1, 2).float() / 255.0
            out.append(1.0 - torch.sigmoid(self.classifier(x).float()).cpu().numpy())
        return np.concatenate(out) if out else np.zeros(0, dtype=np.float32)

    def _borrow_detector(self) -> FaceDetector:
        if self.detector.backend != "haar":
            return self.detector
        try:
            return self._detectors.get_nowait()
        except queue.Empty:
            d = self.detector
            return FaceDetector(
                "haar",
                min_size=d.min_size,
                min_score=d.min_score,
                haar_neighbors=d.haar_neighbors,
                haar_scale_factor=d.haar_scale_factor,
                max_faces=d.max_faces,
            )

    def analyse(self, frames: Sequence[Any]) -> list[FrameFaces]:
        """Stage (1) for RGB uint8 frames (any order, any thread): faces and raw fake scores of each frame.

        All faces of the call are classified in one batch. A frame's result depends on that frame alone (and, to
        float rounding, on the classifier batch it shared), never on earlier calls. With the device engine,
        ``frames`` may also be a uint8 ``(N, H, W, 3)`` tensor already on the device."""
        if self._device_analyser is not None:
            return list(self._device_analyser.analyse(frames))
        rgb = [as_rgb_frame(f) for f in frames]
        if not rgb:
            return []
        detector = self._borrow_detector()
        try:
            detections = detector.detect_batch(rgb)
        finally:
            if detector.backend == "haar":
                self._detectors.put(detector)
        crops = [
            crop_face(f, face.box, self.crop)
            for f, faces in zip(rgb, detections, strict=True)
            for face in faces
        ]
        raw = self.classify(crops).tolist()
        out, k = [], 0
        for faces in detections:
            out.append(FrameFaces(tuple(faces), tuple(float(v) for v in raw[k : k + len(faces)])))
            k += len(faces)
        return out

    def track(self, faces: FrameFaces, index: int | None = None) -> FrameResult:
        """Stage (2), for frames in order: track ids and smoothed scores of the next frame's stage-(1) result.

        ``index`` numbers the frame (default: one after the previous frame)."""
        if index is not None:
            self._next_index = index
        ids = self.tracker.update([face.box for face in faces.faces])
        hits = {t.id: t.hits for t in self.tracker.tracks}
        scored = []
        for face, fake, track in zip(faces.faces, faces.raw_scores, ids, strict=True):
            # smoothed also while the track is not reported yet, so its score is warm when it is
            smoothed = self.smoother.update(track, fake)
            if hits.get(track, 1) >= self.min_track:
                scored.append(FaceScore(track, face.box, smoothed, fake, face.score))
        self.smoother.forget({t.id for t in self.tracker.tracks})
        result = FrameResult(self._next_index, tuple(sorted(scored, key=lambda s: s.track)))
        self._next_index += 1
        self._frame_scores.append(result.score)
        return result

    def score_frames(self, frames: Sequence[Any], start_index: int | None = None) -> list[FrameResult]:
        """Score a batch of consecutive RGB uint8 frames; all their faces are classified in one batch.

        ``start_index`` numbers the first frame (default: continue from the previous batch)."""
        analysed = self.analyse(frames)
        if start_index is not None:
            self._next_index = start_index
        return [self.track(faces) for faces in analysed]

    def score_video(self, frames: Sequence[Any], batch: int = 8) -> tuple[list[FrameResult], VideoSummary]:
        """Convenience: score a whole list of frames from a fresh state and summarise."""
        self.reset()
        results = []
        for start in range(0, len(frames), batch):
            results.extend(self.score_frames(frames[start : start + batch]))
        return results, self.finish()

    def finish(self) -> VideoSummary:
        """The per-video summary of everything scored since the last reset."""
        present = [s for s in self._frame_scores if s is not None]
        mean = float(np.mean(present)) if present else None
        confident = confident_aggregate(present)
        chosen = confident if self.aggregate == "confident" else mean
        return VideoSummary(
            score=chosen,
            mean=mean,
            confident=confident,
            frames=len(self._frame_scores),
            frames_with_faces=len(present),
            model=self.model_name,
            detector=self.detector.name,
            aggregate=self.aggregate,
        )


def choose_engine(engine: str, backend: str, device: torch.device) -> Literal["device", "host"]:
    """Where stage (1) runs: ``"device"`` asks for the device-resident path (BlazeFace only), ``"host"`` for the
    OpenCV one, ``"auto"`` takes the device path for BlazeFace on CUDA (on a CPU the host path is faster, see
    ``benchmarks/deepfake_engines.py``)."""
    check_analysis_engine(engine)
    if engine == "host":
        return "host"
    if engine == "device":
        if backend != "blazeface":
            raise UsageError(
                f"the device analysis engine needs the BlazeFace detector, not {backend}; "
                "use detector='blazeface' or engine='host'"
            )
        return "device"
    return "device" if backend == "blazeface" and device.type == "cuda" else "host"
