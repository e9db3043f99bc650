"""The fused keyframe transfer's last step: flow-chain colour and matching colour joined per pixel.

:class:`Fusion` runs :class:`~chromaflow.core.nets.transfer_fusion.TransferFusion` with the project's fitted weights
(``core/weights/transfer-fusion.pt``, model card beside it; fitted on Big Buck Bunny, never on the evaluation
sequences) and gives, at the working resolution, the matching's weight ``alpha`` ``(h, w)`` and the fused
confidence ``chain + alpha * (matching - chain)``. The transfer adds ``alpha * (match - flow)``, smoothed over
three frames, to the flow colour (:class:`~chromaflow.core.transfer.KeyframeTransfer`). Weights are read with
:func:`chromaflow.core.weights_io.load_state_dict` (sizes checked, no pickled code run).
"""

import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from chromaflow.core.arrays import F32
from chromaflow.core.errors import ModelError
from chromaflow.core.nets.transfer_fusion import TransferFusion
from chromaflow.core.weights_io import load_state_dict

WEIGHTS = Path(__file__).resolve().parent.parent / "weights" / "transfer-fusion.pt"
DISAGREE_SCALE = 30.0  # ab units: the colour disagreement the net sees as 1
GRADIENT_SCALE = 10.0  # L* units per working pixel


@dataclass(frozen=True)
class Fused:
    """The fusion's answer for one frame at the working resolution."""

    alpha: F32  # (h, w) weight of the matching's colour
    conf: F32  # (h, w) fused confidence


@dataclass(frozen=True)
class FusionCues:
    """What the fusion is told about one frame at the working resolution: how far each colour source can be
    trusted and how much they disagree (not the colours)."""

    l_work: F32  # (h, w) L*
    flow_ab: F32  # (h, w, 2) the flow transfer's colour (chains and their fill)
    chain_conf: F32  # (h, w) the chains' combined confidence
    chain_match: F32  # (h, w) how well the frame's lightness matches the keyframes' along the chains
    match_ab: F32  # (h, w, 2) the matching's colour
    match_conf: F32  # (h, w) the matching's confidence
    match_sim: F32  # (h, w) the matching's best feature similarity


def fusion_inputs(cues: FusionCues) -> torch.Tensor:
    """The net's input ``(1, 7, h, w)``: chain confidence, chain lightness match, matching confidence, matching
    similarity, |matching - flow| / 30, |grad L*| / 10 and L* / 100."""
    diff = np.sqrt(((cues.match_ab - cues.flow_ab) ** 2).sum(axis=-1)) / DISAGREE_SCALE
    gy, gx = np.gradient(cues.l_work)
    planes = [
        cues.chain_conf,
        cues.chain_match,
        cues.match_conf,
        cues.match_sim,
        diff,
        np.sqrt(gx * gx + gy * gy) / GRADIENT_SCALE,
        cues.l_work / 100.0,
    ]
    return torch.from_numpy(np.stack(planes).astype(np.float32))[None]


def load_fusion(path: str | Path = WEIGHTS) -> TransferFusion:
    """The fusion net filled from ``path``, in eval mode."""
    p = Path(path)
    if not p.is_file():
        raise ModelError(f"the transfer fusion weights {p} are missing; reinstall chromaflow")
    state = {k: v.float() for k, v in load_state_dict(p).items()}
    net = TransferFusion()
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        raise ModelError(
            f"{p} does not hold TransferFusion weights: {' '.join(str(err).split())[:300]}"
        ) from err
    return net.eval()


class Fusion:
    """Thread-safe runner of the fusion net on numpy planes (one lock around the net)."""

    def __init__(self, net: TransferFusion | None = None) -> None:
        self.net = net if net is not None else load_fusion()
        self._lock = threading.Lock()

    def __call__(self, cues: FusionCues) -> Fused:
        x = fusion_inputs(cues)
        with self._lock, torch.inference_mode():
            alpha_t = self.net(x)
        alpha = np.ascontiguousarray(alpha_t[0, 0].numpy(), dtype=np.float32)
        conf = np.asarray(cues.chain_conf + alpha * (cues.match_conf - cues.chain_conf), dtype=np.float32)
        return Fused(alpha, conf)
