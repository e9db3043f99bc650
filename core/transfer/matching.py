"""Non-local matching: colour for a frame from the most similar places of its keyframes and a short memory.

Flow chains follow content step by step and lose it for good when motion is too fast or the content leaves and comes
back. Matching does not step: every feature cell of the frame looks, in a deep feature space, for the ``top_k`` most
similar cells among its keyframes and a bounded memory of recent frames that chains coloured confidently, within a
radius that scales with the working resolution (``radius`` is a fraction of the feature grid's longer side, so the
reach in picture terms is the same at any resolution), and takes their colour weighted by a softmax of similarity.

Features: torchvision's ImageNet MobileNetV2 (:mod:`chromaflow.core.nets.mobilenet_v2`) on the frame's L* as
normalised gray RGB; the stride-8 map (32 channels, local texture) and the stride-16 map (96 channels, more
semantic) brought to stride 8, each L2-normalised, joined and normalised again; the cell's mean L*/100 rides along
as a last channel. Similarity is the features' cosine less ``lightness_weight`` times the squared lightness
difference: a match of the right texture but the wrong lightness is usually another object (on the DAVIS tuning
sequences the term made the matching's colour 0.2-0.5 dB better). Colour and confidence come out at
stride 8 and are upsampled to the working resolution guided by L* (fast guided filter), so they follow the frame's
edges.

Confidence of a matched cell: the best similarity on a ramp (``sim_low`` .. ``sim_high``) times the agreement of
the ``top_k`` colours (a cell whose matches disagree gets little).
"""

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from chromaflow.core.arrays import F32
from chromaflow.core.errors import UsageError
from chromaflow.core.nets.mobilenet_v2 import MobileNetV2Features, imagenet_gray
from chromaflow.core.transfer.guided import guided_upsample
from chromaflow.core.transfer.lab_arrays import resize_plane


@dataclass(frozen=True)
class MatchParams:
    """Tuning of the matching (chosen on the tuning sequences only; ``benchmarks/transfer.py``)."""

    top_k: int = 8  # matches kept per cell
    lightness_weight: float = 4.0  # similarity lost per (L* difference / 100)^2: matches keep their lightness
    temperature: float = 0.03  # softmax temperature over the kept similarities
    # search radius as a fraction of the feature grid's longer side; 1.5 reaches the whole frame, as
    # benchmarks/transfer_ceilings.py measured the matching
    radius: float = 1.5
    memory_every: int = 4  # a frame enters the memory every this many frames of a chain
    memory_size: int = 3  # memory frames kept per chain (the most recent before the frame)
    memory_conf: float = 0.6  # chain confidence a memory cell needs to be matched against
    sim_low: float = 0.4  # best similarity at or below which a cell's match confidence is 0
    sim_high: float = 0.85  # ... at or above which it is 1
    spread: float = 12.0  # ab units: disagreement of the top-k colours that halves the confidence
    guided_radius: int = 1  # feature cells: window of the guided upsampling on L*
    guided_eps: float = 16.0  # L* units squared

    def __post_init__(self) -> None:
        if self.top_k < 1:
            raise UsageError(f"top_k must be >= 1, got {self.top_k}")
        if not self.temperature > 0:
            raise UsageError(f"the matching temperature must be > 0, got {self.temperature}")
        if not self.radius > 0:
            raise UsageError(f"the matching radius must be > 0, got {self.radius}")
        if self.memory_every < 1 or self.memory_size < 0:
            raise UsageError("need memory_every >= 1 and memory_size >= 0")
        if self.lightness_weight < 0:
            raise UsageError(f"the lightness weight must be >= 0, got {self.lightness_weight}")
        if not 0 <= self.sim_low < self.sim_high:
            raise UsageError("need 0 <= sim_low < sim_high")


class FeatureEncoder:
    """Frame L* -> normalised stride-8 feature map ``(C + 1, ceil(h / 8), ceil(w / 8))``, L*/100 last (float32, CPU).

    Thread-safe: one lock around the network (torch runs its own threads inside one call).
    """

    def __init__(self, net: MobileNetV2Features) -> None:
        self.net = net.eval()
        self._lock = threading.Lock()

    def __call__(self, l_work: F32) -> Tensor:
        l_t = torch.from_numpy(np.ascontiguousarray(l_work, dtype=np.float32))[None, None]
        with self._lock, torch.inference_mode():
            maps = self.net(imagenet_gray(l_t), strides=(8, 16))
        fine = F.normalize(maps[8][0], dim=0)
        coarse = F.interpolate(maps[16], size=fine.shape[1:], mode="bilinear", align_corners=False)[0]
        feats = F.normalize(torch.cat((fine, F.normalize(coarse, dim=0)), dim=0), dim=0)
        grid = (int(fine.shape[1]), int(fine.shape[2]))
        lightness = torch.from_numpy(resize_plane(l_work, grid))[None] / 100.0
        return torch.cat((feats, lightness), dim=0).contiguous()


@dataclass(frozen=True)
class MatchSource:
    """One frame to match against: its features ``(C, gh, gw)``, colour ``(gh, gw, 2)`` and confidence
    ``(gh, gw)`` on the feature grid."""

    feats: Tensor
    ab: F32
    conf: F32

    @staticmethod
    def of(feats: Tensor, ab_work: F32, conf_work: F32) -> "MatchSource":
        """A source from working-resolution colour ``(h, w, 2)`` and confidence ``(h, w)`` (area-averaged)."""
        grid = (int(feats.shape[1]), int(feats.shape[2]))
        ab = resize_plane(ab_work, grid)
        conf = resize_plane(conf_work, grid)
        return MatchSource(feats, np.ascontiguousarray(ab, dtype=np.float32), conf.astype(np.float32))


def _grid_positions(gh: int, gw: int) -> Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(gh, dtype=torch.float32), torch.arange(gw, dtype=torch.float32), indexing="ij"
    )
    return torch.stack((ys.reshape(-1), xs.reshape(-1)), dim=1)


def match_grid(
    query: Tensor, sources: Sequence[MatchSource], params: MatchParams, min_conf: float
) -> tuple[F32, F32, F32]:
    """``(ab (gh, gw, 2), confidence (gh, gw), best similarity (gh, gw))`` of the query grid from ``sources``.

    Cells of a source whose confidence is below ``min_conf`` are not candidates (keyframes pass 1 everywhere).
    """
    c, gh, gw = (int(s) for s in query.shape)
    if not sources:
        zeros = np.zeros((gh, gw), dtype=np.float32)
        return np.zeros((gh, gw, 2), dtype=np.float32), zeros, zeros
    q = query.reshape(c, -1).T  # (Nq, C)
    reach = params.radius * max(gh, gw)
    keeps = [torch.from_numpy(src.conf.reshape(-1) >= min_conf) for src in sources]
    cand_f = [src.feats.reshape(c, -1).T[keep] for src, keep in zip(sources, keeps, strict=True)]
    cand_ab = [
        torch.from_numpy(src.ab.reshape(-1, 2))[keep] for src, keep in zip(sources, keeps, strict=True)
    ]
    feats = torch.cat(cand_f)
    if feats.shape[0] == 0:
        zeros = np.zeros((gh, gw), dtype=np.float32)
        return np.zeros((gh, gw, 2), dtype=np.float32), zeros, zeros
    ab_c = torch.cat(cand_ab)
    lw = params.lightness_weight
    # cos(q, k) - lw (lq - lk)^2 = [q, 2 lw lq, 1] . [k, lk, -lw lk^2] - lw lq^2 (lightness is the last channel):
    # one matrix product; the last term is the same for all of a query's candidates, so it is added after top-k
    ones = torch.ones_like(q[:, -1:])
    q_aug = torch.cat((q[:, :-1], 2 * lw * q[:, -1:], ones), dim=1)
    k_aug = torch.cat((feats[:, :-1], feats[:, -1:], -lw * feats[:, -1:] ** 2), dim=1)
    sim = q_aug @ k_aug.T
    if reach < math.hypot(gh - 1, gw - 1):  # only then can a candidate be out of reach
        cand_pos = [
            _grid_positions(int(src.feats.shape[1]), int(src.feats.shape[2]))[keep]
            for src, keep in zip(sources, keeps, strict=True)
        ]
        sim = sim.masked_fill(torch.cdist(_grid_positions(gh, gw), torch.cat(cand_pos)) > reach, -math.inf)
    k = min(params.top_k, int(feats.shape[0]))
    top, idx = sim.topk(k, dim=1)
    top = top - lw * q[:, -1:] ** 2
    w = torch.nan_to_num(torch.softmax(top / params.temperature, dim=1), nan=0.0)  # nan: nothing in reach
    ab_k = ab_c[idx]  # (Nq, k, 2)
    ab = (w[..., None] * ab_k).sum(dim=1)
    spread = torch.sqrt((w[..., None] * (ab_k - ab[:, None]) ** 2).sum(dim=(1, 2)) + 1e-6)
    best = top[:, 0].clamp_min(-1.0)
    ramp = ((best - params.sim_low) / (params.sim_high - params.sim_low)).clamp(0.0, 1.0)
    conf = ramp / (1.0 + (spread / params.spread) ** 2)
    return (
        ab.reshape(gh, gw, 2).numpy().astype(np.float32),
        conf.reshape(gh, gw).numpy().astype(np.float32),
        best.clamp_min(0.0).reshape(gh, gw).numpy().astype(np.float32),
    )


def to_working(l_work: F32, ab_grid: F32, conf_grid: F32, params: MatchParams) -> tuple[F32, F32]:
    """Grid colour and confidence at the working resolution of ``l_work``: ab by the fast guided filter on L* (it
    follows the frame's edges), confidence bilinear."""
    h, w = l_work.shape
    conf = cv2.resize(conf_grid, (w, h), interpolation=cv2.INTER_LINEAR)
    l_grid = resize_plane(l_work, ab_grid.shape[:2])
    ab = guided_upsample(l_grid, ab_grid, l_work, params.guided_radius, params.guided_eps)
    return np.asarray(ab, dtype=np.float32), np.clip(np.asarray(conf, dtype=np.float32), 0.0, 1.0)


def memory_frames(key: int, n: int, params: MatchParams) -> list[int]:
    """The memory frames of frame ``n`` on the chain from keyframe ``key``: every ``memory_every``-th frame from
    the keyframe, strictly between the two, the ``memory_size`` nearest to ``n``."""
    step = 1 if n > key else -1
    dist = abs(n - key)
    picks = [key + step * j for j in range(params.memory_every, dist, params.memory_every)]
    return picks[-params.memory_size :] if params.memory_size else []
