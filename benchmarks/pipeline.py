"""End-to-end colorize throughput: transcode() (threads, bounded queues, batches) against a naive serial loop.

Both runs decode the same H.264 clip, colorize with the same net and encode H.264 with the same settings; the naive
loop does one frame at a time on one thread (decode -> ColorizeNode(batch 1) -> encode), transcode() overlaps
decoding, the model and encoding and batches frames. Prints a table and writes benchmarks/results/pipeline.json.

    python benchmarks/pipeline.py [--frames 48] [--width 854 --height 480] [--device auto] [--size 256]
                                  [--baseline /tmp/cf-old]

The smoothing run uses the node as ``chromaflow colorize`` builds it (``overlap=True``: the model a batch ahead on a
worker thread). ``--repeats N`` runs each N times and keeps the fastest (a loaded machine disturbs single runs).
``--pairs N`` (with ``--baseline``) also runs the smoothing run of both trees N times each, taking turns in two
warm child processes, and reports each pair's ratio and their median (``paired_with_baseline``): on a shared
machine the steadiest old-against-new figure. With ``--cli`` the pairs are whole ``chromaflow colorize`` runs instead
(a fresh process each, the process settings the command makes included; the frames/s of its ``--json`` report,
which times the transcode and not the start-up), ``base-v1`` against a baseline's ``base``, reported as
``paired_cli_with_baseline``; ``--only-pairs`` times the pairs alone and merges them into the results file. ``--baseline DIR`` also times the smoothing run on another checkout (e.g. today's HEAD: ``git archive HEAD | tar -x
-C /tmp/cf-old``) in a child process on the same clip settings, and adds it as a row with the ratio.
"""

import argparse
import inspect
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import av
import torch

from chromaflow.core import registry
from chromaflow.core.colorizer import Colorizer
from chromaflow.core.nets.base import build_base
from chromaflow.filters.pyav import ColorizeNode, transcode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # generated test media: tests/support
from support.pyav_synth import write_clip

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline.json"
# the smoothing run's node as `chromaflow colorize` builds it: the model a batch ahead on a worker thread (a
# checkout from before that option, timed through --baseline, runs without it)
CLI_NODE = {"overlap": True} if "overlap" in inspect.signature(ColorizeNode).parameters else {}


def make_colorizer(device: str, size: int) -> tuple[Colorizer, str]:
    """The first base net: ``base-v1`` here, plain ``base`` in a ``--baseline`` checkout from before issue 19, so
    both trees time the same net and the ratio measures the pipeline alone."""
    for name in ("base-v1", "base"):
        if name in registry.names() and registry.is_present(name):
            return Colorizer(name, device=device, size=size), name
    torch.manual_seed(
        0
    )  # same architecture and cost; the trained weights are not needed to time the plumbing
    return Colorizer(build_base().eval(), device=device, size=size), "base (random weights)"


def naive(src: Path, dst: Path, colorizer: Colorizer) -> int:
    node = ColorizeNode(colorizer, smooth=0, batch_size=1)
    count = 0
    with av.open(str(src)) as inp, av.open(str(dst), "w") as out:
        vin = inp.streams.video[0]
        stream = out.add_stream("libx264", rate=vin.average_rate, options={"crf": "18", "preset": "medium"})
        stream.width, stream.height, stream.pix_fmt = vin.width, vin.height, "yuv420p"
        stream.codec_context.time_base = vin.time_base
        for frame in inp.decode(vin):
            node.push(frame)
            for done in node.pull():
                out.mux(stream.encode(done))
                count += 1
        for done in node.flush():
            out.mux(stream.encode(done))
            count += 1
        out.mux(stream.encode(None))
    return count


def smoothing_run(src: Path, dst: Path, colorizer: Colorizer, batch: int) -> int:
    """The smoothing run: the clip through transcode() with the node ``chromaflow colorize`` builds."""
    node = ColorizeNode(colorizer, smooth=2, batch_size=batch, **CLI_NODE)
    return transcode(src, dst, [node]).frames_out


def claim_like_the_command() -> Callable[[], None]:
    """Set the process up as ``chromaflow`` does (:mod:`chromaflow.core.process_tuning`); returns the step it takes
    once the run's objects are built. A baseline checkout from before that module gets neither."""
    try:
        from chromaflow.core import process_tuning
    except ImportError:
        return lambda: None
    process_tuning.claim_process()
    return process_tuning.freeze_startup_objects


def serve(args: argparse.Namespace) -> None:
    """Child of ``--pairs``: load the model once, then time one smoothing run per ``run`` line on stdin. The process
    is set up as the ``chromaflow`` command sets up its own, where the checkout has that step."""
    freeze = claim_like_the_command()
    colorizer, _ = make_colorizer(args.device, args.size)
    smoothing_run(args.serve, args.serve.with_suffix(".warm.mp4"), colorizer, args.batch)
    freeze()
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        if line.strip() != "run":
            break
        start = time.perf_counter()
        frames = smoothing_run(
            args.serve, args.serve.with_suffix(f".{os.getpid()}.mp4"), colorizer, args.batch
        )
        print(json.dumps({"frames": frames, "seconds": time.perf_counter() - start}), flush=True)


def pairs_summary(args: argparse.Namespace, fps: dict[str, list[float]]) -> dict[str, Any]:
    """The record of paired runs: each tree's frames/s, each pair's ratio and their median."""
    ratios = [n / o for n, o in zip(fps["new"], fps["old"], strict=True)]
    return {
        "pairs": args.pairs,
        "baseline": str(args.baseline),
        "fps_new": [round(v, 2) for v in fps["new"]],
        "fps_baseline": [round(v, 2) for v in fps["old"]],
        "ratios": [round(v, 3) for v in ratios],
        "median_ratio": round(float(statistics.median(ratios)), 3),
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def paired(args: argparse.Namespace, src: Path) -> dict[str, Any]:
    """The smoothing run of this tree and of ``--baseline`` taking turns (A B B A ...), each in a warm child
    process: neighbouring runs see nearly the same load from other processes, so their ratio is steadier on a
    shared machine than two separate timings."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _harness import baseline_path

    site = baseline_path(args.baseline, src.parent / "baseline-site")
    command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(src)]
    command += ["--device", args.device, "--size", str(args.size), "--batch", str(args.batch)]
    old_env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    children = {
        "new": subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True),
        "old": subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=old_env
        ),
    }
    fps: dict[str, list[float]] = {"new": [], "old": []}
    try:
        for child in children.values():  # both warmed up before either is timed
            assert child.stdout is not None
            json.loads(child.stdout.readline())
        for i in range(args.pairs):
            for which in ("new", "old") if i % 2 == 0 else ("old", "new"):
                child = children[which]
                assert child.stdin is not None and child.stdout is not None
                child.stdin.write("run\n")
                child.stdin.flush()
                run = json.loads(child.stdout.readline())
                fps[which].append(run["frames"] / run["seconds"])
    finally:
        for child in children.values():
            assert child.stdin is not None
            child.stdin.close()
            child.wait()
    return pairs_summary(args, fps)


def paired_cli(args: argparse.Namespace, src: Path) -> dict[str, Any]:
    """Like :func:`paired`, but each run is the ``chromaflow colorize`` command itself in a fresh process."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from _harness import baseline_path

    site = baseline_path(args.baseline, src.parent / "baseline-site-cli")
    entry = "import sys; from chromaflow.plugins.cli.main import main; sys.exit(main())"
    envs = {
        "new": (dict(os.environ), "base-v1"),
        "old": (
            dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")])),
            "base",
        ),
    }
    fps: dict[str, list[float]] = {"new": [], "old": []}
    for i in range(args.pairs):
        for which in ("new", "old") if i % 2 == 0 else ("old", "new"):
            env, model = envs[which]
            command = [
                sys.executable,
                "-c",
                entry,
                "colorize",
                str(src),
                str(src.with_suffix(f".{which}.mp4")),
            ]
            command += [
                "--model",
                model,
                "--smooth",
                "2",
                "--size",
                str(args.size),
                "--batch",
                str(args.batch),
            ]
            command += ["--device", args.device, "--quiet", "--json"]
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            fps[which].append(float(json.loads(done.stdout)["fps"]))
    return pairs_summary(args, fps) | {"via": "chromaflow colorize"}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each kind; the fastest is kept")
    parser.add_argument("--only-smoothing", action="store_true", help="time the smoothing run alone")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to time smoothing on")
    parser.add_argument(
        "--pairs", type=int, default=0, help="with --baseline: also N smoothing runs of each, taking turns"
    )
    parser.add_argument("--only-pairs", action="store_true", help="with --pairs: time the pairs alone")
    parser.add_argument(
        "--cli", action="store_true", help="with --pairs: whole `chromaflow colorize` runs, fresh processes"
    )
    parser.add_argument("--serve", type=Path, default=None, help=argparse.SUPPRESS)  # --pairs' children
    args = parser.parse_args()
    if args.serve is not None:
        serve(args)
        return
    colorizer, model = make_colorizer(args.device, args.size)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.mp4"
        write_clip(src, width=args.width, height=args.height, frames=args.frames, audio=True)
        naive(src, Path(tmp) / "warm.mp4", colorizer)  # warm-up (allocations, kernels)
        runs = [
            ("naive serial loop, batch 1", lambda: naive(src, Path(tmp) / "naive.mp4", colorizer)),
            (
                f"transcode, batch {args.batch}",
                lambda: (
                    transcode(
                        src, Path(tmp) / "t.mp4", [ColorizeNode(colorizer, smooth=0, batch_size=args.batch)]
                    ).frames_out
                ),
            ),
            (
                f"transcode, batch {args.batch}, smoothing r=2",
                lambda: smoothing_run(src, Path(tmp) / "s.mp4", colorizer, args.batch),
            ),
        ]
        if args.only_smoothing:
            runs = runs[2:]
        pairs = None
        if args.pairs and args.baseline is not None:
            pairs = paired_cli(args, src) if args.cli else paired(args, src)
        if args.only_pairs:
            runs = []
        for name, fn in runs:
            seconds = float("inf")
            for _ in range(args.repeats):  # the fastest of the repeats: the least disturbed by other loads
                start = time.perf_counter()
                frames = fn()
                seconds = min(seconds, time.perf_counter() - start)
            rows.append(
                {
                    "run": name,
                    "frames": frames,
                    "seconds": round(seconds, 3),
                    "fps": round(frames / seconds, 2),
                }
            )
    key = "paired_cli_with_baseline" if args.cli else "paired_with_baseline"
    if args.only_pairs:  # merged into the results file: its other runs stay
        print(json.dumps(pairs, indent=2))
        kept = json.loads(args.out.read_text()) if args.out.is_file() else {}
        args.out.write_text(json.dumps(kept | {key: pairs}, indent=2) + "\n")
        return
    if args.baseline is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _harness import run_baseline

        extra = ["--frames", str(args.frames), "--width", str(args.width), "--height", str(args.height)]
        extra += ["--device", args.device, "--size", str(args.size), "--batch", str(args.batch)]
        extra += ["--repeats", str(args.repeats)]
        old = run_baseline(Path(__file__), [*extra, "--only-smoothing"], args.baseline)["runs"][0]
        rows.append(old | {"run": f"{old['run']} [baseline]", "baseline": str(args.baseline)})
        rows[-2]["vs_baseline"] = round(rows[-2]["fps"] / old["fps"], 2)
    base_fps = rows[0]["fps"]
    for row in rows:
        row["speedup"] = round(row["fps"] / base_fps, 2)
    device = colorizer.placement.describe()
    print(
        f"colorize pipeline, {args.width}x{args.height}, {args.frames} frames, model {model} at {args.size}, {device}"
    )
    print(f"{'run':<42} {'frames':>6} {'seconds':>8} {'fps':>7} {'speedup':>8}")
    for row in rows:
        print(
            f"{row['run']:<42} {row['frames']:>6} {row['seconds']:>8.2f} {row['fps']:>7.2f} {row['speedup']:>7.2f}x"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cpus": torch.get_num_threads(),
            "device": device,
        },
        "input": {"width": args.width, "height": args.height, "frames": args.frames, "codec": "libx264"},
        "model": model,
        "size": args.size,
        "runs": rows,
    }
    if pairs is not None:
        result[key] = pairs
        print(
            f"smoothing run against the baseline, {pairs['pairs']} pairs taking turns: ratios {pairs['ratios']}, "
            f"median {pairs['median_ratio']}x"
        )
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
