"""Face detection on video frames of any size: OpenCV's Haar cascade (built in), BlazeFace or MTCNN (when their
weights are present). Boxes come back in frame pixels as ``(x0, y0, x1, y1)`` with a score in [0, 1].

Large frames: the Haar cascade scans its own scale pyramid on a frame shrunk just enough that the smallest wanted
face still covers the cascade's 24-pixel window; BlazeFace (which only finds faces within a band of sizes of its
128 x 128 input, :data:`BLAZE_MIN_FRACTION` to :data:`BLAZE_MAX_FRACTION` of its side) runs on a pyramid of
overlapping square tiles, one level per octave of face size, merged by NMS. MTCNN
(:mod:`chromaflow.core.nets.mtcnn`) builds its own image pyramid whose first level maps the smallest wanted face
onto its 12-pixel window, so it takes frames of any size as they are.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import cv2
import numpy as np

from chromaflow.core.errors import InputError, ModelError, UsageError

Box = tuple[float, float, float, float]
Backend = Literal["haar", "blazeface", "mtcnn", "auto"]
HAAR_FILE = "haarcascade_frontalface_default.xml"
HAAR_WINDOW = 24  # the frontal-face cascade's training window, pixels
BLAZE_MIN_FRACTION = 0.13  # smallest face (fraction of the 128 input) BlazeFace finds reliably
BLAZE_MAX_FRACTION = 0.7  # largest face (same fraction) BlazeFace finds reliably
BLAZE_TILE_OVERLAP = 0.4  # neighbouring tiles share 40 %: a face up to 0.3 of a tile lies whole in one


@dataclass(frozen=True)
class Face:
    """A detected face: box in frame pixels, detector score in [0, 1], optional keypoints (x, y) in pixels."""

    box: Box
    score: float
    keypoints: tuple[tuple[float, float], ...] = field(default=())

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def as_rgb_frame(frame: Any) -> np.ndarray:
    """Check a frame and return it as contiguous HxWx3 uint8 RGB (gray HxW or HxWx1 are expanded)."""
    arr = np.asarray(frame)
    if arr.dtype != np.uint8:
        raise InputError(
            f"frames must be uint8 RGB arrays (HxWx3), got dtype {arr.dtype}; convert with astype"
        )
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] < 1 or arr.shape[1] < 1:
        raise InputError(f"frames must be HxWx3 RGB (or HxW gray) arrays, got shape {arr.shape}")
    return np.ascontiguousarray(arr)


def _intersections(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairwise intersection areas (N, M) of boxes ``(x0, y0, x1, y1)``, and each side's areas (N,) and (M,)."""
    x0 = np.maximum(a[:, None, 0], b[None, :, 0])
    y0 = np.maximum(a[:, None, 1], b[None, :, 1])
    x1 = np.minimum(a[:, None, 2], b[None, :, 2])
    y1 = np.minimum(a[:, None, 3], b[None, :, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    return inter, (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1]), (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) boxes ``(x0, y0, x1, y1)`` -> (N, M)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    inter, area_a, area_b = _intersections(a, b)
    return np.asarray(inter / np.maximum(area_a[:, None] + area_b[None, :] - inter, 1e-9))


def _overlap_of_smaller(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Intersection over the smaller box's area (catches a partial face box inside a whole one)."""
    inter, area_a, area_b = _intersections(a, b)
    return np.asarray(inter / np.maximum(np.minimum(area_a[:, None], area_b[None, :]), 1e-9))


def cluster(
    faces: Sequence[Face], iou: float = 0.3, containment: float = 0.7
) -> list[tuple[Face, list[int]]]:
    """Greedy grouping: take the best face, group every face overlapping it by IoU above ``iou`` or lying
    ``containment`` inside it (or it inside them), repeat. Each group gives its score-weighted mean box, the best
    score and keypoints, and the indices of its members. Best first."""
    if not faces:
        return []
    order = sorted(range(len(faces)), key=lambda i: -faces[i].score)
    boxes = np.array([faces[i].box for i in order], dtype=np.float64)
    scores = np.array([faces[i].score for i in order], dtype=np.float64)
    alive = np.ones(len(order), dtype=bool)
    ious, inside = box_iou(boxes, boxes), _overlap_of_smaller(boxes, boxes)
    out: list[tuple[Face, list[int]]] = []
    for i in range(len(order)):
        if not alive[i]:
            continue
        group = alive & ((ious[i] > iou) | (inside[i] > containment))
        group[i] = True
        w = scores[group]
        x0, y0, x1, y1 = (float(v) for v in (boxes[group] * w[:, None]).sum(0) / max(w.sum(), 1e-9))
        members = [order[j] for j in np.flatnonzero(group)]
        out.append((Face((x0, y0, x1, y1), float(scores[i]), faces[order[i]].keypoints), members))
        alive &= ~group
    return out


def nms(faces: Sequence[Face], iou: float = 0.3, containment: float = 0.7) -> list[Face]:
    """Suppress duplicates (see :func:`cluster`); best first."""
    return [face for face, _ in cluster(faces, iou, containment)]


class FaceDetector:
    """Faces in RGB uint8 frames, boxes in frame pixels.

    ``backend``: ``"haar"`` (OpenCV cascade, always available), ``"blazeface"`` (needs weights: paths, or the
    registry names ``blazeface`` and ``blazeface-anchors``), ``"mtcnn"`` (needs facenet-pytorch's three nets: a
    folder holding ``pnet.pt``, ``rnet.pt`` and ``onet.pt``, or the registry's ``mtcnn-*``; keypoints are its five
    landmarks) or ``"auto"`` (BlazeFace when its weights are found, else Haar). ``min_size``: smallest face side in
    frame pixels (MTCNN searches from this size up). ``min_score``: drop weaker detections.
    """

    def __init__(
        self,
        backend: Backend = "haar",
        *,
        min_size: int = 48,
        min_score: float | None = None,
        blazeface_weights: str | Path | None = None,
        blazeface_anchors: str | Path | None = None,
        mtcnn_weights: str | Path | None = None,
        device: str | None = "cpu",
        haar_neighbors: int = 5,
        haar_scale_factor: float = 1.1,
        max_faces: int = 16,
    ) -> None:
        if backend not in ("haar", "blazeface", "mtcnn", "auto"):
            raise UsageError(f"unknown face detector {backend!r}: use haar, blazeface, mtcnn or auto")
        if min_size < 8:
            raise UsageError(f"min_size must be at least 8 pixels, got {min_size}")
        self.min_size = int(min_size)
        self.max_faces = max_faces
        self._haar: cv2.CascadeClassifier | None = None
        self._blaze: Any = None
        self._mtcnn: Any = None
        if backend == "mtcnn":
            self._mtcnn = _load_mtcnn(mtcnn_weights, device, self.min_size)
        if backend in ("blazeface", "auto"):
            try:
                self._blaze = _load_blazeface(blazeface_weights, blazeface_anchors, device)
            except ModelError:
                if backend == "blazeface":
                    raise
        self.backend: str = "haar"
        if self._mtcnn is not None or self._blaze is not None:
            self.backend = "mtcnn" if self._mtcnn is not None else "blazeface"
        if self.backend == "haar":
            self._haar = _load_haar()
        self.haar_neighbors = haar_neighbors
        self.haar_scale_factor = haar_scale_factor
        self.min_score = (0.75 if self.backend == "blazeface" else 0.0) if min_score is None else min_score

    @property
    def name(self) -> str:
        return self.backend

    def detect(self, frame: Any) -> list[Face]:
        """Faces in one frame, best score first."""
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: Sequence[Any]) -> list[list[Face]]:
        """Faces for each frame of a batch (BlazeFace runs all tiles of all frames in one pass, MTCNN each net on
        all frames of one size)."""
        rgb = [as_rgb_frame(f) for f in frames]
        if self.backend == "blazeface":
            found = self._detect_blazeface(rgb)
        elif self.backend == "mtcnn":
            found = self._detect_mtcnn(rgb)
        else:
            found = [self._detect_haar(f) for f in rgb]
        return [self.finish(faces, f.shape) for faces, f in zip(found, rgb, strict=True)]

    def finish(self, faces: list[Face], shape: tuple[int, ...]) -> list[Face]:
        """Score threshold, NMS, clipping to the frame ``shape``, minimum size and face count of raw faces."""
        h, w = shape[:2]
        kept = []
        for face in nms([f for f in faces if f.score >= self.min_score]):
            x0, y0, x1, y1 = face.box
            box = (max(0.0, x0), max(0.0, y0), min(float(w), x1), min(float(h), y1))
            if max(box[2] - box[0], box[3] - box[1]) >= self.min_size and box[2] > box[0] and box[3] > box[1]:
                kept.append(Face(box, face.score, face.keypoints))
        return kept[: self.max_faces]

    # --- Haar -------------------------------------------------------------------------------------------------
    def _detect_haar(self, frame: np.ndarray) -> list[Face]:
        assert self._haar is not None
        h, w = frame.shape[:2]
        # Shrink so the smallest wanted face covers ~1.25 cascade windows: same faces, far fewer pixels to scan.
        scale = min(1.0, HAAR_WINDOW * 1.25 / self.min_size)
        gray = cv2.cvtColor(frame, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            gray = cv2.resize(
                gray, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA
            )
        min_px = max(HAAR_WINDOW, round(self.min_size * scale))
        if min(gray.shape) < min_px:
            return []
        gray = cv2.equalizeHist(gray)
        rects, _levels, weights = self._haar.detectMultiScale3(
            gray,
            scaleFactor=self.haar_scale_factor,
            minNeighbors=self.haar_neighbors,
            minSize=(min_px, min_px),
            outputRejectLevels=True,
        )
        faces = []
        for (x, y, bw, bh), wgt in zip(
            np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1), strict=True
        ):
            # The last stage's weight (about 2-10 for faces) squashed monotonically to [0, 1): a ranking, not a
            # probability.
            score = float(1.0 - np.exp(-max(float(wgt), 0.0) / 4.0))
            faces.append(Face((x / scale, y / scale, (x + bw) / scale, (y + bh) / scale), score))
        return faces

    # --- BlazeFace --------------------------------------------------------------------------------------------
    def tiles(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """Square tiles ``(x0, y0, side)`` of the pyramid for a frame; tiles may reach past the frame (padded)."""
        out = [(0, 0, max(height, width))]  # the whole frame, padded to a square (as the reference does)
        # One level per octave, down to the first whose smallest findable face is no larger than min_size.
        covered = max(height, width) * BLAZE_MIN_FRACTION
        side = min(height, width) if height != width else height // 2
        while covered > self.min_size and side >= 64:
            step = max(1, int(side * (1 - BLAZE_TILE_OVERLAP)))
            ys = _positions(height, side, step)
            xs = _positions(width, side, step)
            out.extend((x, y, side) for y in ys for x in xs)
            covered, side = side * BLAZE_MIN_FRACTION, side // 2
        return list(dict.fromkeys(out))

    def _detect_blazeface(self, frames: list[np.ndarray]) -> list[list[Face]]:
        crops: list[np.ndarray] = []
        where: list[tuple[int, int, int, int]] = []  # frame index, x0, y0, side
        for i, frame in enumerate(frames):
            h, w = frame.shape[:2]
            for x0, y0, side in self.tiles(h, w):
                crops.append(_tile_128(frame, x0, y0, side))
                where.append((i, x0, y0, side))
        raw: list[list[Face]] = [[] for _ in frames]
        for start in range(0, len(crops), 256):
            dets = self._blaze.detect(np.stack(crops[start : start + 256]))
            for (i, x0, y0, side), found in zip(where[start : start + 256], dets, strict=True):
                for d in found:
                    ymin, xmin, ymax, xmax = d.box
                    box = (x0 + xmin * side, y0 + ymin * side, x0 + xmax * side, y0 + ymax * side)
                    kps = tuple((x0 + kx * side, y0 + ky * side) for kx, ky in d.keypoints)
                    raw[i].append(Face(box, d.score, kps))
        return [merge_tile_faces(raw[i], self.tiles(*frame.shape[:2])) for i, frame in enumerate(frames)]

    # --- MTCNN ------------------------------------------------------------------------------------------------
    def _detect_mtcnn(self, frames: list[np.ndarray]) -> list[list[Face]]:
        out = []
        for found in self._mtcnn.detect(frames):
            faces = []
            for box, prob, marks in zip(found.boxes, found.probs, found.landmarks, strict=True):
                kps = tuple((float(x), float(y)) for x, y in marks)
                faces.append(
                    Face((float(box[0]), float(box[1]), float(box[2]), float(box[3])), float(prob), kps)
                )
            out.append(faces)
        return out


def merge_tile_faces(raw: list[Face], tiles: Sequence[tuple[int, int, int]]) -> list[Face]:
    """One frame's BlazeFace tile detections (in frame pixels) merged: clusters of the same face, each kept when
    nearly the same box was seen by two tiles, or by one when only one tile can hold the face.

    A real face is found, with nearly the same box, by every tile that holds it at a usable scale; a false alarm is
    usually found by one. A face no tile holds whole is a border fragment and needs two views as well.
    """
    kept = []
    for face, members in cluster(raw):
        leader = np.array([raw[members[0]].box])
        agreeing = int((box_iou(leader, np.array([raw[m].box for m in members])) > 0.5).sum())
        if agreeing >= (1 if _views(face.box, tiles) == 1 else 2):
            kept.append(face)
    return kept


def _views(box: Box, tiles: Sequence[tuple[int, int, int]]) -> int:
    """How many tiles hold ``box`` whole, with the face at a size BlazeFace finds (see ``BLAZE_*_FRACTION``)."""
    x0, y0, x1, y1 = box
    size = max(x1 - x0, y1 - y0)
    n = 0
    for tx, ty, side in tiles:
        slack = 0.05 * side
        inside = x0 >= tx - slack and y0 >= ty - slack and x1 <= tx + side + slack and y1 <= ty + side + slack
        n += int(inside and BLAZE_MIN_FRACTION <= size / side <= BLAZE_MAX_FRACTION)
    return n


def _positions(length: int, side: int, step: int) -> list[int]:
    """Tile starts covering ``length`` with tiles of ``side`` every ``step``, the last flush with the end."""
    if side >= length:
        return [0]
    starts = list(range(0, length - side, step))
    starts.append(length - side)
    return starts


def _tile_128(frame: np.ndarray, x0: int, y0: int, side: int) -> np.ndarray:
    """The square ``side`` tile at (x0, y0), zero-padded past the frame, resized to 128 x 128 (INTER_AREA)."""
    h, w = frame.shape[:2]
    tile = frame[y0 : min(h, y0 + side), x0 : min(w, x0 + side)]
    if tile.shape[0] != side or tile.shape[1] != side:
        padded = np.zeros((side, side, 3), dtype=np.uint8)
        padded[: tile.shape[0], : tile.shape[1]] = tile
        tile = padded
    interp = cv2.INTER_AREA if side >= 128 else cv2.INTER_LINEAR
    return cv2.resize(tile, (128, 128), interpolation=interp)


def _load_haar() -> cv2.CascadeClassifier:
    path = Path(cv2.data.haarcascades) / HAAR_FILE  # type: ignore[attr-defined]
    cascade = cv2.CascadeClassifier(str(path))
    if cascade.empty():
        raise ModelError(
            f"OpenCV's Haar cascade {path} is missing or unreadable; reinstall opencv-python-headless 4.x "
            "(OpenCV 5 no longer ships the cascades)"
        )
    return cascade


def _load_blazeface(weights: str | Path | None, anchors: str | Path | None, device: str | None) -> Any:
    from chromaflow.core.device import resolve_device
    from chromaflow.core.nets import blazeface

    dev = resolve_device(device)
    if weights is None or anchors is None:
        from chromaflow.core import registry

        weights = weights or registry.weights_path("blazeface")
        anchors = anchors or registry.weights_path("blazeface-anchors")
    return blazeface.load_blazeface(weights, anchors, device=dev)


def _load_mtcnn(weights: str | Path | None, device: str | None, min_size: int) -> Any:
    """MTCNN from a folder holding facenet-pytorch's ``pnet.pt``, ``rnet.pt`` and ``onet.pt``, or from the registry's
    verified ``mtcnn-pnet``, ``mtcnn-rnet`` and ``mtcnn-onet``."""
    from chromaflow.core.device import resolve_device
    from chromaflow.core.nets import mtcnn

    if weights is not None:
        paths = [Path(weights) / f"{net}.pt" for net in ("pnet", "rnet", "onet")]
    else:
        from chromaflow.core import registry

        paths = [registry.weights_path(f"mtcnn-{net}") for net in ("pnet", "rnet", "onet")]
    return mtcnn.load_mtcnn(*paths, device=resolve_device(device), min_face=min_size)
