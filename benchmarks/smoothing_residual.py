"""Where the flicker that survives smoothing lives (issue 23): beyond the window, or where the flow is unsure?

On the TUNING sequences of ``benchmarks/smoothing.py`` only (parameters are chosen there), for the ``base`` net's
automatic colour before and after smoothing (defaults) and for the ground truth through the same model-resolution
round trip, this measures

- CDC per frame step ``d`` (1, 2, 4, 8; the CDC of ``smoothing.py`` averages 1, 2 and 4) and its excess over the
  ground truth's: colour changes the content itself makes (motion, new objects) are in the ground truth too, so only
  the excess is flicker. An excess that grows with ``d`` past the radius is hue drift slower than the window sees.
- the chroma warp error (the one of ``smoothing.py``: flow between consecutive ground-truth luma planes) by bins of
  that flow's forward-backward confidence, with each bin's share of the pixels: residual flicker concentrated in the
  low bins is where the smoother's own flow fails too (motion, occlusion).

    python benchmarks/smoothing_residual.py [--frames 24] [--out benchmarks/results/smoothing_residual.json]
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from smoothing import (
    TUNING,
    colorizer_outputs,
    load_sequence,
    render,
    shared_dir,
    smooth,
    to_model,
    upsample,
)

from chromaflow.core.flow import compute_flow, forward_backward_confidence, warp
from chromaflow.core.metrics import cdc

RESULTS = Path(__file__).resolve().parent / "results" / "smoothing_residual.json"
STEPS = (1, 2, 4, 8)
BINS = (0.0, 0.05, 0.37, 0.8, 1.01)  # exp(-1) ~ 0.37 is smoothing.py's occlusion test


def warp_error_by_confidence(
    full: list[np.ndarray], flows: list[np.ndarray], confidence: list[np.ndarray]
) -> list[float]:
    """Mean squared ab difference (per channel) between consecutive frames, per confidence bin."""
    sums = np.zeros(len(BINS) - 1)
    counts = np.zeros(len(BINS) - 1)
    for t in range(len(full) - 1):
        prev = warp(full[t].transpose(1, 2, 0), flows[t])
        diff = np.sum((prev - full[t + 1].transpose(1, 2, 0)) ** 2, axis=-1) / 2
        which = np.digitize(confidence[t], BINS) - 1
        sums += np.bincount(which.ravel(), diff.ravel(), minlength=len(BINS) - 1)[: len(BINS) - 1]
        counts += np.bincount(which.ravel(), minlength=len(BINS) - 1)[: len(BINS) - 1]
    return [float(s / c) if c else float("nan") for s, c in zip(sums, counts, strict=True)]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--model-size", type=int, default=256)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    root = shared_dir() / "data" / "davis-dev"
    rows: list[dict[str, Any]] = []
    for name in TUNING:
        rgb, lumas, abs_full = load_sequence(root / name, args.frames)
        shape = lumas[0].shape
        flows = [compute_flow(lumas[t], lumas[t + 1]) for t in range(len(lumas) - 1)]
        back = [compute_flow(lumas[t + 1], lumas[t]) for t in range(len(lumas) - 1)]
        conf = [forward_backward_confidence(f, b) for f, b in zip(flows, back, strict=True)]
        pred = colorizer_outputs(lumas, args.model_size)
        if isinstance(pred, str):
            print(pred, file=sys.stderr)
            return 1
        gt = [to_model(a, args.model_size) for a in abs_full]
        variants = {"gt_roundtrip": gt, "colorizer": pred, "colorizer_smoothed": smooth(lumas, pred)}
        row: dict[str, Any] = {"sequence": name, "frames": len(rgb)}
        edges = np.digitize(np.concatenate([c.ravel() for c in conf]), BINS) - 1
        row["pixel_share_by_confidence"] = [float(np.mean(edges == b)) for b in range(len(BINS) - 1)]
        for key, abs_small in variants.items():
            full = [upsample(a, shape) for a in abs_small]
            frames = [render(l, a) for l, a in zip(lumas, full, strict=True)]
            row[key] = {
                "cdc_by_step": {str(d): cdc(frames, steps=(d,)) for d in STEPS},
                "warp_error_by_confidence": warp_error_by_confidence(full, flows, conf),
            }
        for key in ("colorizer", "colorizer_smoothed"):
            row[key]["cdc_excess_by_step"] = {
                d: row[key]["cdc_by_step"][d] - row["gt_roundtrip"]["cdc_by_step"][d] for d in map(str, STEPS)
            }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    result = {"bins": list(BINS), "steps": list(STEPS), "sequences": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
