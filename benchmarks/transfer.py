"""Keyframe transfer on DAVIS-2016 dev: quality against ground truth and speed, against simple baselines.

Protocol (issue 4): the gray input of frame t is the ground truth's L* with ab = 0, rendered as 8-bit sRGB gray;
references are ground-truth frames. Settings: key frame 0 only; key frames 0 and last. Metrics on 8-bit RGB:
PSNR over the non-key frames, SSIM (same frames), chroma warp error (mean squared ab difference between consecutive
output frames after motion compensation with flow from the ground truth, non-occluded pixels; all frames) and CDC.
Baselines: gray (ab = 0), keyframe mean colour, the plain DIS flow chain from the nearest keyframe (ab warped frame
to frame, no occlusion handling, no refinement). Speed: frames/s of the transfer (ab at full size and the RGB join)
at 854x480, wall clock and per CPU-second of the process (the CPU figure is the one to compare on a shared,
loaded machine: with 2 threads on 2 free cores, wall-clock frames/s lie between it and twice it).

    .venv/bin/python benchmarks/transfer.py [--frames N] [--sequences a,b] [--modes flow,auto]
    .venv/bin/python benchmarks/transfer.py --scoring papers     # the published propagators' protocol

Prints a table (stderr progress, stdout table) and writes benchmarks/results/transfer.json.

``--scoring papers`` scores the same sequences, keyframes and methods the way the exemplar-propagation papers
(DeepExemplar, BiSTNet, ColorMNet and the tools built on them) report DAVIS, so that our figures can be placed next
to theirs; it is a different protocol from ours and its numbers are not comparable with the table above:
the frames are centre-cropped to 832x480; the gray input is the 8-bit BT.601 luma Y' of the ground truth (not L*
with ab = 0); every frame is scored, the keyframes included, with the method's own output there (not the ground
truth); PSNR is on float RGB in [0, 1] (outputs clipped, no 8-bit rounding), per frame, averaged over all frames of
all sequences pooled (each frame weighs the same; ours averages per sequence first). Writes
benchmarks/results/transfer_papers.json.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from chromaflow.core.flow import compute_flow_scaled, occlusion_mask, warp
from chromaflow.core.metrics import cdc, chroma_warp_error, psnr, ssim
from chromaflow.core.transfer import KeyframeTransfer, PropagationParams, lab_planes_to_rgb, rgb_to_lab_planes

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CHROMAFLOW_SHARED", ROOT.parent / "shared")) / "data" / "davis-dev"
OUT = ROOT / "benchmarks" / "results" / "transfer.json"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def write_results(path: Path, payload: dict[str, Any]) -> None:
    """``payload`` as JSON at ``path``, written under a temporary name and renamed (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    tmp.replace(path)
    log(f"wrote {path}")


def load_sequence(folder: Path, limit: int | None) -> list[np.ndarray]:
    files = sorted(folder.glob("*.jpg"))[:limit]
    return [cv2.imread(str(f), cv2.IMREAD_COLOR)[..., ::-1].copy() for f in files]


def to_u8(rgb: np.ndarray) -> np.ndarray:
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


class Sequence:
    """Ground truth of one sequence, the gray inputs and the ground-truth flows for the warp error."""

    def __init__(self, name: str, frames: list[np.ndarray]) -> None:
        self.name = name
        self.gt = frames
        lab = [rgb_to_lab_planes(f) for f in frames]
        self.gt_ab = [np.ascontiguousarray(ab.transpose(1, 2, 0)) for _, ab in lab]  # (H, W, 2) as flow warps
        # gray input: GT L* with ab = 0, as 8-bit sRGB gray (one plane; R = G = B)
        self.gray = [to_u8(lab_planes_to_rgb(l, np.zeros_like(ab)))[..., 0] for l, ab in lab]
        self.input_l = [rgb_to_lab_planes(g)[0] for g in self.gray]
        self.flows, self.valid = [], []
        for t in range(len(frames) - 1):
            l0, l1 = lab[t][0], lab[t + 1][0]
            f = compute_flow_scaled(l0, l1, max_side=854)  # maps t+1 -> t
            b = compute_flow_scaled(l1, l0, max_side=854)
            self.flows.append(f)
            self.valid.append(~occlusion_mask(f, b))

    def render(self, ab: np.ndarray, t: int) -> np.ndarray:
        """8-bit RGB of frame t from the input L* and ab (H, W, 2)."""
        return to_u8(lab_planes_to_rgb(self.input_l[t], ab.transpose(2, 0, 1)))


def evaluate(seq: Sequence, outputs: list[np.ndarray], keys: list[int]) -> dict[str, float]:
    """Metrics of 8-bit RGB outputs against the ground truth."""
    non_key = [t for t in range(len(outputs)) if t not in keys]
    p = float(np.mean([psnr(outputs[t], seq.gt[t]) for t in non_key]))
    s = float(np.mean([ssim(outputs[t], seq.gt[t], channel_axis=-1) for t in non_key[::4]]))
    abs_ = [rgb_to_lab_planes(o)[1].transpose(1, 2, 0) for o in outputs]  # (H, W, 2) as the metric takes
    we = [
        chroma_warp_error(abs_[t], abs_[t + 1], seq.flows[t], seq.valid[t]) for t in range(len(outputs) - 1)
    ]
    return {"psnr": p, "ssim": s, "warp_error": float(np.nanmean(we)), "cdc": cdc(outputs)}


def baseline_gray(seq: Sequence, keys: list[int]) -> list[np.ndarray]:
    return [
        seq.render(np.zeros_like(seq.gt_ab[t]), t) if t not in keys else seq.gt[t] for t in range(len(seq.gt))
    ]


def nearest(keys: list[int], t: int) -> int:
    return min(keys, key=lambda k: (abs(k - t), k))


def baseline_mean(seq: Sequence, keys: list[int]) -> list[np.ndarray]:
    means = {k: seq.gt_ab[k].reshape(-1, 2).mean(axis=0) for k in keys}
    out = []
    for t in range(len(seq.gt)):
        ab = np.broadcast_to(means[nearest(keys, t)], seq.gt_ab[t].shape).astype(np.float32)
        out.append(seq.gt[t] if t in keys else seq.render(ab, t))
    return out


def chained_ab(
    key_ab: dict[int, np.ndarray], input_l: list[np.ndarray], max_side: int = 480
) -> dict[int, np.ndarray]:
    """Every frame's ab (H, W, 2) warped frame to frame from its nearest keyframe's ``key_ab`` (DIS on the input
    lumas), no occlusion handling: the plain flow chain both protocols compare against."""
    keys, n = sorted(key_ab), len(input_l)
    ab = dict(key_ab)
    for direction in (1, -1):
        for k in keys:
            cur = key_ab[k]
            t = k + direction
            while 0 <= t < n and t not in keys and nearest(keys, t) == k:
                cur = warp(cur, compute_flow_scaled(input_l[t - direction], input_l[t], max_side=max_side))
                ab[t] = cur
                t += direction
    return ab


def baseline_flow_chain(seq: Sequence, keys: list[int]) -> list[np.ndarray]:
    """The plain flow chain (:func:`chained_ab`) from the ground truth's keyframes, rendered on the input L*."""
    ab = chained_ab({k: seq.gt_ab[k] for k in keys}, seq.input_l)
    return [seq.gt[t] if t in keys else seq.render(ab[t], t) for t in range(len(seq.gt))]


def run_mode(
    seq: Sequence, keys: list[int], mode: str, params: PropagationParams | None = None
) -> tuple[list[np.ndarray], tuple[float, float]]:
    """Outputs of a transfer mode (with ``params``, else the defaults) and its speed: (frames/s wall clock, frames
    per CPU-second of the process)."""
    refs = {k: seq.gt[k] for k in keys}
    kt = KeyframeTransfer(refs, lambda t: seq.gray[t], len(seq.gt), mode=mode, params=params)
    start, cpu = time.perf_counter(), time.process_time()
    rgbs = [kt.rgb(t) for t in range(len(seq.gt))]
    elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
    out = [seq.gt[t] if t in keys else to_u8(rgbs[t]) for t in range(len(seq.gt))]
    return out, (len(seq.gt) / elapsed, len(seq.gt) / cpu)


PAPERS_WIDTH = 832  # the papers' DAVIS frames: 854x480 centre-cropped to a multiple of 32
BT601 = np.array([0.299, 0.587, 0.114])


class PapersSequence:
    """One sequence as the papers score it: centre crop, gray input from Y', float ground truth."""

    def __init__(self, name: str, frames: list[np.ndarray]) -> None:
        self.name = name
        left = (frames[0].shape[1] - PAPERS_WIDTH) // 2
        self.gt_u8 = [np.ascontiguousarray(f[:, left : left + PAPERS_WIDTH]) for f in frames]
        self.gt = [f.astype(np.float64) / 255.0 for f in self.gt_u8]
        self.gray = [np.round(f.astype(np.float64) @ BT601).astype(np.uint8) for f in self.gt_u8]
        self.input_l = [rgb_to_lab_planes(np.repeat(g[..., None], 3, axis=2))[0] for g in self.gray]

    def render(self, ab: np.ndarray, t: int) -> np.ndarray:
        """Float RGB of frame t from the input L* and ab (H, W, 2)."""
        return lab_planes_to_rgb(self.input_l[t], ab.transpose(2, 0, 1))


def papers_outputs(seq: PapersSequence, keys: list[int], method: str) -> list[np.ndarray]:
    """Float RGB of every frame, the keyframes included: gray, the plain flow chain, or a transfer mode."""
    n = len(seq.gt)
    if method == "gray":
        return [np.repeat(g[..., None] / 255.0, 3, axis=2) for g in seq.gray]
    if method == "flow_chain":
        key_ab = {
            k: np.ascontiguousarray(rgb_to_lab_planes(seq.gt_u8[k])[1].transpose(1, 2, 0)) for k in keys
        }
        ab = chained_ab(key_ab, seq.input_l)
        return [seq.render(ab[t], t) for t in range(n)]
    refs = {k: seq.gt_u8[k] for k in keys}
    kt = KeyframeTransfer(refs, lambda t: seq.gray[t], n, mode=method)
    return [np.asarray(kt.rgb(t), dtype=np.float64) for t in range(n)]


def float_psnr(out: np.ndarray, gt: np.ndarray) -> float:
    mse = float(np.mean((np.clip(out, 0.0, 1.0) - gt) ** 2))
    return 100.0 if mse == 0 else 10.0 * float(np.log10(1.0 / mse))


def papers_scoring(args: argparse.Namespace, names: list[str], modes: list[str]) -> None:
    methods = ["gray", "flow_chain", *modes]
    per_frame: dict[str, dict[str, list[float]]] = {}  # setting -> method -> PSNR of every frame, pooled
    per_sequence: dict[str, dict[str, dict[str, float]]] = {}
    for name in names:
        log(f"[{name}] loading (papers' protocol)")
        seq = PapersSequence(name, load_sequence(DATA / name, args.frames))
        n = len(seq.gt)
        for setting, keys in (("key0", [0]), ("key0_last", [0, n - 1])):
            row = {}
            for method in methods:
                scores = [
                    float_psnr(o, g) for o, g in zip(papers_outputs(seq, keys, method), seq.gt, strict=True)
                ]
                per_frame.setdefault(setting, {}).setdefault(method, []).extend(scores)
                row[method] = float(np.mean(scores))
            per_sequence.setdefault(setting, {})[name] = row
            log(f"[{name}] {setting}: " + ", ".join(f"{m} {row[m]:.2f}" for m in methods))
    pooled = {setting: {m: float(np.mean(v)) for m, v in rows.items()} for setting, rows in per_frame.items()}
    print("papers' protocol (832x480 crop, gray from Y', keyframes scored, frames pooled, float PSNR):")
    print("not comparable with the table of our protocol")
    for setting, rows in pooled.items():
        print(f"{setting:10s} " + "  ".join(f"{m} {v:.2f}" for m, v in rows.items()))
    out = args.out if args.out != OUT else OUT.with_name("transfer_papers.json")
    payload = {
        "protocol": "papers: 832x480 centre crop; gray = 8-bit BT.601 Y' of the ground truth; every frame scored, "
        "keyframes included (the method's own output); float RGB PSNR per frame, mean over all frames pooled",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads},
        "frames_per_sequence": args.frames,
        "sequences": names,
        "frames": len(next(iter(per_frame.values()))["gray"]),
        "pooled_psnr": pooled,
        "per_sequence_psnr": per_sequence,
    }
    write_results(out, payload)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=None, help="first N frames of each sequence (default all)")
    ap.add_argument("--sequences", default=None, help="comma-separated subset")
    ap.add_argument(
        "--modes",
        default="flow,auto",
        help="transfer modes to measure (flow: the transfer before the fusion)",
    )
    ap.add_argument(
        "--threads", type=int, default=2, help="OpenCV/torch threads (the target machine has 2 cores)"
    )
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument(
        "--scoring",
        choices=("ours", "papers"),
        default="ours",
        help="ours (module docstring) or the published propagators' protocol (written to transfer_papers.json)",
    )
    args = ap.parse_args()
    cv2.setNumThreads(args.threads)
    torch.set_num_threads(args.threads)
    names = (
        args.sequences.split(",") if args.sequences else sorted(p.name for p in DATA.iterdir() if p.is_dir())
    )
    modes = [m for m in args.modes.split(",") if m]
    if args.scoring == "papers":
        papers_scoring(args, names, modes)
        return
    methods = ["gray", "mean", "flow_chain", *modes]
    results: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    fps: dict[str, list[float]] = {m: [] for m in modes}
    cpu_fps: dict[str, list[float]] = {m: [] for m in modes}
    load_before = os.getloadavg()[0]
    for name in names:
        log(f"[{name}] loading")
        seq = Sequence(name, load_sequence(DATA / name, args.frames))
        n = len(seq.gt)
        for setting, keys in (("key0", [0]), ("key0_last", [0, n - 1])):
            row: dict[str, dict[str, float]] = {}
            outs = {
                "gray": baseline_gray(seq, keys),
                "mean": baseline_mean(seq, keys),
                "flow_chain": baseline_flow_chain(seq, keys),
            }
            for m in modes:
                outs[m], (f, fc) = run_mode(seq, keys, m)
                fps[m].append(f)
                cpu_fps[m].append(fc)
            for method, frames in outs.items():
                row[method] = evaluate(seq, frames, keys)
            row["ground_truth"] = evaluate(seq, seq.gt, keys)
            results.setdefault(setting, {})[name] = row
            log(f"[{name}] {setting}: " + ", ".join(f"{m} {row[m]['psnr']:.2f}" for m in methods))
    summary: dict[str, dict[str, dict[str, float]]] = {}
    for setting, per_seq in results.items():
        summary[setting] = {}
        for method in [*methods, "ground_truth"]:
            summary[setting][method] = {
                k: float(np.mean([per_seq[s][method][k] for s in per_seq]))
                for k in ("psnr", "ssim", "warp_error", "cdc")
            }
    print(f"{'setting':10s} {'method':12s} {'PSNR':>7s} {'SSIM':>7s} {'warp err':>9s} {'CDC':>8s}")
    for setting, rows in summary.items():
        for method, v in rows.items():
            print(
                f"{setting:10s} {method:12s} {v['psnr']:7.2f} {v['ssim']:7.4f} {v['warp_error']:9.3f} {v['cdc']:8.5f}"
            )
    load_after = os.getloadavg()[0]
    for m in modes:
        print(
            f"frames/s ({m}, 854x480, {args.threads} threads): {np.mean(fps[m]):.2f} wall clock, "
            f"{np.mean(cpu_fps[m]):.2f} per CPU-second (load average {load_before:.1f} -> {load_after:.1f} "
            f"on {os.cpu_count()} CPUs)"
        )
    payload = {
        "protocol": "issue 4: gray = GT L* with ab=0 as 8-bit sRGB; refs = GT frames; PSNR/SSIM over non-key frames",
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": args.threads},
        "frames_per_sequence": args.frames,
        "summary": summary,
        "per_sequence": results,
        "fps": {m: float(np.mean(v)) for m, v in fps.items()},
        "fps_per_cpu_second": {m: float(np.mean(v)) for m, v in cpu_fps.items()},
        "load_average": [load_before, load_after],
    }
    write_results(args.out, payload)


if __name__ == "__main__":
    main()
