"""BlazeFace front-camera face detector (MediaPipe; Bazarevsky et al. 2019) in torch.

Loads the converted state_dict (``blazeface.pth``, batch-norm folded into the convs) with
``torch.load(weights_only=True)`` and the 896 anchors (``anchors.npy``). Input: RGB 128 x 128, pixels mapped to
``p / 127.5 - 1``. Facts: ``shared/reference/blazeface.md``.
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from chromaflow.core.errors import ModelError
from chromaflow.core.weights_io import load_tensors

INPUT_SIZE = 128
NUM_ANCHORS = 896
MIN_SCORE = 0.75
NMS_IOU = 0.3
SCORE_CLAMP = 100.0


class BlazeBlock(nn.Module):
    """Depthwise 3x3 + pointwise 1x1 with a (max-pooled, channel-padded) residual shortcut, then ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.extra = cout - cin
        self.convs = nn.Sequential(
            nn.Conv2d(cin, cin, 3, stride=stride, padding=0 if stride == 2 else 1, groups=cin),
            nn.Conv2d(cin, cout, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride == 2:
            shortcut = F.max_pool2d(x, 2)
            x = F.pad(x, (0, 2, 0, 2))
        else:
            shortcut = x
        if self.extra > 0:
            shortcut = F.pad(shortcut, (0, 0, 0, 0, 0, self.extra))
        return F.relu(self.convs(x) + shortcut)


class BlazeFace(nn.Module):
    """The front model: returns raw scores (N, 896, 1) and raw box regressions (N, 896, 16)."""

    def __init__(self) -> None:
        super().__init__()
        spec1 = [(24, 24, 1), (24, 28, 1), (28, 32, 2), (32, 36, 1), (36, 42, 1), (42, 48, 2), (48, 56, 1)]
        spec1 += [(56, 64, 1), (64, 72, 1), (72, 80, 1), (80, 88, 1)]
        self.backbone1 = nn.Sequential(
            nn.Conv2d(3, 24, 5, stride=2), nn.ReLU(inplace=True), *(BlazeBlock(*s) for s in spec1)
        )
        self.backbone2 = nn.Sequential(BlazeBlock(88, 96, 2), *(BlazeBlock(96, 96) for _ in range(4)))
        self.classifier_8 = nn.Conv2d(88, 2, 1)
        self.classifier_16 = nn.Conv2d(96, 6, 1)
        self.regressor_8 = nn.Conv2d(88, 32, 1)
        self.regressor_16 = nn.Conv2d(96, 96, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``x``: (N, 3, 128, 128) already normalised to [-1, 1]."""
        n = x.shape[0]
        x = F.pad(x, (1, 2, 1, 2))
        f16 = self.backbone1(x)  # 88 x 16 x 16
        f8 = self.backbone2(f16)  # 96 x 8 x 8

        def flat(t: torch.Tensor, width: int) -> torch.Tensor:
            return t.permute(0, 2, 3, 1).reshape(n, -1, width)

        scores = torch.cat([flat(self.classifier_8(f16), 1), flat(self.classifier_16(f8), 1)], 1)
        boxes = torch.cat([flat(self.regressor_8(f16), 16), flat(self.regressor_16(f8), 16)], 1)
        return scores, boxes


@dataclass(frozen=True)
class Detection:
    """One face in [0, 1] coordinates of the network input: box (ymin, xmin, ymax, xmax), 6 keypoints (x, y)."""

    box: tuple[float, float, float, float]
    keypoints: tuple[tuple[float, float], ...]
    score: float

    def as_row(self) -> list[float]:
        """The reference layout: ymin, xmin, ymax, xmax, 12 keypoint coordinates, score."""
        return [*self.box, *(c for kp in self.keypoints for c in kp), self.score]


def decode_boxes(raw: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """Raw regressions (..., 896, 16) -> (..., 896, 16): ymin, xmin, ymax, xmax, then 6 keypoints (x, y)."""
    scale = float(INPUT_SIZE)
    xa, ya, wa, ha = anchors[:, 0], anchors[:, 1], anchors[:, 2], anchors[:, 3]
    xc = raw[..., 0] / scale * wa + xa
    yc = raw[..., 1] / scale * ha + ya
    w = raw[..., 2] / scale * wa
    h = raw[..., 3] / scale * ha
    out = [yc - h / 2, xc - w / 2, yc + h / 2, xc + w / 2]
    for k in range(6):
        out.append(raw[..., 4 + 2 * k] / scale * wa + xa)
        out.append(raw[..., 5 + 2 * k] / scale * ha + ya)
    return torch.stack(out, -1)


def _iou_one_to_many(box: torch.Tensor, others: torch.Tensor) -> torch.Tensor:
    """IoU of one (ymin, xmin, ymax, xmax) box with many."""
    y0 = torch.maximum(box[0], others[:, 0])
    x0 = torch.maximum(box[1], others[:, 1])
    y1 = torch.minimum(box[2], others[:, 2])
    x1 = torch.minimum(box[3], others[:, 3])
    inter = (y1 - y0).clamp(min=0) * (x1 - x0).clamp(min=0)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (others[:, 2] - others[:, 0]) * (others[:, 3] - others[:, 1])
    return inter / (area + areas - inter).clamp(min=1e-12)


def weighted_nms(decoded: torch.Tensor, scores: torch.Tensor, iou: float = NMS_IOU) -> list[Detection]:
    """Blend overlapping detections: repeatedly take the best, average it with all boxes overlapping it by more
    than ``iou`` (weights = scores), report the mean score, and drop the group."""
    order = torch.argsort(scores, descending=True)
    decoded, scores = decoded[order], scores[order]
    result: list[Detection] = []
    while decoded.shape[0] > 0:
        overlap = _iou_one_to_many(decoded[0, :4], decoded[:, :4]) > iou
        overlap[0] = True
        group, weights = decoded[overlap], scores[overlap]
        merged = (group * weights[:, None]).sum(0) / weights.sum()
        vals = merged.tolist()
        result.append(
            Detection(
                box=(vals[0], vals[1], vals[2], vals[3]),
                keypoints=tuple((vals[4 + 2 * k], vals[5 + 2 * k]) for k in range(6)),
                score=float(weights.mean()),
            )
        )
        decoded, scores = decoded[~overlap], scores[~overlap]
    return result


class BlazeFaceDetector:
    """BlazeFace with its anchors, decoding and weighted NMS, on 128 x 128 RGB inputs."""

    def __init__(
        self,
        net: BlazeFace,
        anchors: torch.Tensor,
        min_score: float = MIN_SCORE,
        iou: float = NMS_IOU,
        device: torch.device | str = "cpu",
    ) -> None:
        self.device = torch.device(device)
        self.net = net.to(self.device).eval()
        self.anchors = anchors.to(self.device, torch.float32)
        self.min_score = min_score
        self.iou = iou

    @staticmethod
    def preprocess(images: np.ndarray) -> torch.Tensor:
        """(N, 128, 128, 3) or (128, 128, 3) RGB uint8/float in [0, 255] -> (N, 3, 128, 128) in [-1, 1]."""
        arr = np.asarray(images, dtype=np.float32)
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4 or arr.shape[1:] != (INPUT_SIZE, INPUT_SIZE, 3):
            raise ValueError(f"BlazeFace needs (N, 128, 128, 3) RGB inputs, got {arr.shape}")
        return torch.from_numpy(arr).permute(0, 3, 1, 2) / 127.5 - 1.0

    @torch.inference_mode()
    def raw(self, images: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw scores (N, 896, 1) and regressions (N, 896, 16) on the CPU."""
        scores, boxes = self.net(self.preprocess(images).to(self.device))
        return scores.float().cpu(), boxes.float().cpu()

    @torch.inference_mode()
    def detect(self, images: np.ndarray) -> list[list[Detection]]:
        """Detections per image, in [0, 1] coordinates of the 128 x 128 input."""
        raw_scores, raw_boxes = self.raw(images)
        decoded = decode_boxes(raw_boxes, self.anchors.cpu())
        probs = torch.sigmoid(raw_scores.clamp(-SCORE_CLAMP, SCORE_CLAMP)).squeeze(-1)
        out = []
        for i in range(decoded.shape[0]):
            keep = probs[i] >= self.min_score
            out.append(weighted_nms(decoded[i][keep], probs[i][keep], self.iou))
        return out


def _require(path: Path) -> None:
    if not path.is_file():
        raise ModelError(
            f"BlazeFace file {path} does not exist; download it with `chromaflow models download`"
        )


def load_net(weights: str | Path) -> BlazeFace:
    """The BlazeFace net in eval mode from ``blazeface.pth`` (``torch.load(weights_only=True)``: tensors only)."""
    weights = Path(weights)
    _require(weights)
    net = BlazeFace()
    try:
        state = load_tensors(weights)  # sizes checked first, then torch.load(weights_only=True)
        net.load_state_dict(state)
    except Exception as exc:
        raise ModelError(
            f"cannot load BlazeFace weights {weights}: {exc}. The file is damaged or not the front-model "
            "state_dict; download it again with `chromaflow models download blazeface`"
        ) from exc
    return net.eval()


def load_anchors(anchors: str | Path) -> torch.Tensor:
    """The (896, 4) anchors from ``anchors.npy`` (read without pickle), as float32."""
    anchors = Path(anchors)
    _require(anchors)
    try:
        anc = np.load(anchors, allow_pickle=False)
    except Exception as exc:
        raise ModelError(f"cannot read BlazeFace anchors {anchors}: {exc}; download them again") from exc
    if anc.shape != (NUM_ANCHORS, 4):
        raise ModelError(f"BlazeFace anchors {anchors} have shape {anc.shape}, expected ({NUM_ANCHORS}, 4)")
    return torch.from_numpy(anc.astype(np.float32))


def load_blazeface(
    weights: str | Path, anchors: str | Path, device: torch.device | str = "cpu", min_score: float = MIN_SCORE
) -> BlazeFaceDetector:
    """Build the detector from ``blazeface.pth`` (safe ``weights_only`` load) and ``anchors.npy``."""
    _require(Path(weights))
    _require(Path(anchors))
    return BlazeFaceDetector(load_net(weights), load_anchors(anchors), min_score=min_score, device=device)
