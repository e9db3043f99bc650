"""End-to-end colorize throughput: transcode() (threads, bounded queues, batches) against a naive serial loop.

Both runs decode the same H.264 clip, colorize with the same net and encode H.264 with the same settings; the naive
loop does one frame at a time on one thread (decode -> ColorizeNode(batch 1) -> encode), transcode() overlaps
decoding, the model and encoding and batches frames. Prints a table and writes benchmarks/results/pipeline.json.

    python benchmarks/pipeline.py [--frames 48] [--width 854 --height 480] [--device auto] [--size 256]
                                  [--baseline /tmp/cf-old]

``--baseline DIR`` also times the smoothing run on another checkout (e.g. today's HEAD: ``git archive HEAD | tar -x
-C /tmp/cf-old``) in a child process on the same clip settings, and adds it as a row with the ratio.
"""

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

import av
import torch

from chromaflow.core import registry
from chromaflow.core.colorizer import Colorizer
from chromaflow.core.nets.base import build_base
from chromaflow.filters.pyav import ColorizeNode, transcode

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # generated test media: tests/support
from support.pyav_synth import write_clip

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline.json"


def make_colorizer(device: str, size: int) -> tuple[Colorizer, str]:
    if registry.is_present("base"):
        return Colorizer("base", device=device, size=size), "base"
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
    parser.add_argument("--only-smoothing", action="store_true", help="time the smoothing run alone")
    parser.add_argument("--baseline", type=Path, default=None, help="another checkout to time smoothing on")
    args = parser.parse_args()
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
                lambda: (
                    transcode(
                        src, Path(tmp) / "s.mp4", [ColorizeNode(colorizer, smooth=2, batch_size=args.batch)]
                    ).frames_out
                ),
            ),
        ]
        if args.only_smoothing:
            runs = runs[2:]
        for name, fn in runs:
            start = time.perf_counter()
            frames = fn()
            seconds = time.perf_counter() - start
            rows.append(
                {
                    "run": name,
                    "frames": frames,
                    "seconds": round(seconds, 3),
                    "fps": round(frames / seconds, 2),
                }
            )
    if args.baseline is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _harness import run_baseline

        extra = ["--frames", str(args.frames), "--width", str(args.width), "--height", str(args.height)]
        extra += ["--device", args.device, "--size", str(args.size), "--batch", str(args.batch)]
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
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
