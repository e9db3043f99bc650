"""MTCNN face detector (Zhang et al. 2016, "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks") in torch: three small nets in a cascade, each finding faces among what the last one kept.

- P-net (proposals): fully convolutional on a pyramid of the frame; every 12 x 12 window (stride 2 on each level)
  gets a face probability and four box offsets.
- R-net (refinement): 24 x 24 crops of the proposals; a probability and offsets again.
- O-net (output): 48 x 48 crops; a probability, offsets and five landmarks (eyes, nose, mouth corners).

The parameter names and shapes are those of the weights facenet-pytorch publishes (``facenet_pytorch/data/
{pnet,rnet,onet}.pt``, converted from the authors' Caffe models), so those files load with ``strict=True``. The
cascade reproduces facenet-pytorch's ``detect`` (its pyramid, thresholds, NMS overlaps, box arithmetic and area
resampling), so boxes and landmarks agree with it (``tests/core/test_mtcnn_fidelity.py``). The nets and the resampling
run on the detector's device, frames of one size batched together; the box bookkeeping between the stages (a few
hundred rows) runs in float32 NumPy on the CPU.
"""

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chromaflow.core.errors import ModelError
from chromaflow.core.weights_io import load_state_dict

NetName = Literal["pnet", "rnet", "onet"]
INPUT_SIZES: dict[NetName, int] = {"pnet": 12, "rnet": 24, "onet": 48}
MIN_FACE = 20  # facenet-pytorch's default smallest face side, pixels
FACTOR = 0.709  # pyramid step: each level is this much smaller (about 1/sqrt(2))
THRESHOLDS = (0.6, 0.7, 0.7)  # face probability each net needs (facenet-pytorch's defaults)
CHUNK = 1024  # crops per R-/O-net call


class PNet(nn.Module):
    """Proposal net, fully convolutional: a 12 x 12 window -> (offsets (N, 4, h, w), face probability (N, h, w))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)  # not-face / face logits
        self.conv4_2 = nn.Conv2d(32, 4, 1)  # box offsets in box sides

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_2(x), torch.softmax(self.conv4_1(x), dim=1)[:, 1]


def _flatten_wh_c(x: Tensor) -> Tensor:
    """Flatten a feature map in the order the converted dense weights expect: width, then height, then channel."""
    return x.transpose(1, 3).flatten(1)


class RNet(nn.Module):
    """Refinement net: 24 x 24 crops -> (offsets (N, 4), face probability (N,))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(64 * 3 * 3, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(_flatten_wh_c(self.prelu3(self.conv3(x)))))
        return self.dense5_2(x), torch.softmax(self.dense5_1(x), dim=1)[:, 1]


class ONet(nn.Module):
    """Output net: 48 x 48 crops -> (offsets (N, 4), landmarks (N, 10): five x then five y, in crop sides,
    face probability (N,))."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(128 * 3 * 3, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(_flatten_wh_c(self.prelu4(self.conv4(x)))))
        return self.dense6_2(x), self.dense6_3(x), torch.softmax(self.dense6_1(x), dim=1)[:, 1]


NETS: dict[NetName, Callable[[], nn.Module]] = {"pnet": PNet, "rnet": RNet, "onet": ONet}


# ------------------------------------------------------------------------------------------------ box arithmetic
# (float32 throughout, operation for operation as facenet-pytorch, so that truncation to pixels agrees with it)


def nms(boxes: np.ndarray, scores: np.ndarray, overlap: float, by_min: bool = False) -> np.ndarray:
    """Greedy NMS, best score first: indices kept. Overlap is IoU of ``(x1, y1, x2, y2)`` boxes, or with ``by_min``
    intersection over the smaller box counting boundary pixels (+1), the final stage's rule. A box is dropped when
    its overlap with a kept one exceeds ``overlap``."""
    x1, y1, x2, y2 = (boxes[:, k] for k in range(4))
    one = np.float32(1 if by_min else 0)
    area = (x2 - x1 + one) * (y2 - y1 + one)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i, rest = order[0], order[1:]
        keep.append(i)
        iw = np.maximum(np.float32(0), np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]) + one)
        ih = np.maximum(np.float32(0), np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]) + one)
        inter = iw * ih
        denom = np.minimum(area[i], area[rest]) if by_min else area[i] + area[rest] - inter
        order = rest[inter / denom <= overlap]
    return np.asarray(keep, dtype=np.int64)


def nms_per_frame(
    boxes: np.ndarray, scores: np.ndarray, frame: np.ndarray, overlap: float, by_min: bool = False
) -> np.ndarray:
    """:func:`nms` within each frame (``frame``: each row's frame index); indices kept, frame by frame."""
    kept = [np.flatnonzero(frame == f) for f in np.unique(frame)]
    picks = [rows[nms(boxes[rows], scores[rows], overlap, by_min)] for rows in kept]
    return np.concatenate(picks) if picks else np.zeros(0, dtype=np.int64)


def square(boxes: np.ndarray) -> np.ndarray:
    """Boxes grown to squares of their longer side about the same centre (columns beyond 4 kept)."""
    out = boxes.copy()
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    half = np.float32(0.5)
    out[:, 0] = boxes[:, 0] + w * half - side * half
    out[:, 1] = boxes[:, 1] + h * half - side * half
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def regress(boxes: np.ndarray, offsets: np.ndarray, plus_one: bool = True) -> np.ndarray:
    """Move each box's corners by ``offsets`` (N, 4) in units of its side (R-/O-net boxes count boundary pixels,
    +1; P-net's do not)."""
    out = boxes.copy()
    one = np.float32(1 if plus_one else 0)
    w = boxes[:, 2] - boxes[:, 0] + one
    h = boxes[:, 3] - boxes[:, 1] + one
    for k, side in enumerate((w, h, w, h)):
        out[:, k] = boxes[:, k] + offsets[:, k] * side
    return out


def crop_windows(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """Integer pixel windows ``(x0, y0, x1, y1)`` (end exclusive) of boxes, cut at the frame edges (no padding:
    a box leaving the frame gives a stretched crop, as in facenet-pytorch)."""
    b = np.trunc(boxes[:, :4]).astype(np.int64)
    x0 = np.maximum(b[:, 0], 1) - 1
    y0 = np.maximum(b[:, 1], 1) - 1
    x1 = np.minimum(b[:, 2], width)
    y1 = np.minimum(b[:, 3], height)
    return np.stack([x0, y0, x1, y1], axis=1)


def pyramid_scales(height: int, width: int, min_face: float, factor: float) -> list[float]:
    """Scales of the pyramid: the first maps ``min_face`` onto P-net's 12-pixel window, each next one is
    ``factor`` smaller, down to the level whose shorter side is still 12 pixels."""
    scale = 12.0 / min_face
    side = min(height, width) * scale
    scales = []
    while side >= 12:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def area_windows(length: Tensor, out: int) -> tuple[Tensor, Tensor]:
    """Start and end (exclusive) of each of ``out`` averaging windows over ``length`` pixels (any shape of
    lengths; windows along a new last axis), as torch's area resampling (adaptive average pooling) places them."""
    i = torch.arange(out, device=length.device)
    n = length[..., None]
    return (i * n) // out, -((-(i + 1) * n) // out)


def integral_image(frames: np.ndarray, device: torch.device) -> Tensor:
    """Summed-area tables (N, H + 1, W + 1, 3) on ``device`` of uint8 frames (N, H, W, 3): exact integer box sums
    anywhere (int32 while they fit, else int64; OpenCV computes them on the CPU, torch on a GPU)."""
    small = frames.shape[1] * frames.shape[2] * 255 < 2**31
    if device.type != "cpu":
        return integral_image_torch(torch.from_numpy(frames).to(device))
    depth = cv2.CV_32S if small else cv2.CV_64F  # float64 holds these integer sums exactly
    return torch.from_numpy(np.stack([cv2.integral(f, sdepth=depth) for f in frames]))


def integral_image_torch(frames: Tensor) -> Tensor:
    """:func:`integral_image` computed by torch where ``frames`` (uint8 (N, H, W, 3)) are (on a GPU)."""
    n, h, w, c = frames.shape
    dtype = torch.int32 if h * w * 255 < 2**31 else torch.int64
    table = torch.zeros((n, h + 1, w + 1, c), dtype=dtype, device=frames.device)
    table[:, 1:, 1:] = frames.to(dtype).cumsum(1).cumsum(2)
    return table


def area_resample(
    table: Tensor, frame: Tensor, x0: Tensor, y0: Tensor, x1: Tensor, y1: Tensor, out_h: int, out_w: int
) -> Tensor:
    """Windows ``[y0, y1) x [x0, x1)`` of frames ``frame`` (each (K,)) resampled to (K, 3, out_h, out_w) float32
    by area averaging, equal to ``F.interpolate(mode="area")`` on the crop (same windows, sums exact, the same
    division ``sum / kh / kw``), from the summed-area ``table`` in one gather instead of one call per crop."""
    lo_y, hi_y = area_windows(y1 - y0, out_h)
    lo_x, hi_x = area_windows(x1 - x0, out_w)
    lo_y, hi_y, lo_x, hi_x = lo_y + y0[:, None], hi_y + y0[:, None], lo_x + x0[:, None], hi_x + x0[:, None]
    f = frame[:, None, None]

    def corner(rows: Tensor, cols: Tensor) -> Tensor:
        return table[f, rows[:, :, None], cols[:, None, :]]  # (K, out_h, out_w, 3)

    sums = corner(hi_y, hi_x) - corner(lo_y, hi_x) - corner(hi_y, lo_x) + corner(lo_y, lo_x)
    kh = (hi_y - lo_y).float()[:, :, None, None]
    kw = (hi_x - lo_x).float()[:, None, :, None]
    return (sums.float() / kh / kw).permute(0, 3, 1, 2)


def area_resize(table: Tensor, out_h: int, out_w: int) -> Tensor:
    """Whole frames resized to (N, 3, out_h, out_w) float32 by area averaging, as :func:`area_resample` (the
    windows of all rows, then of all columns, taken with two index selections: no per-pixel gather)."""
    h, w = table.shape[1] - 1, table.shape[2] - 1
    lo_y, hi_y = area_windows(torch.tensor(h, device=table.device), out_h)
    lo_x, hi_x = area_windows(torch.tensor(w, device=table.device), out_w)
    rows = table.index_select(1, hi_y) - table.index_select(1, lo_y)  # (N, out_h, W + 1, 3)
    sums = rows.index_select(2, hi_x) - rows.index_select(2, lo_x)  # (N, out_h, out_w, 3)
    kh = (hi_y - lo_y).float()[None, :, None, None]
    kw = (hi_x - lo_x).float()[None, None, :, None]
    return (sums.float() / kh / kw).permute(0, 3, 1, 2)


def _normalise(x: Tensor) -> Tensor:
    return (x - 127.5) * 0.0078125


# ------------------------------------------------------------------------------------------------ the cascade


@dataclass(frozen=True)
class MtcnnFaces:
    """One frame's faces: ``boxes`` (N, 4) ``(x1, y1, x2, y2)`` in frame pixels (may reach past the frame),
    ``probs`` (N,), ``landmarks`` (N, 5, 2) ``(x, y)``: left eye, right eye, nose, left and right mouth corner."""

    boxes: np.ndarray
    probs: np.ndarray
    landmarks: np.ndarray

    @staticmethod
    def empty() -> "MtcnnFaces":
        return MtcnnFaces(
            np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros((0, 5, 2), np.float32)
        )


class Mtcnn:
    """The three nets and the cascade on RGB uint8 frames.

    ``min_face``: smallest face side searched, in frame pixels (sets the first pyramid level); ``factor``: pyramid
    step; ``thresholds``: face probability P-, R- and O-net each require.
    """

    def __init__(
        self,
        pnet: PNet,
        rnet: RNet,
        onet: ONet,
        *,
        min_face: float = MIN_FACE,
        factor: float = FACTOR,
        thresholds: tuple[float, float, float] = THRESHOLDS,
        device: torch.device | str = "cpu",
    ) -> None:
        if min_face <= 0 or not 0 < factor < 1:
            raise ValueError(f"MTCNN needs min_face > 0 and 0 < factor < 1, got {min_face}, {factor}")
        self.device = torch.device(device)
        self.pnet = pnet.to(self.device).float().eval()
        self.rnet = rnet.to(self.device).float().eval()
        self.onet = onet.to(self.device).float().eval()
        self.min_face = float(min_face)
        self.factor = float(factor)
        self.thresholds = thresholds

    @torch.inference_mode()
    def detect(self, frames: Sequence[np.ndarray]) -> list[MtcnnFaces]:
        """Faces of each RGB uint8 HxWx3 frame; frames of the same size run through each net together."""
        out: list[MtcnnFaces] = [MtcnnFaces.empty()] * len(frames)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, frame in enumerate(frames):
            groups.setdefault(frame.shape, []).append(i)
        for members in groups.values():
            table = integral_image(np.stack([np.asarray(frames[i]) for i in members]), self.device)
            for i, faces in zip(members, self._cascade(table), strict=True):
                out[i] = faces
        return out

    def _cascade(self, table: Tensor) -> list[MtcnnFaces]:
        """The three stages on frames of one size, given as their summed-area ``table``."""
        n = table.shape[0]
        boxes, frame = self._propose(table)
        if len(boxes):
            offsets, probs = self._run(self.rnet, table, boxes, frame, INPUT_SIZES["rnet"], (4,))
            passed = probs > self.thresholds[1]
            boxes = np.concatenate([boxes[passed, :4], probs[passed, None]], axis=1)
            frame, offsets = frame[passed], offsets[passed]
            keep = nms_per_frame(boxes[:, :4], boxes[:, 4], frame, 0.7)
            boxes, frame = square(regress(boxes[keep], offsets[keep])), frame[keep]
        marks = np.zeros((0, 5, 2), np.float32)
        if len(boxes):
            offsets, points, probs = self._run(self.onet, table, boxes, frame, INPUT_SIZES["onet"], (4, 10))
            passed = probs > self.thresholds[2]
            boxes = np.concatenate([boxes[passed, :4], probs[passed, None]], axis=1)
            frame, offsets, points = frame[passed], offsets[passed], points[passed]
            # landmarks are fractions of the (square, not yet regressed) crop box, counting its boundary pixels
            one = np.float32(1)
            xs = (boxes[:, 2:3] - boxes[:, 0:1] + one) * points[:, :5] + boxes[:, 0:1] - one
            ys = (boxes[:, 3:4] - boxes[:, 1:2] + one) * points[:, 5:] + boxes[:, 1:2] - one
            marks = np.stack([xs, ys], axis=2)
            boxes = regress(boxes, offsets)
            keep = nms_per_frame(boxes[:, :4], boxes[:, 4], frame, 0.7, by_min=True)
            boxes, frame, marks = boxes[keep], frame[keep], marks[keep]
        return [MtcnnFaces(boxes[frame == i, :4], boxes[frame == i, 4], marks[frame == i]) for i in range(n)]

    def _propose(self, table: Tensor) -> tuple[np.ndarray, np.ndarray]:
        """P-net on every pyramid level: squared candidate boxes (K, 5) ``(x1, y1, x2, y2, prob)`` and their
        frame indices (K,)."""
        h, w = table.shape[1] - 1, table.shape[2] - 1
        rows, frames = [], []
        for scale in pyramid_scales(h, w, self.min_face, self.factor):
            level = area_resize(table, int(h * scale + 1), int(w * scale + 1))
            offsets, prob = self.pnet(_normalise(level))
            hit = prob >= self.thresholds[0]
            where = hit.nonzero()  # (K, 3): frame, row, column
            cells = where[:, 1:].flip(1).to(prob.dtype)  # (x, y) of each window on this level
            top_left = ((2 * cells + 1) / scale).floor()  # back to frame pixels, as facenet-pytorch rounds
            bottom_right = ((2 * cells + 12) / scale).floor()
            found = torch.cat(
                [top_left, bottom_right, prob[hit][:, None], offsets.permute(0, 2, 3, 1)[hit]], dim=1
            )
            found_np, frame_np = found.cpu().numpy(), where[:, 0].cpu().numpy()
            keep = nms_per_frame(found_np[:, :4], found_np[:, 4], frame_np, 0.5)
            rows.append(found_np[keep])
            frames.append(frame_np[keep])
        if not rows or not sum(len(r) for r in rows):
            return np.zeros((0, 5), np.float32), np.zeros(0, np.int64)
        found_np, frame_np = np.concatenate(rows), np.concatenate(frames)
        keep = nms_per_frame(found_np[:, :4], found_np[:, 4], frame_np, 0.7)
        found_np, frame_np = found_np[keep], frame_np[keep]
        boxes = regress(found_np[:, :5], found_np[:, 5:9], plus_one=False)
        return square(boxes), frame_np

    def _run(
        self,
        net: nn.Module,
        table: Tensor,
        boxes: np.ndarray,
        frame: np.ndarray,
        side: int,
        widths: tuple[int, ...],
    ) -> list[np.ndarray]:
        """``net`` on the crops of ``boxes`` resampled to ``side`` x ``side``: its outputs (widths ``widths``, then
        the face probability) as arrays. A box wholly outside the frame has no crop: zeros, probability 0."""
        windows = crop_windows(boxes, table.shape[2] - 1, table.shape[1] - 1)
        valid = (windows[:, 2] > windows[:, 0]) & (windows[:, 3] > windows[:, 1])
        full = [np.zeros((len(boxes), k), np.float32) for k in widths] + [np.zeros(len(boxes), np.float32)]
        if not valid.any():
            return full
        where = torch.from_numpy(np.concatenate([frame[valid, None], windows[valid]], axis=1)).to(
            table.device
        )
        parts = []
        for start in range(0, len(where), CHUNK):
            f, x0, y0, x1, y1 = where[start : start + CHUNK].unbind(1)
            parts.append(net(_normalise(area_resample(table, f, x0, y0, x1, y1, side, side))))
        for k, arr in enumerate(full):
            arr[valid] = torch.cat([p[k] for p in parts]).float().cpu().numpy()
        return full


# ------------------------------------------------------------------------------------------------ loading


def unwrap_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """facenet-pytorch's files are plain state_dicts; a ``module.`` prefix (a DataParallel save) is dropped."""
    return {k.removeprefix("module."): v for k, v in state.items()}


def load_net(name: NetName, path: str | Path) -> nn.Module:
    """One MTCNN net in eval mode from its weight file (safe ``weights_only`` load, ``strict=True``)."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(
            f"MTCNN {name} weights {path} do not exist; get them with `chromaflow models download mtcnn`"
        )
    net = NETS[name]()
    try:
        net.load_state_dict(unwrap_state(load_state_dict(path)), strict=True)
    except (RuntimeError, ModelError) as exc:
        raise ModelError(
            f"cannot load MTCNN {name} weights from {path}: {str(exc).splitlines()[0]}. The file is damaged or "
            f"holds another net; get facenet-pytorch's {name}.pt with `chromaflow models download mtcnn`"
        ) from exc
    return net.eval()


def load_mtcnn(
    pnet: str | Path,
    rnet: str | Path,
    onet: str | Path,
    *,
    device: torch.device | str = "cpu",
    min_face: float = MIN_FACE,
    thresholds: tuple[float, float, float] = THRESHOLDS,
) -> Mtcnn:
    """The detector from the three weight files."""
    return Mtcnn(
        load_net("pnet", pnet),  # type: ignore[arg-type]
        load_net("rnet", rnet),  # type: ignore[arg-type]
        load_net("onet", onet),  # type: ignore[arg-type]
        min_face=min_face,
        thresholds=thresholds,
        device=device,
    )
