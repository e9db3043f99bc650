"""Overhead of the VapourSynth filters against direct engine calls on the same frames, like with like.

Each row times (a) the filter, rendered as ``vspipe`` renders (``core.num_threads`` frames in flight), and (b) the
same core engine called directly in a Python loop with the same options, including the conversions any host
needs around it, so the difference is what VapourSynth adds (plane access, frame copies, properties, callbacks,
nested frame requests):

- ``colorize`` (``smooth=0`` and ``smooth=2``) and ``transfer``: :class:`VideoColorizer` built with the filter's
  options, fed L* read from the Y' planes (:func:`ycbcr_lightness`), its ab turned into chroma code values
  (:func:`ycbcr_chroma`, 4:2:0) and per-frame info read, as the filter does;
- ``deepfake``: :meth:`DeepfakeScorer.score_frames` on the RGB frames the filter sees (batches of 8; with
  ``overlay``, plus :func:`draw_overlay` on each frame). On an RGB24 clip this is the filter's pure overhead; on a
  YUV clip the direct call gets frames already decoded to RGB, so that row's overhead also holds the filter's
  YUV -> RGB conversion.

Filter and direct runs alternate (``--repeat`` pairs after one warm-up pair, fresh engines every run) so both see
the same machine load; a row reports the best time of each, the median of the per-pair wall-time ratios
(``overhead``) and of the per-pair CPU-time ratios (``cpu_overhead``: the extra work, less sensitive to other
processes on a shared machine). Overhead = time(filter) / time(direct) - 1; the target is <= 10 %. Source clips are pre-rendered into memory, so
(a) does not pay for producing its input.

Data: ``davis-dev/dog`` frames (854 x 480) as YUV420P8 for colour, a DFDC clip (1920 x 1080) for ``deepfake``. The
colour net is the ``base`` architecture with seeded random weights (its speed does not depend on the weights).

    .venv/bin/python benchmarks/vs_filters.py [--frames 8] [--repeat 3] [--device cpu] [--only colorize,deepfake]
"""

import argparse
import json
import os
import platform
import statistics
import sys
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import vapoursynth as vs

from chromaflow.core.colorizer import Colorizer, ycbcr_chroma, ycbcr_lightness
from chromaflow.core.colour import YCbCrFormat
from chromaflow.core.deepfake import DeepfakeScorer
from chromaflow.core.nets.base import BaseColorNet
from chromaflow.core.overlay import OverlayStyle, draw_overlay
from chromaflow.core.video import VideoColorizer
from chromaflow.filters import vapoursynth as cf

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # generated test media: tests/support
from support import vs_synth

core = vs.core
RESULTS = Path(__file__).resolve().parent / "results" / "vs_filters.json"
BATCH = 8


def _shared() -> Path:
    explicit = os.environ.get("CHROMAFLOW_SHARED")
    return Path(explicit) if explicit else Path(__file__).resolve().parents[2] / "shared"


def clip_from_rgb(frames: list[np.ndarray], fmt: int = vs.YUV420P8) -> vs.VideoNode:
    """A clip of RGB uint8 frames in ``fmt`` (:func:`vs_synth.clip_from_rgb`), rendered once into memory so the
    timed runs do not pay for the conversion."""
    clip = vs_synth.clip_from_rgb(frames, fmt)
    rendered = [clip.get_frame(n) for n in range(len(frames))]
    held = core.std.BlankClip(clip, keep=True)
    return core.std.ModifyFrame(held, held, lambda n, f: rendered[n])


def render(clip: vs.VideoNode) -> None:
    """Every frame in order, ``core.num_threads`` requests in flight (as ``vspipe`` asks for them).

    (``clip.frames()`` would do the same but waits about 20 ms per frame in its own bookkeeping.)"""
    pending: deque[Any] = deque()
    for n in range(clip.num_frames):
        pending.append(clip.get_frame_async(n))
        if len(pending) >= core.num_threads:
            pending.popleft().result()
    while pending:
        pending.popleft().result()


def compare(filtered: Callable[[], Any], direct: Callable[[], Any], repeat: int) -> dict[str, float]:
    """Alternate filter and direct runs (one warm-up pair, then ``repeat`` timed pairs); wall and CPU time."""
    filtered()
    direct()
    wall: dict[str, list[float]] = {"f": [], "d": []}
    cpu: dict[str, list[float]] = {"f": [], "d": []}
    for _ in range(repeat):
        for key, fn in (("f", filtered), ("d", direct)):
            w, c = time.perf_counter(), time.process_time()
            fn()
            wall[key].append(time.perf_counter() - w)
            cpu[key].append(time.process_time() - c)

    def ratio(times: dict[str, list[float]]) -> float:
        return statistics.median(f / d - 1.0 for f, d in zip(times["f"], times["d"], strict=True))

    return {
        "filter_s": min(wall["f"]),
        "direct_s": min(wall["d"]),
        "overhead": ratio(wall),
        "overhead_best": min(wall["f"]) / min(wall["d"]) - 1.0,
        "cpu_overhead": ratio(cpu),
    }


def direct_colour(
    ys: list[np.ndarray], fmt: YCbCrFormat, factors: tuple[int, int], **options: Any
) -> Callable[[], None]:
    """The host loop of :func:`cf.colorize` / :func:`cf.transfer` without VapourSynth."""

    def run() -> None:
        engine = VideoColorizer(len(ys), lambda k: ycbcr_lightness(ys[k], fmt).numpy(), **options)
        for n, y in enumerate(ys):
            l_star = ycbcr_lightness(y, fmt)
            ab = torch.from_numpy(engine.ab(n, l_star.numpy()))
            ycbcr_chroma(l_star[None, None], ab[None], fmt, factors, "left")
            engine.info(n)

    return run


def colour_rows(args: argparse.Namespace, shared: Path) -> list[dict[str, Any]]:
    davis = sorted((shared / "data/davis-dev/dog").glob("*.jpg"))[: args.frames]
    if not davis:
        sys.exit(f"no DAVIS frames under {shared}; set CHROMAFLOW_SHARED")
    rgb_frames = [np.ascontiguousarray(cv2.imread(str(p))[:, :, ::-1]) for p in davis]
    src = clip_from_rgb(rgb_frames)
    ys = [np.asarray(src.get_frame(n)[0]).copy() for n in range(src.num_frames)]
    fmt = YCbCrFormat("709", False, 8)
    torch.manual_seed(0)
    colorizer = Colorizer(BaseColorNet(width=32).eval(), device=args.device, size=args.size)
    rows = []
    for smooth in (0, 2):
        timing = compare(
            lambda smooth=smooth: render(cf.colorize(src, model=colorizer, smooth=smooth, batch=BATCH)),
            direct_colour(ys, fmt, (2, 2), colorizer=colorizer, smooth_radius=smooth, batch_size=BATCH),
            args.repeat,
        )
        rows.append({"filter": f"colorize smooth={smooth} (YUV420P8)", "frames": len(ys), **timing})
    key = {0: rgb_frames[0]}
    timing = compare(
        lambda: render(cf.transfer(src, key)),
        direct_colour(ys, fmt, (2, 2), references=key, transfer="auto", smooth_radius=0, batch_size=1),
        args.repeat,
    )
    rows.append({"filter": "transfer auto (YUV420P8)", "frames": len(ys), **timing})
    return rows


def deepfake_rows(args: argparse.Namespace, shared: Path) -> list[dict[str, Any]]:
    meso = shared / "models/mesonet/Meso4_DF.h5"
    if not meso.is_file():
        print(f"deepfake: {meso} is absent, skipped", file=sys.stderr)
        return []
    capture = cv2.VideoCapture(str(shared / "data/deepfake-dev/dfdc/lynaeydofd.mp4"))
    faces: list[np.ndarray] = []
    while len(faces) < args.frames:
        ok, bgr = capture.read()
        if not ok:
            break
        faces.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    h, w = faces[0].shape[:2]
    rows = []
    for fmt, overlay in ((vs.RGB24, False), (vs.YUV420P8, False), (vs.RGB24, True)):
        clip = clip_from_rgb(faces, fmt)
        as_rgb = clip if fmt == vs.RGB24 else core.resize.Bicubic(clip, format=vs.RGB24, matrix_in_s="709")
        seen = [cv2.merge([np.asarray(f[p]) for p in range(3)]) for f in as_rgb.frames(close=True)]

        def direct(seen: list[np.ndarray] = seen, overlay: bool = overlay) -> None:
            scorer = DeepfakeScorer(classifier="meso4-df", classifier_path=meso, device=args.device)
            results, _ = scorer.score_video(seen, batch=BATCH)
            if overlay:
                for frame, result in zip(seen, results, strict=True):
                    draw_overlay(frame, result.faces, OverlayStyle(), frame_score=result.score)

        timing = compare(
            lambda clip=clip, overlay=overlay: render(
                cf.deepfake(clip, overlay=overlay, classifier_path=meso, device=args.device)
            ),
            direct,
            args.repeat,
        )
        name = core.get_video_format(fmt).name
        rows.append(
            {"filter": f"deepfake overlay={overlay} ({name} {w}x{h})", "frames": len(faces), **timing}
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--repeat", type=int, default=3, help="timed filter/direct pairs per row")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--only", default="colorize,deepfake", help="colorize (with transfer), deepfake")
    parser.add_argument("--quick", action="store_true", help="4 frames, 1 timed pair")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.repeat = 4, 1
    shared = _shared()
    wanted = set(args.only.split(","))
    rows: list[dict[str, Any]] = []
    if "colorize" in wanted:
        rows += colour_rows(args, shared)
    if "deepfake" in wanted:
        rows += deepfake_rows(args, shared)
    for r in rows:
        r["filter_fps"] = r["frames"] / r["filter_s"]
        r["direct_fps"] = r["frames"] / r["direct_s"]
    machine = f"{platform.machine()} {os.cpu_count()}-core CPU" if args.device == "cpu" else args.device
    print(
        f"{'filter':<42} {'frames':>6} {'filter fps':>11} {'direct fps':>11} {'overhead':>9} {'(best)':>8} "
        f"{'cpu':>8}",
        file=sys.stderr,
    )
    for r in rows:
        print(
            f"{r['filter']:<42} {r['frames']:>6} {r['filter_fps']:>11.2f} {r['direct_fps']:>11.2f} "
            f"{100 * r['overhead']:>8.1f}% {100 * r['overhead_best']:>7.1f}% {100 * r['cpu_overhead']:>7.1f}%",
            file=sys.stderr,
        )
    result = {
        "machine": machine,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "vs_threads": core.num_threads,
        "model_input": args.size,
        "repeat": args.repeat,
        "overhead": "median over alternating pairs of wall time(filter) / time(direct) - 1 (cpu_overhead: of "
        "process CPU time; overhead_best: best filter time / best direct time - 1)",
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(RESULTS)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
