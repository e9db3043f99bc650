"""Colorize throughput of the hosts on the one core engine, against the bare model path.

All rows colour the same synthetic 854x480 BT.601 Y'CbCr 4:2:0 frames (decoding and encoding left out) with the
same net:

- ``model only``: ``Colorizer.colorize_ycbcr`` on batches of frames (model + bilinear upsampling + in-gamut join):
  what the streaming node did before it moved onto the core engine; the floor the hosts are compared with;
- ``pyav node``: :class:`ColorizeNode` (``VideoColorizerStream``: model batches, edge-aware upsampling), with and
  without temporal smoothing;
- ``vapoursynth``: ``colorize`` rendered in order (``VideoColorizer``, random access), when VapourSynth is installed.

Prints a table and writes benchmarks/results/hosts.json.

    python benchmarks/hosts.py [--frames 24] [--width 854 --height 480] [--batch 8] [--device cpu]
"""

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import torch

from chromaflow.core import registry
from chromaflow.core.colorizer import Colorizer
from chromaflow.core.colour import YCbCrFormat
from chromaflow.core.nets.base import build_base
from chromaflow.filters.pyav import ColorizeNode, run_nodes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # generated test media: tests/support
from support.pyav_synth import synth_rgb

RESULTS = Path(__file__).resolve().parent / "results" / "hosts.json"


def make_colorizer(device: str, size: int) -> tuple[Colorizer, str]:
    if registry.is_present("base"):
        return Colorizer("base", device=device, size=size), "base"
    torch.manual_seed(0)  # same architecture and cost; trained weights are not needed to time the plumbing
    return Colorizer(build_base().eval(), device=device, size=size), "base (random weights)"


def make_frames(count: int, width: int, height: int) -> list[av.VideoFrame]:
    frames = []
    for i in range(count):
        f = av.VideoFrame.from_ndarray(synth_rgb(width, height, i), format="rgb24")
        f = f.reformat(format="yuv420p", dst_colorspace=6, dst_color_range=1)
        f.colorspace, f.color_range, f.pts, f.time_base = 6, 1, i, Fraction(1, 25)
        frames.append(f)
    return frames


def timed(run: Callable[[], object], frames: int) -> float:
    run()  # warm-up (numba compilation, caches)
    start = time.perf_counter()
    run()
    return frames / (time.perf_counter() - start)


def vapoursynth_row(frames: list[av.VideoFrame], colorizer: Colorizer, batch: int) -> float | None:
    try:
        import vapoursynth as vs
    except ImportError:
        return None
    from chromaflow.filters import vapoursynth as cf
    from chromaflow.filters.pyav.frames import plane_view

    core = vs.core
    first = frames[0]
    blank = core.std.BlankClip(format=vs.YUV420P8, width=first.width, height=first.height, length=len(frames))

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        g = f.copy()
        for p in range(3):
            np.asarray(g[p])[...] = plane_view(frames[n], p)
        g.props["_Matrix"] = 6
        return g

    clip = core.std.ModifyFrame(blank, blank, fill)

    def render() -> None:
        out = cf.colorize(clip, model=colorizer, smooth=0, batch=batch)
        for n in range(out.num_frames):
            out.get_frame(n)

    return timed(render, len(frames))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--width", type=int, default=854)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    torch.manual_seed(0)
    colorizer, model = make_colorizer(args.device, args.size)
    frames = make_frames(args.frames, args.width, args.height)
    from chromaflow.filters.pyav.frames import plane_view

    ys = np.stack([plane_view(f, 0).copy() for f in frames])
    fmt = YCbCrFormat("601", False, 8)

    def model_only() -> None:
        for start in range(0, len(ys), args.batch):
            colorizer.colorize_ycbcr(ys[start : start + args.batch], fmt, factors=(2, 2))

    rows = {
        "model only (batched colorize_ycbcr)": timed(model_only, len(frames)),
        "pyav node, smooth 0": timed(
            lambda: run_nodes(frames, ColorizeNode(colorizer, smooth=0, batch_size=args.batch)), len(frames)
        ),
        "pyav node, smooth 2": timed(
            lambda: run_nodes(frames, ColorizeNode(colorizer, smooth=2, batch_size=args.batch)), len(frames)
        ),
    }
    vs_fps = vapoursynth_row(frames, colorizer, args.batch)
    if vs_fps is not None:
        rows["vapoursynth colorize, smooth 0, in order"] = vs_fps
    machine = f"{platform.machine()} {torch.get_num_threads()} threads, {colorizer.placement.device}"
    print(f"colorize throughput, {args.frames} frames {args.width}x{args.height}, model {model}, {machine}")
    print(f"{'path':45s} {'frames/s':>9s}")
    for name, fps in rows.items():
        print(f"{name:45s} {fps:9.2f}")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "frames": args.frames,
                "size": [args.width, args.height],
                "batch": args.batch,
                "model": model,
                "machine": machine,
                "fps": {k: round(v, 3) for k, v in rows.items()},
            },
            indent=2,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
