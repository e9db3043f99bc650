"""Benchmark of deflicker (:mod:`chromaflow.core.deflicker`) on DAVIS-2016 development sequences (854x480).

Deflicker smooths the colour of video that is already in colour, at full size. Protocol, per sequence (the first
``--frames`` JPEGs; ground truth = each frame's CIE Lab):

1. controlled flicker at full size: ground-truth ab plus, per frame (seeded), a global (a, b) shift ~ N(0, ``--shift``)
   and a low-frequency noise field (4x4 control grid, std ``--noise``); deflickered with each ``--radii``. PSNR
   against the ground-truth frames (8-bit sRGB), chroma warp error and CDC (as in ``benchmarks/smoothing.py``).
2. the ground truth itself through deflicker: how much a clip without flicker is changed (PSNR of the result
   against the untouched frames, capped at 100 dB: no 8-bit sample moved).
3. a real per-frame colorizer: ``base`` (``--model``) through the video engine without smoothing (what ``chromaflow colorize
   --no-smooth`` writes), then deflickered; next to it the engine's own smoothing (``--smooth 2``).
4. speed at 854x480: frames/s of :class:`DeflickerStream` (flow, cuts, kernel and the full-size correction), and of
   the stream plus the 4:2:0 8-bit chroma write (:func:`deflickered_chroma`), i.e. what a host does per frame.

Writes a table to stdout and JSON to ``benchmarks/results/deflicker.json``.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numba
import numpy as np
import torch

from chromaflow.core.colorizer import Colorizer, ycbcr_chroma
from chromaflow.core.colour import YCbCrFormat
from chromaflow.core.deflicker import DEFAULT_MAX_SIDE, DEFAULT_RADIUS, DeflickerStream, deflickered_chroma
from chromaflow.core.errors import ChromaflowError
from chromaflow.core.metrics import cdc, psnr
from chromaflow.core.video import VideoColorizer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from smoothing import Evaluator, flicker, load_sequence, log, render, shared_dir

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "deflicker.json"
Frames = list[np.ndarray]
PSNR_CAP = 100.0  # dB: a frame none of whose 8-bit samples moved


def deflicker(lumas: Frames, abs_: Frames, radius: int, max_side: int = DEFAULT_MAX_SIDE) -> Frames:
    stream = DeflickerStream(radius=radius, max_side=max_side)
    out: dict[int, np.ndarray] = {}
    for l_star, ab in zip(lumas, abs_, strict=True):
        out.update({d.frame_index: d.ab for d in stream.push(l_star, ab)})
    out.update({d.frame_index: d.ab for d in stream.flush()})
    return [out[n] for n in range(len(abs_))]


def metrics(ev: Evaluator, lumas: Frames, abs_: Frames, truth: list[np.ndarray]) -> dict[str, float]:
    frames = [render(l, a) for l, a in zip(lumas, abs_, strict=True)]
    return {
        "psnr": float(np.mean([min(psnr(f, g), PSNR_CAP) for f, g in zip(frames, truth, strict=True)])),
        "warp_error": ev.warp_error(abs_),
        "cdc": cdc(frames),
    }


def engine_ab(lumas: Frames, colorizer: Colorizer, smooth: int) -> Frames:
    """Full-size ab of every frame from the video engine (model batches, guided upsampling, optional smoothing)."""
    engine = VideoColorizer(len(lumas), lambda k: lumas[k], colorizer=colorizer, smooth_radius=smooth)
    return [engine.ab(n) for n in range(len(lumas))]


def speed(lumas: Frames, abs_: Frames, radius: int, max_side: int = DEFAULT_MAX_SIDE) -> dict[str, Any]:
    """Frames/s of the stream alone and of the stream plus the 4:2:0 chroma write, at the frames' size."""
    fmt = YCbCrFormat("709", False, 8)
    chroma = [
        ycbcr_chroma(torch.from_numpy(l)[None, None], torch.from_numpy(a)[None], fmt, (2, 2))[0].numpy()
        for l, a in zip(lumas, abs_, strict=True)
    ]
    deflicker(lumas[: 2 * radius + 2], abs_[: 2 * radius + 2], radius, max_side)  # warm the numba caches
    t = time.perf_counter()
    out = deflicker(lumas, abs_, radius, max_side)
    stream_s = time.perf_counter() - t
    t = time.perf_counter()
    for l_star, old, new, c in zip(lumas, abs_, out, chroma, strict=True):
        deflickered_chroma(c, l_star, old, new, fmt, (2, 2))
    write_s = time.perf_counter() - t
    return {
        "size": f"{lumas[0].shape[1]}x{lumas[0].shape[0]}",
        "radius": radius,
        "max_side": max_side,
        "fps_stream": len(lumas) / stream_s,
        "fps_stream_and_420_write": len(lumas) / (stream_s + write_s),
        "numba_threads": numba.get_num_threads(),
        "load_average_1min": os.getloadavg()[0],
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=30, help="frames per sequence (from the first)")
    ap.add_argument("--sequences", nargs="*", default=None, help="sequence names (default: all)")
    ap.add_argument("--radii", type=int, nargs="+", default=[2, 3, 4])
    ap.add_argument(
        "--max-sides", type=int, nargs="+", default=[480, 360], help="other working resolutions to compare"
    )
    ap.add_argument("--shift", type=float, default=4.0, help="std of the per-frame global ab shift")
    ap.add_argument("--noise", type=float, default=3.0, help="std of the low-frequency ab noise field")
    ap.add_argument("--no-colorizer", action="store_true")
    ap.add_argument("--model", default="base", help="the per-frame colorizer (a registry name; default base)")
    ap.add_argument("--quick", action="store_true", help="two sequences, 16 frames, the default radius only")
    ap.add_argument("--output", type=Path, default=RESULTS)
    args = ap.parse_args()
    if args.quick:
        args.frames, args.radii, args.max_sides = 16, [DEFAULT_RADIUS], []
        args.sequences = args.sequences or ["dog", "breakdance"]

    root = shared_dir() / "data" / "davis-dev"
    if not root.is_dir():
        log(f"no DAVIS data at {root}; set CHROMAFLOW_SHARED")
        return 1
    names = args.sequences or sorted(p.name for p in root.iterdir() if p.is_dir())
    colorizer: Colorizer | None = None
    colorizer_note = None
    if not args.no_colorizer:
        try:
            colorizer = Colorizer(args.model, device="cpu")
        except ChromaflowError as exc:
            colorizer_note = f"colorizer unavailable: {exc}"
    rows: list[dict[str, Any]] = []
    speed_result: dict[str, float] = {}
    for i, name in enumerate(names):
        t0 = time.perf_counter()
        rgb, lumas, ab_gt = load_sequence(root / name, args.frames)
        ev = Evaluator(rgb, lumas, ab_gt)
        row: dict[str, Any] = {"sequence": name, "frames": len(rgb)}
        flick = flicker(ab_gt, seed=2000 + i, shift=args.shift, noise=args.noise)
        row["flicker"] = metrics(ev, lumas, flick, rgb)
        for radius in args.radii:
            row[f"flicker_deflickered_r{radius}"] = metrics(ev, lumas, deflicker(lumas, flick, radius), rgb)
        for side in args.max_sides:
            out = deflicker(lumas, flick, DEFAULT_RADIUS, side)
            row[f"flicker_deflickered_side{side}"] = metrics(ev, lumas, out, rgb)
        row["gt"] = metrics(ev, lumas, ab_gt, rgb)
        untouched = [render(l, a) for l, a in zip(lumas, ab_gt, strict=True)]  # PSNR: what deflicker changed
        row["gt_deflickered"] = metrics(ev, lumas, deflicker(lumas, ab_gt, DEFAULT_RADIUS), untouched)
        if colorizer is not None:
            per_frame = engine_ab(lumas, colorizer, 0)
            row["base"] = metrics(ev, lumas, per_frame, rgb)
            row["base_deflickered"] = metrics(ev, lumas, deflicker(lumas, per_frame, DEFAULT_RADIUS), rgb)
            row["base_smooth2"] = metrics(ev, lumas, engine_ab(lumas, colorizer, 2), rgb)
        if i == 0:
            speed_result = speed(lumas, flick, DEFAULT_RADIUS)
            speed_result["other_max_sides"] = {
                str(side): speed(lumas, flick, DEFAULT_RADIUS, side)["fps_stream"] for side in args.max_sides
            }
        rows.append(row)
        log(f"{name}: {time.perf_counter() - t0:.1f} s")

    keys = [k for k in rows[0] if isinstance(rows[0][k], dict)]

    def mean(key: str, metric: str) -> float:
        vals = [r[key][metric] for r in rows if key in r]
        return float(np.mean(vals)) if vals else float("nan")

    means = {k: {m: mean(k, m) for m in ("psnr", "warp_error", "cdc")} for k in keys}
    best = f"flicker_deflickered_r{DEFAULT_RADIUS}"
    summary: dict[str, Any] = {
        "radius": DEFAULT_RADIUS,
        "flicker_psnr_gain_db": means[best]["psnr"] - means["flicker"]["psnr"] if best in means else None,
        "flicker_warp_error_reduction": 1 - means[best]["warp_error"] / means["flicker"]["warp_error"]
        if best in means
        else None,
        "gt_min_psnr_db": min(r["gt_deflickered"]["psnr"] for r in rows),
        "means": means,
    }
    if "base" in means:
        summary["base_warp_error_reduction"] = (
            1 - means["base_deflickered"]["warp_error"] / means["base"]["warp_error"]
        )
        summary["base_cdc_reduction"] = 1 - means["base_deflickered"]["cdc"] / means["base"]["cdc"]
        summary["base_psnr_change_db"] = means["base_deflickered"]["psnr"] - means["base"]["psnr"]
    result = {
        "machine": f"{os.cpu_count()}-core CPU, torch {torch.__version__}, numba {numba.__version__}",
        "settings": vars(args) | {"output": str(args.output)},
        "summary": summary,
        "speed": speed_result,
        "colorizer_model": args.model,
        "colorizer_note": colorizer_note,
        "sequences": rows,
    }
    header = f"{'setting':28s} {'PSNR':>7s} {'warp err':>9s} {'CDC':>8s}   (mean of {len(rows)} sequences)"
    print(header)
    print("-" * len(header))
    for key, m in means.items():
        print(f"{key:28s} {m['psnr']:7.2f} {m['warp_error']:9.2f} {m['cdc']:8.4f}")
    if speed_result:
        print(
            f"speed {speed_result['size']}, radius {speed_result['radius']}, working side {speed_result['max_side']}: "
            f"{speed_result['fps_stream']:.1f} frames/s (stream), {speed_result['fps_stream_and_420_write']:.1f} with "
            f"the 4:2:0 chroma write; other working sides (stream): {speed_result['other_max_sides']}"
        )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1, default=float))
    tmp.replace(args.output)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
