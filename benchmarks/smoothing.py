"""Benchmark of temporal chroma smoothing on DAVIS-2016 development sequences (854x480).

Protocol (issue 5). Ground truth: each JPEG frame -> CIE Lab; the full-resolution L* is kept, ab is resized to the
model resolution (``--model-size``, 256x256 like the Zhang nets) where smoothing runs; outputs are rendered by
upsampling ab bilinearly to 854x480, joining with the true L* and converting to 8-bit sRGB.

1. controlled flicker: ground-truth ab plus, per frame (seeded), a global (a, b) shift ~ N(0, ``--shift``) and a
   low-frequency noise field (4x4 control grid, bicubic, std ``--noise``). Targets: chroma warp error cut by >= 50 %,
   PSNR against the ground truth raised.
2. ground truth itself: PSNR of the smoothed ground-truth ab against the unsmoothed one's (both through the same
   model-resolution round trip, which is the reference since the untouched frames have infinite PSNR). Target:
   loss <= 0.3 dB.
3. the built-in colorizer (``Colorizer("base")``, ``--model`` for another, CPU, frames batched) per frame,
   before/after smoothing: warp error, CDC, and PSNR against the ground-truth colour frames (skipped with a note
   when the model is not available).
4. speed: the numba kernel against the numpy reference on one window at 854x480 (max |difference|; best wall-clock
   and best CPU time over the same ``--repeat`` runs each, and both ratios: on a shared machine the CPU-time ratio
   is the one other processes barely move), and frames/s of the whole smoother (flow + cuts + kernel) at 854x480
   and at the model resolution.

Sequences: fixed up front (issue 23) as a TUNING set, the only one any parameter of the smoother was chosen on,
and a REPORTING set, whose figures are the headline (``summary``); ``summary_tuning`` holds the tuning set's.
``--baseline DIR`` also runs this script on another checkout (e.g. today's HEAD: ``git archive HEAD | tar -x -C
/tmp/cf-old``) in a child process and keeps its summaries under ``baseline``, for old-against-new tables.

Chroma warp error: flow between consecutive ground-truth luma planes (DIS, full resolution), mean squared ab
difference (per channel, Lab units^2) on pixels that pass the forward-backward test. CDC: TCVC's colour distribution
consistency on the 8-bit RGB frames. Writes a table to stderr/stdout and JSON to benchmarks/results/smoothing.json.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numba
import numpy as np
import torch

from chromaflow.core.colour import lab_to_rgb, rgb_to_lab
from chromaflow.core.errors import ChromaflowError
from chromaflow.core.flow import compute_flow, occlusion_mask
from chromaflow.core.metrics import cdc, chroma_warp_error, psnr
from chromaflow.core.scenecut import SceneCutDetector
from chromaflow.core.temporal import SmoothingParams, TemporalSmoother, kernel_numba, kernel_reference

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks" / "results" / "smoothing.json"
# Fixed before any tuning (issue 23): parameters are chosen on TUNING only; REPORTING gives the headline figures.
TUNING = ("bmx-trees", "car-shadow", "kite-surf")
REPORTING = ("breakdance", "dog", "scooter-black")


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def shared_dir() -> Path:
    explicit = os.environ.get("CHROMAFLOW_SHARED")
    return Path(explicit) if explicit else REPO.parent / "shared"


def load_sequence(folder: Path, frames: int) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """(8-bit RGB frames, L* planes (H, W), ab planes (2, H, W)) of the first ``frames`` JPEGs."""
    files = sorted(folder.glob("*.jpg"))[:frames]
    rgb = [cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB) for f in files]
    batch = torch.from_numpy(np.stack(rgb)).permute(0, 3, 1, 2).float() / 255.0
    lab = rgb_to_lab(batch).numpy()
    return rgb, [x[0] for x in lab], [x[1:] for x in lab]


def to_model(ab: np.ndarray, size: int) -> np.ndarray:
    return np.stack([cv2.resize(c, (size, size), interpolation=cv2.INTER_AREA) for c in ab])


def upsample(ab_small: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return np.stack([cv2.resize(c, (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR) for c in ab_small])


def render(l: np.ndarray, ab_full: np.ndarray) -> np.ndarray:
    lab = torch.from_numpy(np.concatenate([l[None], ab_full]).astype(np.float32))
    rgb = lab_to_rgb(lab).numpy().transpose(1, 2, 0)
    return np.clip(rgb * 255.0 + 0.5, 0, 255).astype(np.uint8)


def flicker(ab_small: list[np.ndarray], seed: int, shift: float, noise: float) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for ab in ab_small:
        size = ab.shape[1:]
        g = rng.normal(0.0, shift, size=2)
        field = rng.normal(0.0, noise, size=(2, 4, 4)).astype(np.float32)
        smooth = np.stack([cv2.resize(c, (size[1], size[0]), interpolation=cv2.INTER_CUBIC) for c in field])
        out.append((ab + g[:, None, None] + smooth).astype(np.float32))
    return out


def smooth(lumas: list[np.ndarray], abs_: list[np.ndarray], **options: Any) -> list[np.ndarray]:
    smoother = TemporalSmoother(**options)
    out: dict[int, np.ndarray] = {}
    for l, ab in zip(lumas, abs_, strict=True):
        out.update({s.frame_index: s.ab for s in smoother.push(l, ab)})
    out.update({s.frame_index: s.ab for s in smoother.flush()})
    return [out[i] for i in range(len(abs_))]


class Evaluator:
    """Metrics of a sequence of model-resolution ab planes against the ground truth."""

    def __init__(self, rgb: list[np.ndarray], lumas: list[np.ndarray], ab_gt: list[np.ndarray]) -> None:
        self.rgb, self.lumas = rgb, lumas
        self.shape = lumas[0].shape
        self.flows = [compute_flow(lumas[t], lumas[t + 1]) for t in range(len(lumas) - 1)]
        back = [compute_flow(lumas[t + 1], lumas[t]) for t in range(len(lumas) - 1)]
        self.valid = [~occlusion_mask(f, b) for f, b in zip(self.flows, back, strict=True)]
        self.gt_warp = self.warp_error(ab_gt)

    def warp_error(self, ab_full: list[np.ndarray]) -> float:
        hwc = [a.transpose(1, 2, 0) for a in ab_full]
        errs = [
            chroma_warp_error(hwc[t], hwc[t + 1], self.flows[t], self.valid[t]) for t in range(len(hwc) - 1)
        ]
        return float(np.mean(errs))

    def __call__(self, ab_small: list[np.ndarray]) -> dict[str, float]:
        full = [upsample(a, self.shape) for a in ab_small]
        frames = [render(l, a) for l, a in zip(self.lumas, full, strict=True)]
        return {
            "psnr": float(np.mean([psnr(f, g) for f, g in zip(frames, self.rgb, strict=True)])),
            "warp_error": self.warp_error(full),
            "cdc": cdc(frames),
        }


def best_time(fn: Any, repeat: int) -> tuple[float, float]:
    """(best wall-clock seconds, best CPU seconds summed over threads) over the same ``repeat`` runs.

    The CPU time is what the work costs, nearly insensitive to other processes sharing the machine; wall-clock is
    what a user sees, and on a shared machine it also counts the time the threads waited for a core.
    """
    walls, cpus = [], []
    for _ in range(repeat):
        t, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - t)
        cpus.append(time.process_time() - c)
    return min(walls), min(cpus)


def speed(lumas: list[np.ndarray], abs_full: list[np.ndarray], radius: int, repeat: int, size: int) -> dict:
    """Kernel numba vs numpy on one 854x480 window, and frames/s of the whole smoother."""
    params = SmoothingParams(radius=radius)
    n = radius
    neighbours = [m for m in range(2 * radius + 1) if m != n]
    fwd = np.stack([compute_flow(lumas[m], lumas[n]) for m in neighbours])
    bwd = np.stack([compute_flow(lumas[n], lumas[m]) for m in neighbours])
    args = (
        lumas[n],
        abs_full[n],
        np.stack([lumas[m] for m in neighbours]),
        np.stack([abs_full[m] for m in neighbours]),
        fwd,
        bwd,
        np.ones(len(neighbours), np.float32),
        params,
    )
    kernel_numba(*args)  # compile / load the cache
    out_numba = kernel_numba(*args)
    out_ref = kernel_reference(*args)
    t_numba, cpu_numba = best_time(lambda: kernel_numba(*args), repeat)
    t_ref, cpu_ref = best_time(lambda: kernel_reference(*args), repeat)
    numba.set_num_threads(1)
    t_numba_1, cpu_numba_1 = best_time(lambda: kernel_numba(*args), repeat)
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)

    def run(abs_in: list[np.ndarray], **options: Any) -> float:
        t = time.perf_counter()
        smooth(lumas, abs_in, radius=radius, **options)
        return len(abs_in) / (time.perf_counter() - t)

    small = [to_model(a, size) for a in abs_full]
    return {
        "window": f"{lumas[0].shape[1]}x{lumas[0].shape[0]}, {len(neighbours)} neighbours",
        "max_abs_diff": float(np.abs(out_numba - out_ref).max()),
        "kernel_numba_ms": 1000 * t_numba,
        "kernel_numpy_ms": 1000 * t_ref,
        "speed_ratio": t_ref / t_numba,
        "kernel_numba_1thread_ms": 1000 * t_numba_1,
        "speed_ratio_1thread": t_ref / t_numba_1,
        "kernel_numba_cpu_ms": 1000 * cpu_numba,
        "kernel_numpy_cpu_ms": 1000 * cpu_ref,
        "speed_ratio_cpu": cpu_ref / cpu_numba,
        "kernel_numba_1thread_cpu_ms": 1000 * cpu_numba_1,
        "load_average_1min": os.getloadavg()[0],
        "fps_full_res_854x480": run(abs_full),
        f"fps_model_res_{size}": run(small),
        "numba_threads": numba.get_num_threads(),
    }


def colorizer_outputs(lumas: list[np.ndarray], size: int, model: str = "base") -> list[np.ndarray] | str:
    """Per-frame model-resolution ab from ``Colorizer(model)``, or the reason it is unavailable."""
    try:
        from chromaflow.core.colorizer import Colorizer

        colorizer = Colorizer(model, device="cpu", size=size)
    except (ImportError, ChromaflowError) as exc:
        return f"colorizer unavailable: {exc}"
    small = np.stack([cv2.resize(l, (size, size), interpolation=cv2.INTER_AREA) for l in lumas])
    ab = colorizer.predict_ab(torch.from_numpy(small)[:, None])
    return [a.cpu().numpy().astype(np.float32) for a in ab]


def summarize(
    rows: list[dict[str, Any]],
    cut_scores: dict[str, list[float]],
    threshold: float,
    speed_result: dict[str, Any],
) -> dict[str, Any]:
    """Means over ``rows`` (one set of sequences), the reductions and the targets."""

    def mean(key: str, metric: str) -> float:
        vals = [r[key][metric] for r in rows if key in r]
        return float(np.mean(vals)) if vals else float("nan")

    summary: dict[str, Any] = {
        "sequences": [r["sequence"] for r in rows],
        "flicker_warp_error_reduction": 1.0
        - mean("flicker_smoothed", "warp_error") / mean("flicker", "warp_error"),
        "flicker_psnr_gain_db": mean("flicker_smoothed", "psnr") - mean("flicker", "psnr"),
        "gt_psnr_loss_db": mean("gt_roundtrip", "psnr") - mean("gt_smoothed", "psnr"),
        "colorizer_warp_error_reduction": 1.0
        - mean("colorizer_smoothed", "warp_error") / mean("colorizer", "warp_error"),
        "colorizer_cdc_reduction": 1.0 - mean("colorizer_smoothed", "cdc") / mean("colorizer", "cdc"),
        "colorizer_psnr_change_db": mean("colorizer_smoothed", "psnr") - mean("colorizer", "psnr"),
        "means": {
            key: {metric: mean(key, metric) for metric in ("psnr", "warp_error", "cdc")}
            for key in (
                "gt_roundtrip",
                "gt_smoothed",
                "flicker",
                "flicker_smoothed",
                "colorizer",
                "colorizer_smoothed",
            )
        },
        "scene_cut_within_max": float(max(cut_scores["within"])),
        "scene_cut_between_min": float(min(cut_scores["between"])),
        "scene_cut_threshold": threshold,
    }
    summary["targets_met"] = {
        "warp_error_cut_50pct": summary["flicker_warp_error_reduction"] >= 0.5,
        "flicker_psnr_raised": summary["flicker_psnr_gain_db"] > 0,
        "gt_psnr_loss_le_0.3db": summary["gt_psnr_loss_db"] <= 0.3,
        "base_warp_error_le_half": summary["colorizer_warp_error_reduction"] >= 0.5,
        "base_cdc_30pct_lower": summary["colorizer_cdc_reduction"] >= 0.3,
        "base_psnr_cost_le_0.3db": summary["colorizer_psnr_change_db"] >= -0.3,
    }
    if speed_result:
        summary["targets_met"]["numba_eq_numpy_1e-5"] = speed_result["max_abs_diff"] <= 1e-5
    return summary


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=24, help="frames per sequence (from the first)")
    ap.add_argument("--sequences", nargs="*", default=None, help="sequence names (default: all)")
    ap.add_argument("--radius", type=int, default=2)
    ap.add_argument("--strength", type=float, default=1.0)
    ap.add_argument("--luma-sigma", type=float, default=SmoothingParams.luma_sigma)
    ap.add_argument("--model", default="base", help="the per-frame colorizer (a registry name; default base)")
    ap.add_argument("--model-size", type=int, default=256)
    ap.add_argument("--shift", type=float, default=6.0, help="std of the per-frame global ab shift")
    ap.add_argument("--noise", type=float, default=4.0, help="std of the low-frequency ab noise field")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--no-colorizer", action="store_true")
    ap.add_argument("--output", "--out", type=Path, default=RESULTS)
    ap.add_argument("--no-speed", action="store_true", help="skip the speed measurements")
    ap.add_argument("--baseline", type=Path, default=None, help="another checkout to run this script on too")
    args = ap.parse_args()

    root = shared_dir() / "data" / "davis-dev"
    if not root.is_dir():
        log(f"no DAVIS data at {root}; set CHROMAFLOW_SHARED")
        return 1
    names = args.sequences or [*TUNING, *REPORTING]
    options = {"radius": args.radius, "strength": args.strength, "luma_sigma": args.luma_sigma}
    rows: list[dict[str, Any]] = []
    colorizer_note = None
    cut_scores: dict[str, list[float]] = {"within": [], "between": []}
    firsts, lasts = [], []
    detector = SceneCutDetector()
    speed_result: dict[str, Any] = {}
    for i, name in enumerate(names):
        t0 = time.perf_counter()
        rgb, lumas, abs_full = load_sequence(root / name, args.frames)
        ab_gt = [to_model(a, args.model_size) for a in abs_full]
        ev = Evaluator(rgb, lumas, abs_full)
        row: dict[str, Any] = {"sequence": name, "frames": len(rgb), "gt_warp_error_full_res": ev.gt_warp}
        base = ev(ab_gt)
        row["gt_roundtrip"] = base
        row["gt_smoothed"] = ev(smooth(lumas, ab_gt, **options))
        flick = flicker(ab_gt, seed=1000 + i, shift=args.shift, noise=args.noise)
        row["flicker"] = ev(flick)
        row["flicker_smoothed"] = ev(smooth(lumas, flick, **options))
        if not args.no_colorizer and colorizer_note is None:
            pred = colorizer_outputs(lumas, args.model_size, args.model)
            if isinstance(pred, str):
                colorizer_note = pred
            else:
                row["colorizer"] = ev(pred)
                row["colorizer_smoothed"] = ev(smooth(lumas, pred, **options))
        cut_scores["within"].extend(detector.scores(lumas))
        firsts.append(lumas[0])
        lasts.append(lumas[-1])
        if i == 0 and not args.no_speed:
            speed_result = speed(
                lumas[: 2 * args.radius + 12],
                abs_full[: 2 * args.radius + 12],
                args.radius,
                args.repeat,
                args.model_size,
            )
        rows.append(row)
        log(f"{name}: {time.perf_counter() - t0:.1f} s")
    for a in range(len(names)):
        for b in range(len(names)):
            if a != b:
                cut_scores["between"].append(detector.score(lasts[a], firsts[b]))

    reporting = [r for r in rows if r["sequence"] not in TUNING]
    tuning = [r for r in rows if r["sequence"] in TUNING]
    summary = summarize(reporting or rows, cut_scores, detector.threshold, speed_result)
    summary_tuning = summarize(tuning, cut_scores, detector.threshold, speed_result) if tuning else None
    result = {
        "machine": f"{os.cpu_count()}-core CPU, torch {torch.__version__}, numba {numba.__version__}",
        "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
        "summary": summary,
        "summary_tuning": summary_tuning,
        "sets": {"tuning": [r["sequence"] for r in tuning], "reporting": [r["sequence"] for r in reporting]},
        "speed": speed_result,
        "colorizer_model": args.model,
        "colorizer_note": colorizer_note,
        "sequences": rows,
    }
    header = f"{'sequence':15s} {'setting':18s} {'PSNR':>7s} {'warp err':>9s} {'CDC':>8s}"
    lines = [header, "-" * len(header)]
    for r in rows:
        for key in (
            "gt_roundtrip",
            "gt_smoothed",
            "flicker",
            "flicker_smoothed",
            "colorizer",
            "colorizer_smoothed",
        ):
            if key in r:
                m = r[key]
                lines.append(
                    f"{r['sequence']:15s} {key:18s} {m['psnr']:7.2f} {m['warp_error']:9.3f} {m['cdc']:8.5f}"
                )
        lines.append(
            f"{r['sequence']:15s} {'(gt warp, full)':18s} {'':7s} {r['gt_warp_error_full_res']:9.3f}"
        )
    print("\n".join(lines))
    if args.baseline is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _harness import run_baseline

        extra = [
            "--frames",
            str(args.frames),
            "--radius",
            str(args.radius),
            "--model-size",
            str(args.model_size),
        ]
        old = run_baseline(Path(__file__), [*extra, "--no-speed", "--sequences", *names], args.baseline)
        result["baseline"] = {
            "tree": str(args.baseline),
            "summary": old["summary"],
            "summary_tuning": old.get("summary_tuning"),
        }
    print(json.dumps({"summary": summary, "speed": speed_result, "colorizer_note": colorizer_note}, indent=2))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.output.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2))
    tmp.replace(args.output)
    log(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
