"""Deepfake stage (1) engines: frames/s of ``DeepfakeScorer.analyse`` (BlazeFace + crops + Meso4) at 1920x1080,
host path (OpenCV tiles and crops) against the device-resident path (core/device_faces.py), on the CPU and, when
present, on CUDA; with the agreement of the two paths (face counts, box IoU, score difference).

Frames: the two 1080p DFDC stills of ../shared/data/deepfake-dev/dfdc, repeated; one face each.
Prints a table and writes benchmarks/results/deepfake_engines.json.
Usage: python benchmarks/deepfake_engines.py [--frames 16] [--batch 8] [--shared ../shared]
"""

import argparse
import json
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from chromaflow.core.deepfake import DeepfakeScorer, FrameFaces
from chromaflow.core.faces import FaceDetector, box_iou

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine

HERE = Path(__file__).resolve().parent
STILLS = ("lynaeydofd_fr0.jpg", "mqzvfufzoq_fr0.jpg")


def log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


def scorer(shared: Path, engine: str, device: str) -> DeepfakeScorer:
    detector = FaceDetector(
        "blazeface",
        min_size=80,
        blazeface_weights=shared / "models/blazeface/blazeface.pth",
        blazeface_anchors=shared / "models/blazeface/anchors.npy",
        device=device,
    )
    return DeepfakeScorer(
        detector,
        "meso4-df",
        classifier_path=shared / "models/mesonet/Meso4_DF.h5",
        device=device,
        engine=engine,  # type: ignore[arg-type]
    )


def frames_per_second(
    s: DeepfakeScorer, frames: list[np.ndarray], batch: int
) -> tuple[float, list[FrameFaces]]:
    s.analyse(frames[:batch])  # warm-up: tile plans, kernels
    if s.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    out: list[FrameFaces] = []
    for i in range(0, len(frames), batch):
        out.extend(s.analyse(frames[i : i + batch]))
    if s.device.type == "cuda":
        torch.cuda.synchronize()
    return len(frames) / (time.perf_counter() - start), out


def agreement(a: list[FrameFaces], b: list[FrameFaces]) -> dict[str, float | bool]:
    same_count = all(len(x.faces) == len(y.faces) for x, y in zip(a, b, strict=True))
    ious, diffs = [], []
    for x, y in zip(a, b, strict=True):
        if same_count and x.faces:
            iou = box_iou(np.array([f.box for f in x.faces]), np.array([f.box for f in y.faces]))
            ious.extend(np.diag(iou).tolist())
            diffs.extend(abs(p - q) for p, q in zip(x.raw_scores, y.raw_scores, strict=True))
    return {
        "same_face_counts": same_count,
        "min_box_iou": min(ious, default=float("nan")),
        "max_score_diff": max(diffs, default=float("nan")),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--shared", type=Path, default=HERE.parent.parent / "shared")
    parser.add_argument("--quick", action="store_true", help="8 frames")
    args, _unknown = parser.parse_known_args()  # run_all passes its extra flags to every script
    n = 8 if args.quick else args.frames
    stills = [
        cv2.cvtColor(cv2.imread(str(args.shared / "data/deepfake-dev/dfdc" / name)), cv2.COLOR_BGR2RGB)
        for name in STILLS
    ]
    frames = [stills[i % len(stills)] for i in range(n)]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    rows = []
    for device in devices:
        results = {}
        for engine in ("host", "device"):
            fps, out = frames_per_second(scorer(args.shared, engine, device), frames, args.batch)
            results[engine] = out
            rows.append({"device": device, "engine": engine, "frames_per_s": fps})
            log(f"{device:5s} {engine:6s} {fps:8.2f} frames/s")
        rows.append(
            {"device": device, "engine": "agreement", **agreement(results["host"], results["device"])}
        )
    print(f"{'device':6s} {'engine':7s} {'frames/s':>9s}   (1920x1080, batch {args.batch}, {n} frames)")
    for row in rows:
        if "frames_per_s" in row:
            print(f"{row['device']:6s} {row['engine']:7s} {row['frames_per_s']:9.2f}")
        else:
            print(
                f"{row['device']:6s} agree   counts={row['same_face_counts']} iou>={row['min_box_iou']:.4f} "
                f"|dscore|<={row['max_score_diff']:.4f}"
            )
    record = {"machine": machine(), "size": [1920, 1080], "batch": args.batch, "frames": n, "rows": rows}
    out_path = HERE / "results" / "deepfake_engines.json"
    tmp = out_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(out_path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
