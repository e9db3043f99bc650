"""Device-resident deepfake analysis: BlazeFace tiles, detection, face crops and MesoNet on the scorer's device.

The same steps as the host path of :meth:`DeepfakeScorer.analyse <chromaflow.core.deepfake.DeepfakeScorer.analyse>`
(:class:`~chromaflow.core.faces.FaceDetector` with BlazeFace, then :func:`~chromaflow.core.deepfake.crop_face`
and MesoNet), but every per-pixel step is a tensor operation on the device, so on a GPU frames go up once as uint8
and only the candidate detections (a few hundred numbers) and the fake scores come back:

1. BlazeFace tiles: the detector's tile pyramid (:meth:`FaceDetector.tiles`) cut and resized to 128 x 128 as matrix
   products with the resize weights of the level's tile side (pixel-area weights when shrinking, as
   ``cv2.INTER_AREA``; bilinear weights with half-pixel centres when enlarging, as ``cv2.INTER_LINEAR``): one
   product per tile row along H, one per tile column along W, all frames at once; samples past the frame get no
   weight, which is the host path's zero padding. Tiles are rounded to integers, as the host's uint8 tiles are.
2. The BlazeFace net and box decoding on the device; the candidates above the detector's threshold come to the host,
   where the weighted NMS of :mod:`chromaflow.core.nets.blazeface` and the detector's clustering, agreement and
   finishing rules run unchanged on the CPU (small tensors, and the rules stay identical to the host path's).
3. Face crops of :func:`crop_face`'s geometry (computed on the host from the boxes, with the same rounding): edge
   replication is index clamping, the gather is one indexing operation for all faces, and the resize to 256 is a
   batched matrix product with the same area / bilinear weights. Crops are rounded to integers like the host's.
4. MesoNet on the batch of crops; fake score = 1 - P(REAL).

Differences from the host path come only from OpenCV's fixed-point rounding (its bilinear weights have 11 bits) and
float summation order: tile and crop pixels differ by at most a level or two, and rarely.
"""

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from chromaflow.core.deepfake import CROP_SIZE, CropSpec
from chromaflow.core.deepfake_results import FrameFaces
from chromaflow.core.device_engine import PlaneTransfer, area_matrix
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.faces import Face, FaceDetector, as_rgb_frame, merge_tile_faces
from chromaflow.core.nets import blazeface

TILE = blazeface.INPUT_SIZE
TILE_BATCH = 512  # BlazeFace tiles per forward pass
FRAME_CHUNK = 16  # frames whose tiles are cut at once (bounds the float copy of the frames)


# --------------------------------------------------------------------------------------------- resize weights


@lru_cache(maxsize=64)
def _linear_matrix(n_out: int, n_in: int) -> Tensor:
    """``(n_out, n_in)`` bilinear weights with half-pixel centres and clamped borders (``cv2.INTER_LINEAR``,
    ``align_corners=False``). float64, CPU."""
    pos = (torch.arange(n_out, dtype=torch.float64) + 0.5) * (n_in / n_out) - 0.5
    pos = pos.clamp(0.0, n_in - 1.0)
    left = pos.floor()
    frac = pos - left
    left_i = left.long()
    right_i = (left_i + 1).clamp(max=n_in - 1)
    out = torch.zeros(n_out, n_in, dtype=torch.float64)
    rows = torch.arange(n_out)
    out.index_put_((rows, left_i), 1.0 - frac, accumulate=True)
    out.index_put_((rows, right_i), frac, accumulate=True)
    return out


def resize_matrix(n_out: int, n_in: int) -> Tensor:
    """Weights resizing ``n_in`` samples to ``n_out``: pixel area when shrinking, bilinear otherwise (the host
    path's choice of ``INTER_AREA`` / ``INTER_LINEAR``). float64, CPU, ``(n_out, n_in)``."""
    return area_matrix(n_out, n_in) if n_in > n_out else _linear_matrix(n_out, n_in)


# --------------------------------------------------------------------------------------------- tile plan


@dataclass(frozen=True)
class _Level:
    """One tile side of the pyramid: tile rows ``ys`` and columns ``xs`` as a grid, the side's resize weights
    ``(128, side)`` on the device, and which grid cells (row-major) are tiles of the detector's list."""

    side: int
    ys: tuple[int, ...]
    xs: tuple[int, ...]
    weights: Tensor
    cells: tuple[int, ...]


@dataclass(frozen=True)
class _TilePlan:
    tiles: tuple[tuple[int, int, int], ...]  # (x0, y0, side) in the detector's order
    levels: tuple[_Level, ...]
    order: Tensor  # position in the detector's order of each tile as the levels produce them


def _plan(detector: FaceDetector, height: int, width: int, device: torch.device) -> _TilePlan:
    tiles = tuple(detector.tiles(height, width))
    index = {t: i for i, t in enumerate(tiles)}
    levels, order = [], []
    for side in dict.fromkeys(t[2] for t in tiles):
        ys = tuple(sorted({t[1] for t in tiles if t[2] == side}))
        xs = tuple(sorted({t[0] for t in tiles if t[2] == side}))
        cells = []
        for iy, y in enumerate(ys):
            for ix, x in enumerate(xs):
                if (x, y, side) in index:
                    cells.append(iy * len(xs) + ix)
                    order.append(index[(x, y, side)])
        weights = resize_matrix(TILE, side).to(device, torch.float32)
        levels.append(_Level(side, ys, xs, weights, tuple(cells)))
    return _TilePlan(tiles, tuple(levels), torch.tensor(order, device=device))


def _level_tiles(x: Tensor, lv: _Level) -> Tensor:
    """Every tile of one level for float frames ``(n, H, W, 3)``: ``(n, rows * cols, 128, 128, 3)``, row-major.

    One product per tile row along H (only the rows the tile covers), one per tile column along W; samples past
    the frame get no weight, which is the host path's zero padding."""
    n, height, width = (int(v) for v in x.shape[:3])
    flat = x.reshape(n, height, width * 3)
    bands = []
    for y0 in lv.ys:
        y1 = min(height, y0 + lv.side)
        bands.append(torch.matmul(lv.weights[:, : y1 - y0], flat[:, y0:y1]))  # (n, 128, W * 3)
    rows = torch.cat(bands, 1).reshape(n, -1, width, 3).permute(0, 1, 3, 2).contiguous()  # (n, R, 3, W)
    cols = []
    for x0 in lv.xs:
        x1 = min(width, x0 + lv.side)
        cols.append(torch.matmul(rows[..., x0:x1], lv.weights[:, : x1 - x0].T))  # (n, R, 3, 128)
    ny, nx = len(lv.ys), len(lv.xs)
    grid = torch.stack(cols, 3).reshape(n, ny, TILE, 3, nx, TILE).permute(0, 1, 4, 2, 5, 3)
    return grid.reshape(n, ny * nx, TILE, TILE, 3)


# --------------------------------------------------------------------------------------------- the analyser


class DeviceFaceAnalyser:
    """Faces and fake scores of RGB uint8 frames, computed on ``device`` (module docstring).

    ``detector`` must use BlazeFace; its tile pyramid, thresholds and merging rules are used as they are.
    ``classifier`` is a MesoNet module (logit of P(REAL)); ``crop`` the crop framing; ``max_batch`` the most crops
    per classifier pass."""

    def __init__(
        self,
        detector: FaceDetector,
        classifier: nn.Module,
        crop: CropSpec,
        device: torch.device | str,
        max_batch: int = 64,
    ) -> None:
        if detector.backend != "blazeface":
            raise UsageError(
                f"the device analysis path needs the BlazeFace detector, not {detector.backend}; "
                "use detector='blazeface' or engine='host'"
            )
        self.device = torch.device(device)
        self.detector = detector
        blaze = detector._blaze
        self.net: nn.Module = blaze.net
        if blaze.device != self.device:
            self.net = copy.deepcopy(blaze.net).to(self.device)
        self.net.eval()
        self.anchors: Tensor = blaze.anchors.to(self.device, torch.float32)
        self.blaze_min_score: float = blaze.min_score
        self.blaze_iou: float = blaze.iou
        self.classifier = classifier
        self.crop = crop
        self.max_batch = max_batch
        self.transfer = PlaneTransfer(self.device)
        self._plans: dict[tuple[int, int, int], _TilePlan] = {}

    # --- input ------------------------------------------------------------------------------------------------
    def upload(self, frames: Any) -> list[Tensor]:
        """Frames on the device as uint8 ``(n, H, W, 3)`` batches, one per run of same-shaped frames, in order.

        ``frames``: a uint8 tensor ``(N, H, W, 3)`` (any device), or a sequence of frames that
        :func:`~chromaflow.core.faces.as_rgb_frame` accepts (numpy arrays, gray frames expanded)."""
        if isinstance(frames, Tensor):
            if frames.dtype != torch.uint8 or frames.dim() != 4 or frames.shape[-1] != 3:
                raise InputError(
                    f"frame tensors must be uint8 (N, H, W, 3) RGB, got {frames.dtype} {tuple(frames.shape)}"
                )
            return [frames.to(self.device, non_blocking=True)] if frames.shape[0] else []
        rgb = [as_rgb_frame(f) for f in frames]
        runs: list[list[np.ndarray]] = []
        for f in rgb:
            if runs and runs[-1][0].shape == f.shape:
                runs[-1].append(f)
            else:
                runs.append([f])
        return [self.transfer.upload(run) for run in runs]

    # --- stage 1: tiles ---------------------------------------------------------------------------------------
    def _tile_plan(self, height: int, width: int) -> _TilePlan:
        key = (height, width, self.detector.min_size)  # the pyramid depends on min_size
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = _plan(self.detector, height, width, self.device)
        return plan

    @torch.inference_mode()
    def tile_batch(self, frames: Tensor) -> Tensor:
        """Every BlazeFace tile of uint8 frames ``(N, H, W, 3)`` on the device: ``(N, T, 3, 128, 128)`` float, in
        ``[0, 255]``, integer-valued, tiles in the order of ``detector.tiles(H, W)``."""
        height, width = int(frames.shape[1]), int(frames.shape[2])
        plan = self._tile_plan(height, width)
        x = frames.to(self.device).float()
        parts = [_level_tiles(x, lv)[:, list(lv.cells)] for lv in plan.levels]
        tiles = torch.cat(parts, 1)
        out = torch.empty_like(tiles)
        out[:, plan.order] = tiles
        # channels stay last in memory: the convolutions run faster on that layout (CPU and CUDA)
        return out.round_().clamp_(0.0, 255.0).permute(0, 1, 4, 2, 3)

    # --- stage 2: detection -----------------------------------------------------------------------------------
    @torch.inference_mode()
    def detect(self, frames: Tensor) -> list[list[Face]]:
        """Faces of uint8 frames ``(N, H, W, 3)`` on the device, by the host detector's rules."""
        n, height, width = (int(v) for v in frames.shape[:3])
        plan = self._tile_plan(height, width)
        found: list[list[Face]] = []
        for start in range(0, n, FRAME_CHUNK):
            chunk = frames[start : start + FRAME_CHUNK]
            tiles = self.tile_batch(chunk).flatten(0, 1)
            tile_ids, decoded, probs = self._candidates(tiles)
            per_tile = len(plan.tiles)
            raw: list[list[Face]] = [[] for _ in range(chunk.shape[0])]
            for t in torch.unique(tile_ids).tolist():
                pick = tile_ids == t
                i, j = divmod(t, per_tile)
                x0, y0, side = plan.tiles[j]
                for d in blazeface.weighted_nms(decoded[pick], probs[pick], self.blaze_iou):
                    ymin, xmin, ymax, xmax = d.box
                    box = (x0 + xmin * side, y0 + ymin * side, x0 + xmax * side, y0 + ymax * side)
                    kps = tuple((x0 + kx * side, y0 + ky * side) for kx, ky in d.keypoints)
                    raw[i].append(Face(box, d.score, kps))
            for faces in raw:
                found.append(self.detector.finish(merge_tile_faces(faces, plan.tiles), (height, width)))
        return found

    def _candidates(self, tiles: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Tile index, decoded box row (16) and probability of every anchor above the detector's threshold, on the
        CPU, tiles in order and anchors in order within a tile (the order the host path feeds its NMS)."""
        ids, rows, probs = [], [], []
        for start in range(0, tiles.shape[0], TILE_BATCH):
            x = tiles[start : start + TILE_BATCH] / 127.5 - 1.0
            raw_scores, raw_boxes = self.net(x)
            p = torch.sigmoid(raw_scores.float().clamp(-blazeface.SCORE_CLAMP, blazeface.SCORE_CLAMP))[..., 0]
            keep = (p >= self.blaze_min_score).nonzero()
            t, a = keep[:, 0], keep[:, 1]
            ids.append((t + start).cpu())
            rows.append(blazeface.decode_boxes(raw_boxes.float()[t, a], self.anchors[a]).cpu())
            probs.append(p[t, a].cpu())
        return torch.cat(ids), torch.cat(rows), torch.cat(probs)

    # --- stage 3: crops ---------------------------------------------------------------------------------------
    @torch.inference_mode()
    def crop_batch(self, frames: Tensor, owners: Sequence[int], boxes: Sequence[tuple[float, ...]]) -> Tensor:
        """Face crops ``(F, 3, 256, 256)`` float in ``[0, 255]`` (integer-valued) of ``boxes`` in frames
        ``owners`` of uint8 ``(N, H, W, 3)`` device frames, framed as :func:`crop_face` frames them."""
        height, width = int(frames.shape[1]), int(frames.shape[2])
        geo = [_crop_geometry(box, self.crop) for box in boxes]
        if not geo:
            return torch.zeros(0, 3, CROP_SIZE, CROP_SIZE, device=self.device)
        n_max = max(n for _, _, n in geo)
        steps = torch.arange(n_max)
        rows = torch.stack([(top + steps).clamp(0, height - 1) for _, top, _ in geo]).to(self.device)
        cols = torch.stack([(left + steps).clamp(0, width - 1) for left, _, _ in geo]).to(self.device)
        weights = torch.zeros(len(geo), CROP_SIZE, n_max, dtype=torch.float32)
        for k, (left, top, n) in enumerate(geo):
            outside = min(width, left + n) <= max(0, left) or min(height, top + n) <= max(0, top)
            if not outside:  # a crop wholly outside the frame stays black, as crop_face makes it
                weights[k, :, :n] = _crop_matrix(n)
        weights = weights.to(self.device, non_blocking=True)
        owner = torch.tensor(list(owners), device=self.device)
        patch = frames[owner[:, None, None], rows[:, :, None], cols[:, None, :]].float()  # (F, n, n, 3)
        f = patch.shape[0]
        y = torch.bmm(weights, patch.reshape(f, n_max, n_max * 3)).reshape(f, CROP_SIZE, n_max, 3)
        z = torch.matmul(weights[:, None], y)  # (F, 256, 256, 3): along W for every output row
        return z.permute(0, 3, 1, 2).round_().clamp_(0.0, 255.0)

    # --- stage 4: classification and the whole analysis -------------------------------------------------------
    @torch.inference_mode()
    def classify(self, crops: Tensor) -> Tensor:
        """Fake scores (1 - P(REAL)) on the CPU for crops ``(F, 3, 256, 256)`` in ``[0, 255]``."""
        out = [torch.zeros(0)]
        for start in range(0, crops.shape[0], self.max_batch):
            x = crops[start : start + self.max_batch] / 255.0
            out.append((1.0 - torch.sigmoid(self.classifier(x).float())).cpu())
        return torch.cat(out)

    @torch.inference_mode()
    def analyse(self, frames: Any) -> list[FrameFaces]:
        """Faces (best first) and raw fake scores of each frame, as :meth:`DeepfakeScorer.analyse` returns them."""
        out: list[FrameFaces] = []
        for batch in self.upload(frames):
            detections = self.detect(batch)
            owners = [i for i, faces in enumerate(detections) for _ in faces]
            boxes = [face.box for faces in detections for face in faces]
            raw = self.classify(self.crop_batch(batch, owners, boxes)).tolist()
            k = 0
            for faces in detections:
                out.append(FrameFaces(tuple(faces), tuple(float(v) for v in raw[k : k + len(faces)])))
                k += len(faces)
        return out


def _crop_geometry(box: tuple[float, ...], spec: CropSpec) -> tuple[int, int, int]:
    """``(left, top, n)`` of :func:`crop_face`'s square: same expressions, same rounding."""
    x0, y0, x1, y1 = box
    side = max(1.0, max(x1 - x0, y1 - y0) * spec.scale)
    cx = (x0 + x1) / 2
    cy = (y0 + y1) / 2 + spec.shift_y * max(x1 - x0, y1 - y0)
    return round(cx - side / 2), round(cy - side / 2), max(1, round(side))


@lru_cache(maxsize=128)
def _crop_matrix(n: int) -> Tensor:
    """float32 weights resizing an ``n``-sample crop side to 256 (cached: tracked faces keep their size)."""
    return resize_matrix(CROP_SIZE, n).float()
