"""Where the smoothing stage's time goes: the TemporalSmoother as colorize runs it, profiled by cost category.

The stage of ``benchmarks/stages.py`` (radius 2, ab and L* at the 480-px working size of an 854x480 clip, streaming
push/flush), on the first ``--frames`` frames of DAVIS ``bmx-trees`` (its ground-truth ab stands in for a model's:
the cost does not depend on the colours). cProfile with a CPU-time clock (every thread's seconds, so other
processes on a shared machine barely move it), each function's own time summed into categories: DIS flow, flow
composition, the numba kernel, the correction's low-pass, resizes, scene-cut statistics, array copies and
conversions, the rest. Also wall-clock and CPU ms per frame, median of ``--repeat`` unprofiled runs.
``--baseline DIR`` profiles another checkout too (e.g. today's HEAD: ``git archive HEAD | tar -x -C /tmp/cf-old``)
in a child process. Writes ``benchmarks/results/smoothing_profile.json``.

    python benchmarks/smoothing_profile.py [--frames 32] [--repeat 3] [--baseline /tmp/cf-old]
"""

import argparse
import cProfile
import json
import os
import pstats
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import describe_machine, machine, run_baseline
from smoothing import load_sequence, shared_dir

from chromaflow.core.flow import working_size
from chromaflow.core.temporal import TemporalSmoother

RESULTS = Path(__file__).resolve().parent / "results" / "smoothing_profile.json"
CATEGORIES = {  # function name -> category (own time); anything else is "python and other"
    "calc": "DIS flow",
    "compose_flow": "flow composition",
    "remap": "flow composition",
    "_remap_grid": "flow composition",
    "kernel_numba": "numba kernel",
    "_kernel_numba": "numba kernel",
    "sepFilter2D": "low-pass of the correction",
    "lowpass_correction": "low-pass of the correction",
    "resize": "resizes (luma, flows, low-pass)",
    "histogram": "scene-cut statistics",
    "stack": "array copies and conversions",
    "astype": "array copies and conversions",
    "copy": "array copies and conversions",
    "ascontiguousarray": "array copies and conversions",
    "to_flow_luma": "array copies and conversions",
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=32)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--radius", type=int, default=2)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--baseline", type=Path, default=None)
    args = ap.parse_args()
    _, lumas, abs_ = load_sequence(shared_dir() / "data" / "davis-dev" / "bmx-trees", args.frames)
    h, w = working_size((int(lumas[0].shape[0]), int(lumas[0].shape[1])), 480)
    l_work = [cv2.resize(l, (w, h), interpolation=cv2.INTER_AREA) for l in lumas]
    ab_work = [np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_AREA) for c in a]) for a in abs_]
    smoother = TemporalSmoother(args.radius, flow_max_side=480)

    def run() -> None:
        smoother.reset()
        for l, ab in zip(l_work, ab_work, strict=True):
            smoother.push(l, ab)
        smoother.flush()

    run()  # numba compile / cache load
    walls, cpus = [], []
    for _ in range(args.repeat):
        t, c = time.perf_counter(), time.process_time()
        run()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    profile = cProfile.Profile(time.process_time)
    profile.enable()
    run()
    profile.disable()
    own: dict[str, float] = {}
    for (_, _, name), (_, _, tottime, _, _) in pstats.Stats(profile).stats.items():  # type: ignore[attr-defined]
        words = re.findall(
            r"[A-Za-z_]\w*", name
        )  # "<method 'calc' of 'cv2.DenseOpticalFlow' objects>", "stack"
        key = next((CATEGORIES[x] for x in words if x in CATEGORIES), "python and other")
        own[key] = own.get(key, 0.0) + tottime
    n = len(l_work)
    result: dict[str, Any] = {
        "machine": machine(),
        "machine_line": describe_machine(machine()),
        "settings": {"frames": n, "radius": args.radius, "working_size": f"{w}x{h}", "sequence": "bmx-trees"},
        "wall_ms_per_frame": round(1000 * statistics.median(walls) / n, 2),
        "cpu_ms_per_frame": round(1000 * statistics.median(cpus) / n, 2),
        "profiled_cpu_ms_per_frame": {
            k: round(1000 * v / n, 2) for k, v in sorted(own.items(), key=lambda x: -x[1])
        },
        "load_average_1min": round(os.getloadavg()[0], 2),
    }
    if args.baseline is not None:
        old = run_baseline(
            Path(__file__), ["--frames", str(args.frames), "--repeat", str(args.repeat)], args.baseline
        )
        result["baseline"] = {
            k: old[k] for k in ("wall_ms_per_frame", "cpu_ms_per_frame", "profiled_cpu_ms_per_frame")
        }
        result["baseline"]["tree"] = str(args.baseline)
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=1))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
