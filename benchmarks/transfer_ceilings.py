"""How much keyframe transfer can still gain from non-local matching and a learned fusion (issue 18's evidence).

Issue 18 asks for deep-feature matching against the keyframes and a memory of recent frames, joined with the flow
transfer by a learned fusion, for +2.3 dB (key 0) and +2.3 dB (keys 0 + last). This script measures, on the tuning
sequences (bmx-trees, car-shadow, kite-surf; with ``--sequences`` also the reporting ones, breakdance, dog and
scooter-black, which no choice here looked at), what that design can give at most, before anything is trained:

- **match**: the matching's colour alone, as ``--transfer auto`` computes it (:mod:`chromaflow.core.transfer.matching`:
  ImageNet MobileNetV2 features with a lightness term, against the keyframes and a memory of recent frames).
- **oracle flow|match**: per pixel, whichever of the two is nearer the truth (a loose upper bound of any fusion of
  the two: no real fusion knows the truth).
- **oracle flow|chain|fill|match**: the same over four candidates (the chains' raw colour and the fill are the flow
  transfer's own parts).
- **fused, fitted elsewhere**: the ``auto`` fusion's form (:mod:`chromaflow.core.nets.transfer_fusion`: a
  logistic model of reliability cues, gated by the chains' doubt), fitted as its trainer fits it
  (:func:`chromaflow.core.training.transfer_fusion.fit`) on the tuning sequences other than this one (``--fit-on``;
  a tuning sequence is scored leave-one-out, a reporting sequence on the fit of all three). Fitted on real frames
  of the same kind, this is as favourable as training data for the fusion can be.
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
import os
import platform
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import transfer as bench  # the sibling benchmark: sequences and the protocol's inputs

from chromaflow.core.arrays import F32
from chromaflow.core.nets.transfer_fusion import TransferFusion
from chromaflow.core.training.transfer_fusion import Sample, fit, fused_ab, sample_of
from chromaflow.core.transfer import KeyframeTransfer
from chromaflow.core.transfer.fusion import fusion_inputs
from chromaflow.core.transfer.keyframes import default_encoder
from chromaflow.core.transfer.matching import FeatureEncoder

OUT = bench.ROOT / "benchmarks" / "results" / "transfer_ceilings.json"
TUNING = ("bmx-trees", "car-shadow", "kite-surf")
GAMMAS = (0.5, 0.7, 1.5)


@dataclass(frozen=True)
class FrameParts:
    """One non-key frame at the working resolution: truth, candidates and the fusion's cues."""

    truth: F32  # (h, w, 2)
    candidates: dict[str, F32]  # flow, chain, fill, match: (h, w, 2)
    conf: F32  # (h, w) the chains' combined confidence
    cues: F32  # (7, h, w)


def frame_parts(kt: KeyframeTransfer, t: int, truth_full: F32) -> FrameParts:
    """What ``auto`` computes for frame ``t`` and the flow transfer's own parts (through its internals: this is a
    measurement)."""
    cues = kt.fusion_cues(t)
    if cues is None:
        raise ValueError(f"frame {t} is a keyframe or no chain reaches it: nothing to fuse")
    res = kt._result(t)
    h, w = cues.l_work.shape
    truth = np.asarray(cv2.resize(truth_full, (w, h), interpolation=cv2.INTER_AREA), dtype=np.float32)
    candidates = {
        "flow": cues.flow_ab,
        "chain": res.ab,
        "fill": kt._fill(t, res, cues.l_work),
        "match": cues.match_ab,
    }
    return FrameParts(truth, candidates, res.conf, fusion_inputs(cues)[0].numpy())


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


def sample(parts: FrameParts) -> Sample:
    """The frame as the fusion's trainer takes it."""
    c = parts.candidates
    return sample_of(torch.from_numpy(parts.cues), c["flow"], c["match"], parts.truth)


def fused(net: TransferFusion, parts: FrameParts) -> F32:
    with torch.no_grad():
        ab = fused_ab(net, {k: v[None] for k, v in sample(parts).items()})
    return np.ascontiguousarray(ab[0].permute(1, 2, 0).numpy())


def collect(
    name: str, frames_limit: int | None, every: int, encoder: FeatureEncoder
) -> dict[str, list[FrameParts]]:
    seq = bench.Sequence(name, bench.load_sequence(bench.DATA / name, frames_limit))
    n = len(seq.gt)
    out: dict[str, list[FrameParts]] = {}
    for setting, keys in (("key0", [0]), ("key0_last", [0, n - 1])):
        refs = {k: seq.gt[k] for k in keys}
        kt = KeyframeTransfer(refs, lambda t: seq.gray[t], n, mode="auto", encoder=encoder)
        frames = [t for t in range(1, n, every) if t not in keys]
        out[setting] = [frame_parts(kt, t, seq.gt_ab[t]) for t in frames]
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
        net = fit([sample(p) for p in others]) if others else None
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
            if net is not None:
                row["fused_fitted_elsewhere"] = np.mean([gain_db(p, fused(net, p)) for p in frames])
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
    encoder = default_encoder()
    if encoder is None:
        sys.exit(
            "the matching encoder is not in the model cache: chromaflow models download mobilenet-v2-imagenet"
        )
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
    bench.write_results(args.out, payload)


if __name__ == "__main__":
    main()
