"""Overhead of the VapourSynth filters against direct engine calls on the same frames.

For each filter, frames/s of (a) rendering the filtered clip frame by frame with ``get_frame`` and (b) calling the
engine directly on the same planes in a Python loop, including the colour conversions a host needs to go from
those planes to the result (chroma planes for colorize/transfer; RGB for deepfake), so the difference is what
VapourSynth adds: plane access, frame copies, properties, the nested frame requests of sequential engines. Overhead = time(a) / time(b) - 1; the target is <= 10 %. The source clip is pre-rendered
into memory so (a) does not pay for producing its input.

Data: ``davis-dev/dog`` frames (854 x 480) as YUV420P8, and a DFDC clip's frames for ``deepfake``. The colour net
is the ``base`` architecture with seeded random weights (its speed does not depend on the weights).

    .venv/bin/python benchmarks/vapoursynth.py [--frames 8] [--device cpu]
"""

import sys
from pathlib import Path

# Run as a script, this file's folder comes first on sys.path and its name would shadow the vapoursynth package.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from typing import Any  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import vapoursynth as vs  # noqa: E402

from chromaflow.core.colorizer import Colorizer, join_in_gamut  # noqa: E402
from chromaflow.core.colour import (  # noqa: E402
    YCbCrFormat,
    downsample_chroma,
    rgb_to_ycbcr,
)
from chromaflow.core.deepfake import DeepfakeScorer  # noqa: E402
from chromaflow.core.keyframes import KeyframeTransfer  # noqa: E402
from chromaflow.core.nets.base import BaseColorNet  # noqa: E402
from chromaflow.filters import vapoursynth as cf  # noqa: E402

core = vs.core
RESULTS = Path(__file__).resolve().parent / "results" / "vapoursynth.json"


def _shared() -> Path:
    explicit = os.environ.get("CHROMAFLOW_SHARED")
    return Path(explicit) if explicit else Path(__file__).resolve().parents[2] / "shared"


def clip_from_rgb(frames: list[np.ndarray]) -> vs.VideoNode:
    """A YUV420P8 (BT.709, limited) clip of RGB uint8 frames, rendered once into memory."""
    h, w = frames[0].shape[:2]
    blank = core.std.BlankClip(format=vs.RGB24, width=w, height=h, length=len(frames))

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        g = f.copy()
        for p in range(3):
            np.asarray(g[p])[...] = frames[n][:, :, p]
        return g

    rgb = core.std.ModifyFrame(blank, blank, fill)
    yuv = core.resize.Bicubic(rgb, format=vs.YUV420P8, matrix_s="709")
    rendered = [yuv.get_frame(n) for n in range(len(frames))]
    held = core.std.BlankClip(yuv, keep=True)
    return core.std.ModifyFrame(held, held, lambda n, f: rendered[n])


def timed(fn: Callable[[], Any], repeat: int = 2) -> float:
    """Best wall-clock time of ``repeat`` runs (after one warm-up run)."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def render(clip: vs.VideoNode) -> None:
    for n in range(clip.num_frames):
        clip.get_frame(n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    shared = _shared()
    davis = sorted((shared / "data/davis-dev/dog").glob("*.jpg"))[: args.frames]
    if not davis:
        sys.exit(f"no DAVIS frames under {shared}; set CHROMAFLOW_SHARED")
    rgb_frames = [np.ascontiguousarray(cv2.imread(str(p))[:, :, ::-1]) for p in davis]
    src = clip_from_rgb(rgb_frames)
    ys = [np.array(src.get_frame(n)[0]) for n in range(src.num_frames)]
    torch.manual_seed(0)
    net = BaseColorNet(width=32).eval()
    colorizer = Colorizer(net, device=args.device, size=args.size)
    fmt = YCbCrFormat("709", False, 8)
    rows: list[dict[str, Any]] = []

    def add(name: str, filtered: float, direct: float, frames: int) -> None:
        rows.append(
            {
                "filter": name,
                "frames": frames,
                "filter_fps": frames / filtered,
                "direct_fps": frames / direct,
                "overhead": filtered / direct - 1.0,
            }
        )

    # colorize: the filter against Colorizer.colorize_ycbcr on the same luma planes.
    add(
        "colorize (YUV420P8)",
        timed(lambda: render(cf.colorize(src, model=colorizer, size=args.size, device=args.device))),
        timed(lambda: [colorizer.colorize_ycbcr(y, fmt) for y in ys]),
        len(ys),
    )

    # transfer: the filter against KeyframeTransfer.ab on the same frames (fresh engines: no warm caches).
    key = {0: rgb_frames[0]}
    lumas = [cf.gray_lightness((torch.from_numpy(y.astype(np.float32)) - 16) / 219)[0].numpy() for y in ys]

    unit_fmt = YCbCrFormat("709", True, None)

    def direct_transfer() -> None:
        engine = KeyframeTransfer(key, lambda k: lumas[k], len(lumas), "auto")
        for n in range(len(lumas)):
            l_star = torch.from_numpy(lumas[n])[None]
            rgb, _ = join_in_gamut(l_star[None], torch.from_numpy(engine.ab(n, lumas[n]))[None])
            downsample_chroma(rgb_to_ycbcr(rgb[0], unit_fmt)[1:3], (2, 2), "left")  # the chroma planes

    add(
        "transfer auto (YUV420P8)",
        timed(lambda: render(cf.transfer(src, key)), repeat=1),
        timed(direct_transfer, repeat=1),
        len(ys),
    )

    # deepfake: the filter against DeepfakeScorer.score_frames on the same RGB frames.
    meso = shared / "models/mesonet/Meso4_DF.h5"
    if meso.is_file():
        container = cv2.VideoCapture(str(shared / "data/deepfake-dev/dfdc/lynaeydofd.mp4"))
        faces: list[np.ndarray] = []
        while len(faces) < args.frames:
            ok, bgr = container.read()
            if not ok:
                break
            faces.append(np.ascontiguousarray(bgr[:, :, ::-1]))
        face_clip = clip_from_rgb(faces)
        face_rgb = [
            np.stack([np.asarray(f[p]) for p in range(3)], axis=-1)
            for f in (
                core.resize.Bicubic(face_clip, format=vs.RGB24, matrix_in_s="709").get_frame(n)
                for n in range(len(faces))
            )
        ]

        def direct_deepfake() -> None:
            DeepfakeScorer(classifier="meso4-df", classifier_path=meso, device=args.device).score_frames(
                face_rgb
            )

        add(
            f"deepfake overlay=False ({faces[0].shape[1]}x{faces[0].shape[0]})",
            timed(
                lambda: render(
                    cf.deepfake(face_clip, overlay=False, classifier_path=meso, device=args.device)
                ),
                repeat=1,
            ),
            timed(direct_deepfake, repeat=1),
            len(faces),
        )

    machine = f"{platform.machine()} {os.cpu_count()}-core CPU" if args.device == "cpu" else args.device
    print(
        f"{'filter':<34} {'frames':>6} {'filter fps':>11} {'direct fps':>11} {'overhead':>9}", file=sys.stderr
    )
    for r in rows:
        print(
            f"{r['filter']:<34} {r['frames']:>6} {r['filter_fps']:>11.2f} {r['direct_fps']:>11.2f} "
            f"{100 * r['overhead']:>8.1f}%",
            file=sys.stderr,
        )
    result = {
        "machine": machine,
        "device": args.device,
        "torch_threads": torch.get_num_threads(),
        "vs_threads": core.num_threads,
        "model_input": args.size,
        "frame_size": [int(rgb_frames[0].shape[1]), int(rgb_frames[0].shape[0])],
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n")
    tmp.replace(RESULTS)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
