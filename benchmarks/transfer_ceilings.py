"""How much keyframe transfer can still gain from non-local matching and a learned fusion (issue 18's evidence).

Issue 18 asks for deep-feature matching against the keyframes and a memory of recent frames, joined with the flow
transfer by a learned fusion, for +2.3 dB (key 0) and +2.3 dB (keys 0 + last). This script measures, on the tuning
sequences (bmx-trees, car-shadow, kite-surf; with ``--sequences`` also the reporting ones, breakdance, dog and
scooter-black, which no choice here looked at), what that design can give at most, before anything is trained:

- **match**: the matching's colour alone. Features: torchvision's ImageNet MobileNetV2 on L* (stride-8 and stride-16
  maps, each L2-normalised, at stride 8), similarity = cosine - ``LIGHTNESS_WEIGHT`` x (L* difference / 100)^2,
  top-8 softmax (temperature 0.03) over the keyframes and the memory (every 4th frame of the chain, the 3 nearest,
  cells the chain colours with confidence >= 0.6), upsampled with a guided filter on L*.
- **oracle flow|match**: per pixel, whichever of the two is nearer the truth (a loose upper bound of any fusion of
  the two: no real fusion knows the truth).
- **oracle flow|chain|fill|match**: the same over four candidates (the chains' raw colour and the fill are the flow
  transfer's own parts).
- **fused, fitted elsewhere**: a per-pixel fusion ``flow + alpha (match - flow)``, alpha = sigmoid of a linear map of
  the fusion's reliability cues (chain confidence, chain lightness match, matching confidence and similarity,
  |match - flow|, |grad L*|, L*, and their 9x9 means), gated by (1 - chain confidence), fitted by squared error on
  the tuning sequences other than this one (``--fit-on``; a tuning sequence is scored leave-one-out, a reporting
  sequence on the fit of all three). Trained on real frames, this is as
  favourable as training data for the fusion can be; a fusion trained on synthetic clips did worse (stop note).
- **confidence^g**: the flow transfer's chain/fill compose with its confidence raised to ``g`` (is the confidence
  calibrated?), the best ``g`` of (0.5, 0.7, 1.5) per sequence, chosen with the truth (an upper bound again).

Figures are dB relative to the flow transfer (``auto`` today): 10 log10(MSE_flow / MSE_x), MSE of ab at the
working resolution against the area-resized truth, averaged over every ``--every``-th non-key frame; a proxy of our
PSNR (L* is the frame's own, so RGB error follows ab error).

    .venv/bin/python benchmarks/transfer_ceilings.py [--sequences a,b,...] [--fit-on bmx-trees,car-shadow,kite-surf]
        [--every 2]

Needs ``mobilenet-v2-imagenet`` in the model cache (``chromaflow models download mobilenet-v2-imagenet``). Writes
benchmarks/results/transfer_ceilings.json.
"""

import argparse
import json
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transfer as bench  # the sibling benchmark: sequences and the protocol's inputs

from chromaflow.core.arrays import F32
from chromaflow.core.nets.mobilenet_v2 import MobileNetV2Features, imagenet_features, imagenet_gray
from chromaflow.core.transfer import KeyframeTransfer
from chromaflow.core.transfer.guided import guided_upsample
from chromaflow.core.transfer.lab_arrays import hwc, resize_plane
from chromaflow.core.transfer.propagate import chain_colour

OUT = bench.ROOT / "benchmarks" / "results" / "transfer_ceilings.json"
TUNING = ("bmx-trees", "car-shadow", "kite-surf")
LIGHTNESS_WEIGHT = 4.0
TOP_K, TEMPERATURE = 8, 0.03
MEMORY_EVERY, MEMORY_SIZE, MEMORY_CONF = 4, 3, 0.6
GAMMAS = (0.5, 0.7, 1.5)


class Encoder:
    """L* ``(h, w)`` -> features ``(C + 1, ceil(h / 8), ceil(w / 8))``: normalised stride-8 and stride-16 maps, and
    L*/100 on the same grid as the last channel."""

    def __init__(self, net: MobileNetV2Features) -> None:
        self.net = net.eval()

    def __call__(self, l_work: F32) -> Tensor:
        with torch.inference_mode():
            maps = self.net(imagenet_gray(torch.from_numpy(l_work)[None, None]), strides=(8, 16))
        fine = F.normalize(maps[8][0], dim=0)
        coarse = F.interpolate(maps[16], size=fine.shape[1:], mode="bilinear", align_corners=False)[0]
        feats = F.normalize(torch.cat((fine, F.normalize(coarse, dim=0))), dim=0)
        grid = (int(fine.shape[1]), int(fine.shape[2]))
        return torch.cat((feats, torch.from_numpy(resize_plane(l_work, grid))[None] / 100.0))


@dataclass(frozen=True)
class Source:
    """A frame to match against: features, ab ``(gh, gw, 2)`` and whether each cell may be matched ``(gh, gw)``."""

    feats: Tensor
    ab: F32
    usable: np.ndarray


def source(feats: Tensor, ab_work: F32, conf_work: F32 | None) -> Source:
    grid = (int(feats.shape[1]), int(feats.shape[2]))
    usable = np.ones(grid, bool) if conf_work is None else resize_plane(conf_work, grid) >= MEMORY_CONF
    return Source(feats, resize_plane(ab_work, grid), usable)


def match_colour(query: Tensor, sources: Sequence[Source], l_work: F32) -> tuple[F32, F32, F32]:
    """``(ab (h, w, 2), confidence (h, w), best similarity (h, w))`` at the working resolution of ``l_work``."""
    c = int(query.shape[0])
    grid = (int(query.shape[1]), int(query.shape[2]))
    q = query.reshape(c, -1).T
    cand = torch.cat([s.feats.reshape(c, -1).T[torch.from_numpy(s.usable.reshape(-1))] for s in sources])
    cand_ab = torch.from_numpy(np.concatenate([s.ab.reshape(-1, 2)[s.usable.reshape(-1)] for s in sources]))
    sim = q[:, :-1] @ cand[:, :-1].T - LIGHTNESS_WEIGHT * (q[:, -1:] - cand[:, -1:].T) ** 2
    top, idx = sim.topk(min(TOP_K, int(cand.shape[0])), dim=1)
    w = torch.softmax(top / TEMPERATURE, dim=1)
    ab_k = cand_ab[idx]
    ab = (w[..., None] * ab_k).sum(dim=1)
    spread = torch.sqrt((w[..., None] * (ab_k - ab[:, None]) ** 2).sum(dim=(1, 2)) + 1e-6)
    conf = ((top[:, 0] - 0.4) / 0.45).clamp(0, 1) / (1 + (spread / 12.0) ** 2)
    h, w_ = l_work.shape
    l_grid = resize_plane(l_work, grid)
    ab_up = guided_upsample(l_grid, ab.reshape(*grid, 2).numpy().astype(np.float32), l_work, 1, 16.0)

    def up(plane: Tensor) -> F32:
        small = plane.reshape(grid).numpy().astype(np.float32)
        return np.asarray(cv2.resize(small, (w_, h), interpolation=cv2.INTER_LINEAR), dtype=np.float32)

    return np.asarray(ab_up, dtype=np.float32), up(conf), up(top[:, 0])


@dataclass(frozen=True)
class FrameParts:
    """One non-key frame at the working resolution: truth, candidates and the fusion's cues."""

    truth: F32  # (h, w, 2)
    candidates: dict[str, F32]  # flow, chain, fill, match: (h, w, 2)
    conf: F32  # (h, w) the chains' combined confidence
    cues: F32  # (7, h, w)


def cue_planes(
    l_work: F32, conf: F32, chain_match: F32, flow: F32, match: F32, m_conf: F32, m_sim: F32
) -> F32:
    gy, gx = np.gradient(l_work)
    disagree = np.sqrt(((match - flow) ** 2).sum(-1)) / 30.0
    planes = (conf, chain_match, m_conf, m_sim, disagree, np.sqrt(gx * gx + gy * gy) / 10.0, l_work / 100.0)
    return np.stack(planes).astype(np.float32)


def frame_parts(kt: KeyframeTransfer, t: int, truth_full: F32, encode: "FeatureCache") -> FrameParts:
    """The flow transfer's output and parts (through its internals: this is a measurement) and the matching's."""
    res = kt._result(t)
    l_work = res.l_work
    h, w = l_work.shape
    flow = hwc(kt.ab_work(t))
    chains, confs, sources = [], [], []
    for direction, k in ((1, kt.prev_key(t)), (-1, kt.next_key(t))):
        state = kt._chain(direction, k, t) if k is not None else None
        if k is None or state is None:
            continue
        ab_c, conf_c, _ = chain_colour(state, kt._key(k).data, l_work, kt.params)
        chains.append(ab_c)
        confs.append(conf_c)
        sources.append(source(encode(k), kt._key(k).data.ab_work, None))
        step = 1 if t > k else -1
        memory = list(range(k + step * MEMORY_EVERY, t, step * MEMORY_EVERY))[-MEMORY_SIZE:]
        for m in memory:
            mem = kt._chain(direction, k, m)
            if mem is not None:
                ab_m, conf_m, _ = chain_colour(mem, kt._key(k).data, kt.work_luma(m), kt.params)
                sources.append(source(encode(m), ab_m, conf_m))
    weights = np.stack(confs) + 1e-6
    chain = (weights[..., None] * np.stack(chains)).sum(0) / weights.sum(0)[..., None]
    match, m_conf, m_sim = match_colour(encode(t), sources, l_work)
    truth = np.asarray(cv2.resize(truth_full, (w, h), interpolation=cv2.INTER_AREA), dtype=np.float32)
    return FrameParts(
        truth,
        {"flow": flow, "chain": chain.astype(np.float32), "fill": kt._fill(t, res, l_work), "match": match},
        res.conf,
        cue_planes(l_work, res.conf, res.any_match, flow, match, m_conf, m_sim),
    )


class FeatureCache:
    """Features of a transfer's frames, each computed once."""

    def __init__(self, encoder: Encoder, kt: KeyframeTransfer) -> None:
        self.encoder, self.kt = encoder, kt
        self.seen: dict[int, Tensor] = {}

    def __call__(self, n: int) -> Tensor:
        if n not in self.seen:
            self.seen[n] = self.encoder(self.kt.work_luma(n))
        return self.seen[n]


def mse(a: F32, b: F32) -> float:
    return float(((a - b) ** 2).sum(-1).mean())


def gain_db(parts: FrameParts, ab: F32) -> float:
    """10 log10(MSE of the flow transfer / MSE of ``ab``)."""
    return float(
        10 * np.log10(max(mse(parts.candidates["flow"], parts.truth), 1e-9) / max(mse(ab, parts.truth), 1e-9))
    )


def oracle(parts: FrameParts, names: Sequence[str]) -> F32:
    """Per pixel, the candidate nearest the truth."""
    stack = np.stack([parts.candidates[n] for n in names])
    err = ((stack - parts.truth) ** 2).sum(-1)
    pick = err.argmin(0)
    return np.take_along_axis(stack, pick[None, ..., None], axis=0)[0]


def powered_compose(parts: FrameParts, gamma: float) -> F32:
    """The chains/fill compose with confidence^gamma (gamma 1 is today's, up to the full-size sampling)."""
    c = (parts.conf**gamma)[..., None]
    return np.asarray(c * parts.candidates["chain"] + (1 - c) * parts.candidates["fill"], dtype=np.float32)


def fusion_features(parts: FrameParts) -> Tensor:
    x = torch.from_numpy(parts.cues)
    context = F.avg_pool2d(x[None], 9, 1, 4, count_include_pad=False)[0]
    return torch.cat((x, context, torch.ones_like(x[:1])))


def fit_fusion(train: Sequence[FrameParts], steps: int = 300, seed: int = 0) -> Tensor:
    """Weights of the linear alpha map, fitted by squared ab error on ``train`` (every other pixel)."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    data = [
        (
            fusion_features(p)[:, ::2, ::2],
            *(torch.from_numpy(p.candidates[n][::2, ::2]) for n in ("flow", "match")),
            torch.from_numpy(p.truth[::2, ::2]),
        )
        for p in train
    ]
    weights = torch.zeros(int(data[0][0].shape[0]), requires_grad=True)
    opt = torch.optim.Adam([weights], lr=0.01)
    for _ in range(steps):
        loss = torch.zeros(())
        for i in rng.integers(0, len(data), 8):
            x, flow, match, truth = data[i]
            loss = loss + ((apply_fusion(weights, x, flow, match) - truth) ** 2).sum(-1).mean()
        opt.zero_grad()
        (loss / 8).backward()
        opt.step()
    return weights.detach()


def apply_fusion(weights: Tensor, x: Tensor, flow: Tensor, match: Tensor) -> Tensor:
    alpha = torch.sigmoid(torch.einsum("f,fhw->hw", weights, x)) * (1 - x[0].clamp(0, 1))
    return flow + alpha[..., None] * (match - flow)


def collect(name: str, frames_limit: int | None, every: int, encoder: Encoder) -> dict[str, list[FrameParts]]:
    seq = bench.Sequence(name, bench.load_sequence(bench.DATA / name, frames_limit))
    n = len(seq.gt)
    out: dict[str, list[FrameParts]] = {}
    for setting, keys in (("key0", [0]), ("key0_last", [0, n - 1])):
        kt = KeyframeTransfer({k: seq.gt[k] for k in keys}, lambda t: seq.gray[t], n, mode="auto")
        cache = FeatureCache(encoder, kt)
        frames = [t for t in range(1, n, every) if t not in keys]
        out[setting] = [frame_parts(kt, t, seq.gt_ab[t], cache) for t in frames]
        bench.log(f"[{name}] {setting}: {len(frames)} frames")
    return out


def score(
    parts: dict[str, dict[str, list[FrameParts]]], fit_on: Sequence[str]
) -> dict[str, dict[str, dict[str, float]]]:
    """Per sequence and setting: the gains (dB) of the module docstring; the fusion scored on a sequence is fitted
    on the sequences of ``fit_on`` other than it."""
    result: dict[str, dict[str, dict[str, float]]] = {}
    for name, settings in parts.items():
        others = [p for other in fit_on if other != name for ps in parts[other].values() for p in ps]
        weights = fit_fusion(others) if others else None
        for setting, frames in settings.items():
            row = {
                "match": np.mean([gain_db(p, p.candidates["match"]) for p in frames]),
                "oracle_flow_match": np.mean([gain_db(p, oracle(p, ("flow", "match"))) for p in frames]),
                "oracle_all": np.mean(
                    [gain_db(p, oracle(p, ("flow", "chain", "fill", "match"))) for p in frames]
                ),
                "best_confidence_power": max(
                    np.mean(
                        [
                            gain_db(p, powered_compose(p, g)) - gain_db(p, powered_compose(p, 1.0))
                            for p in frames
                        ]
                    )
                    for g in GAMMAS
                ),
            }
            if weights is not None:
                with torch.no_grad():
                    row["fused_fitted_elsewhere"] = np.mean(
                        [
                            gain_db(
                                p,
                                apply_fusion(
                                    weights,
                                    fusion_features(p),
                                    *(torch.from_numpy(p.candidates[n]) for n in ("flow", "match")),
                                ).numpy(),
                            )
                            for p in frames
                        ]
                    )
            result.setdefault(name, {})[setting] = {k: float(v) for k, v in row.items()}
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sequences", default=",".join(TUNING))
    ap.add_argument(
        "--fit-on",
        default=",".join(TUNING),
        help="sequences the fusion is fitted on (never the one it is scored on); all must be in --sequences",
    )
    ap.add_argument("--every", type=int, default=2, help="score every N-th non-key frame")
    ap.add_argument("--frames", type=int, default=None, help="first N frames of each sequence (default all)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    encoder = Encoder(imagenet_features(progress=False))
    names = args.sequences.split(",")
    fit_on = [n for n in args.fit_on.split(",") if n]
    if not set(fit_on) <= set(names):
        sys.exit(f"--fit-on {args.fit_on}: every sequence it names must also be in --sequences")
    parts = {name: collect(name, args.frames, args.every, encoder) for name in names}
    result = score(parts, fit_on)
    columns = list(next(iter(next(iter(result.values())).values())))
    print(f"{'sequence':14s} {'setting':10s} " + " ".join(f"{c:>24s}" for c in columns))
    for name, settings in result.items():
        for setting, row in settings.items():
            print(f"{name:14s} {setting:10s} " + " ".join(f"{row[c]:+24.2f}" for c in columns))
    payload = {
        "protocol": "dB relative to the flow transfer (auto): 10 log10(MSE_flow / MSE_x), ab at the working "
        "resolution against the area-resized truth, every N-th non-key frame (benchmarks/transfer_ceilings.py)",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads},
        "every": args.every,
        "fit_on": fit_on,
        "frames_per_sequence": args.frames,
        "gains_db": result,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(args.out)
    bench.log(f"wrote {args.out}")


if __name__ == "__main__":
    main()
