"""Deepfake scoring of video frames: faces -> crops -> a classifier (MesoNet, the DFDC winner's EfficientNet-B7 or
its ensemble) -> per-face, per-frame and per-video scores.

Crops. Each classifier declares the crops it takes (:class:`~chromaflow.core.nets.face_input.FaceInput`).
MesoNet was trained on 256 x 256 face crops that show the whole face with some hair, ears and neck, with
OpenCV's Haar box covering a fixed share of the crop side and sitting a little above its centre; ``CROP_SPECS``
holds that share (as its inverse, ``scale``) and offset, measured on the authors' own test images
(``mesonet-test-images``). We reproduce that framing: the crop is a square of ``scale`` x the box side, centred
``shift_y`` box sides below the box centre, padded by edge replication where it leaves the frame, and resized to
256 (INTER_AREA when shrinking, bilinear when enlarging). BlazeFace boxes are a little smaller and lower than
Haar's, so its crop constants differ. MesoNet's pipeline also aligned faces with landmarks; we do not rotate (the
frontal detectors see upright faces). The DFDC winner's EfficientNet takes its authors' crop (:class:`MarginCrop`:
the box widened by a third on each side, clipped to the frame, resized isotropically to 380 on its longer side and
centred on black), ImageNet-normalised; an ensemble's members see the same crops in one batch each.

Scores (fake = P(FAKE) per face, smoothed per track, aggregated per frame and per video) and the result records
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
from chromaflow.core.deepfake_results import dfdc_video_score, median_or_none
from chromaflow.core.device import Placement, resolve_device
from chromaflow.core.errors import UsageError
from chromaflow.core.faces import Backend, Box, FaceDetector, as_rgb_frame
from chromaflow.core.nets import mesonet
from chromaflow.core.nets.ensemble import ClassifierEnsemble
from chromaflow.core.nets.face_input import FaceInput, face_input_of
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


# mtcnn: measured like the others on MesoNet's four test faces (box side 1/1.05-1/1.28 of the crop, 0.02-0.08 of a
# side above its centre); its boxes run from brow to chin, taller than Haar's
CROP_SPECS = {
    "haar": CropSpec(1.41, 0.10),
    "blazeface": CropSpec(1.55, -0.05),
    "mtcnn": CropSpec(1.18, 0.055),
}


@dataclass(frozen=True)
class MarginCrop:
    """The DFDC winners' crop (their ``FaceExtractor`` and ``isotropically_resize_image`` / ``put_to_center``): the
    box (integer pixels) widened by ``width // divisor`` left and right and ``height // divisor`` above and below,
    clipped to the frame (not padded), resized so its longer side is the crop side (INTER_AREA when shrinking,
    INTER_CUBIC when enlarging, the shorter side truncated), and centred on a black square."""

    divisor: int = 3


def margin_crop(frame: np.ndarray, box: Box, spec: MarginCrop, size: int) -> np.ndarray:
    """The ``size`` x ``size`` RGB crop of :class:`MarginCrop`'s rule."""
    x0, y0, x1, y1 = (int(v) for v in box)
    pw, ph = (x1 - x0) // spec.divisor, (y1 - y0) // spec.divisor
    h, w = frame.shape[:2]
    top, bottom = max(y0 - ph, 0), min(max(y1 + ph, 0), h)
    left, right = max(x0 - pw, 0), min(max(x1 + pw, 0), w)
    out = np.zeros((size, size, 3), dtype=np.uint8)
    if bottom <= top or right <= left:
        return out
    patch = frame[top:bottom, left:right]
    ph_, pw_ = patch.shape[:2]
    if max(ph_, pw_) != size:
        scale = size / max(ph_, pw_)
        nw, nh = (size, int(ph_ * scale)) if pw_ > ph_ else (int(pw_ * scale), size)
        interp = cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
        patch = cv2.resize(patch, (max(1, nw), max(1, nh)), interpolation=interp)
    ph_, pw_ = patch.shape[:2]
    oy, ox = (size - ph_) // 2, (size - pw_) // 2
    out[oy : oy + ph_, ox : ox + pw_] = patch
    return out


def crop_face(
    frame: np.ndarray, box: Box, spec: "CropSpec | MarginCrop", size: int = CROP_SIZE
) -> np.ndarray:
    """The ``size`` x ``size`` RGB crop of ``frame`` around ``box``: square framing (:class:`CropSpec`, edge-replicated
    where it leaves the frame) or the DFDC rule (:class:`MarginCrop`)."""
    if isinstance(spec, MarginCrop):
        return margin_crop(frame, box, spec, size)
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
    engine, ``min_track``, threshold, precision; see their fields). ``detector`` / ``classifier`` (positional) and
    the other keywords but ``tracker`` are their keyword form, for direct callers (the hosts pass ``options``):
    given ones replace the options' values. ``tracker``: the face tracker to use (default: a new
    :class:`IoUTracker`).
    """

    def __init__(
        self,
        detector: str | FaceDetector | None = None,
        classifier: str | Path | nn.Module | None = None,
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
        crop: "CropSpec | MarginCrop | None" = None,
        max_batch: int | None = None,
        engine: Engine | None = None,
        min_track: int | None = None,
        threshold: float | None = None,
        precision: str | None = None,
        classifier_arch: str | None = None,
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
            threshold=threshold,
            precision=precision,
            classifier_arch=classifier_arch,
        )
        self.options = opts
        self.device = resolve_device(opts.device)
        self.detector = (
            opts.detector
            if isinstance(opts.detector, FaceDetector)
            else self._make_detector(opts.detector, opts.min_face)
        )
        net, self.model_name = self._make_classifier(
            opts.classifier, opts.classifier_path, opts.classifier_name, opts.classifier_arch
        )
        self.face_input: FaceInput = face_input_of(net)
        self.placement = Placement.resolve(self.device, opts.precision or self.face_input.precision)
        # channels-last lets cuDNN pick its tensor-core convolutions (the EfficientNets); MesoNet stays as it is
        self._memory_format = (
            torch.channels_last
            if self.device.type == "cuda" and not self.face_input.plain
            else torch.contiguous_format
        )
        net = net.to(device=self.device, dtype=self.placement.dtype)
        self.classifier = net.to(memory_format=self._memory_format).eval()
        self.crop = opts.crop or self._default_crop(self.face_input, self.detector.name)
        self.crop_size = self.face_input.size
        self._norm = _normaliser(self.face_input, self.device)
        self.smoother = ScoreSmoother(opts.smoothing, opts.alpha, opts.window)
        self.tracker = tracker or IoUTracker()
        self.aggregate = opts.aggregate
        self.threshold = opts.threshold
        self.max_batch = opts.max_batch
        self.min_track = opts.min_track
        self._next_index = 0
        self._frame_scores: list[float | None] = []
        self._face_members: list[tuple[float, ...]] = []  # per reported face, each member's raw score (dfdc)
        # Haar cascades keep scratch state while they scan, so each thread analysing frames borrows its own copy
        # (BlazeFace is a torch module in inference mode: one serves every thread).
        self._detectors: queue.SimpleQueue[FaceDetector] = queue.SimpleQueue()
        self._detectors.put(self.detector)
        self.engine = choose_engine(
            opts.engine,
            self.detector.backend,
            self.device,
            plain=self.face_input.plain
            and self.placement.dtype == torch.float32
            and not isinstance(net, ClassifierEnsemble)
            and isinstance(self.crop, CropSpec),
        )
        self._device_analyser: Any = None
        if self.engine == "device" and isinstance(self.crop, CropSpec):  # (device implies a square crop)
            from chromaflow.core.device_faces import DeviceFaceAnalyser  # imports this module

            self._device_analyser = DeviceFaceAnalyser(
                self.detector, self.classifier, self.crop, self.device, self.max_batch
            )

    def _make_detector(self, name: str, min_face: int) -> FaceDetector:
        return FaceDetector(cast(Backend, name), min_size=min_face, device=str(self.device))  # checked above

    @staticmethod
    def _make_classifier(
        classifier: str | Path | nn.Module, path: str | Path | None, name: str | None, arch: str | None
    ) -> tuple[nn.Module, str]:
        if isinstance(classifier, nn.Module):
            return classifier, name or type(classifier).__name__
        key = str(classifier).strip().lower()
        if key in registry.MODELS or key in registry.ENSEMBLES:
            if path is not None:  # that classifier's architecture, its weights from a file
                member = registry.members(key)[0]
                return registry.get_spec(member).builder.load(path), name or key
            return registry.load(key, kind="classifier"), name or key
        file = Path(classifier).expanduser()  # a weights file (options checked that it exists)
        return registry.load(file, arch=arch, kind="classifier"), name or file.name

    @staticmethod
    def _default_crop(face_input: FaceInput, detector: str) -> "CropSpec | MarginCrop":
        """The classifier's own crop rule, else the detector's framing for MesoNet-like classifiers."""
        if face_input.margin_divisor is not None:
            return MarginCrop(face_input.margin_divisor)
        return CROP_SPECS.get(detector, CROP_SPECS["haar"])

    def reset(self) -> None:
        """Start a new video (or a new scene): tracks, smoothing and collected scores are cleared."""
        self.tracker.reset()
        self.smoother = ScoreSmoother(self.smoother.method, self.smoother.alpha, self.smoother.window)
        self._next_index = 0
        self._frame_scores = []
        self._face_members = []

    @torch.inference_mode()
    def classify_members(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Fake scores ``(N, M)`` of each ensemble member (M = 1 for one classifier) for RGB uint8 crops of the
        classifier's side, in batches of ``max_batch``: P(FAKE), or 1 - P(REAL) for nets whose logit is of REAL."""
        out = []
        for start in range(0, len(crops), self.max_batch):
            batch = torch.from_numpy(np.stack(crops[start : start + self.max_batch])).to(self.device)
            x = self._norm(batch.permute(0, 3, 1, 2).float() / 255.0)
            x = x.to(self.placement.dtype).contiguous(memory_format=self._memory_format)
            logits = self.classifier(x).float().reshape(x.shape[0], -1)
            prob = torch.sigmoid(logits)
            out.append((prob if self.face_input.logit_of == "fake" else 1.0 - prob).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), dtype=np.float32)

    def classify(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """Fake scores ``(N,)`` for RGB uint8 crops of the classifier's side (an ensemble's: its members' mean)."""
        return self.classify_members(crops).mean(axis=1)

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
            crop_face(f, face.box, self.crop, self.crop_size)
            for f, faces in zip(rgb, detections, strict=True)
            for face in faces
        ]
        members = self.classify_members(crops)
        raw = members.mean(axis=1).tolist()
        per_face = [tuple(float(v) for v in row) for row in members.tolist()]
        out, k = [], 0
        for faces in detections:
            n = len(faces)
            scores = tuple(float(v) for v in raw[k : k + n])
            out.append(FrameFaces(tuple(faces), scores, tuple(per_face[k : k + n])))
            k += n
        return out

    def track(self, faces: FrameFaces, index: int | None = None) -> FrameResult:
        """Stage (2), for frames in order: track ids and smoothed scores of the next frame's stage-(1) result.

        ``index`` numbers the frame (default: one after the previous frame)."""
        if index is not None:
            self._next_index = index
        ids = self.tracker.update([face.box for face in faces.faces])
        hits = {t.id: t.hits for t in self.tracker.tracks}
        members = faces.member_scores or tuple((fake,) for fake in faces.raw_scores)
        scored = []
        for face, fake, track, each in zip(faces.faces, faces.raw_scores, ids, members, strict=True):
            # smoothed also while the track is not reported yet, so its score is warm when it is
            smoothed = self.smoother.update(track, fake)
            if hits.get(track, 1) >= self.min_track:
                scored.append(FaceScore(track, face.box, smoothed, fake, face.score))
                self._face_members.append(each)
        self.smoother.forget({t.id for t in self.tracker.tracks})
        result = FrameResult(
            self._next_index, tuple(sorted(scored, key=lambda s: s.track)), model=self.model_name
        )
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
        scores = {
            "mean": float(np.mean(present)) if present else None,
            "median": median_or_none(present),
            "confident": confident_aggregate(present),
            "dfdc": dfdc_video_score(self._face_members),
        }
        return VideoSummary(
            score=scores[self.aggregate],
            mean=scores["mean"],
            confident=scores["confident"],
            frames=len(self._frame_scores),
            frames_with_faces=len(present),
            model=self.model_name,
            detector=self.detector.name,
            aggregate=self.aggregate,
            median=scores["median"],
            dfdc=scores["dfdc"],
            threshold=self.threshold,
        )


def _normaliser(face_input: FaceInput, device: torch.device) -> Any:
    """``x -> (x - mean) / std`` on ``device`` for pixels / 255 (the identity for MesoNet's plain input)."""
    if face_input.mean == (0.0, 0.0, 0.0) and face_input.std == (1.0, 1.0, 1.0):
        return lambda x: x
    mean = torch.tensor(face_input.mean, device=device).view(1, 3, 1, 1)
    std = torch.tensor(face_input.std, device=device).view(1, 3, 1, 1)
    return lambda x: (x - mean) / std


def choose_engine(
    engine: str, backend: str, device: torch.device, plain: bool = True
) -> Literal["device", "host"]:
    """Where stage (1) runs: ``"device"`` asks for the device-resident path (BlazeFace with a MesoNet-like fp32
    classifier only: ``plain``), ``"host"`` for the OpenCV one, ``"auto"`` takes the device path where it can on
    CUDA (on a CPU the host path is faster, see ``benchmarks/deepfake_engines.py``)."""
    check_analysis_engine(engine)
    if engine == "host":
        return "host"
    if engine == "device":
        if backend != "blazeface":
            raise UsageError(
                f"the device analysis engine needs the BlazeFace detector, not {backend}; "
                "use detector='blazeface' or engine='host'"
            )
        if not plain:
            raise UsageError(
                "the device analysis engine makes MesoNet's 256 px crops in fp32 only; use engine='host' with "
                "this classifier (its crops are made on the host, the classifier still runs on the device)"
            )
        return "device"
    return "device" if backend == "blazeface" and device.type == "cuda" and plain else "host"
