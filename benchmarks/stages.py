"""Per-stage throughput and peak memory at 854x480 and 1920x1080, on the CPU and on CUDA when present.

Every stage runs on the same real frames: the first DAVIS sequence of ../shared/data/davis-dev long enough for
--frames, scaled to each resolution and encoded as an H.264 clip (libx264 veryfast CRF 18, yuv420p, BT.709 tags)
in a temporary folder. Stages:

  decode          PyAV H.264 -> yuv420p planes (numpy copies of Y', Cb, Cr)
  lightness       Y' plane -> L* (ycbcr_lightness; CPU: per numpy frame as the hosts do, CUDA: a uint8 batch)
  chroma          L* + ab -> 4:2:0 chroma code values (ycbcr_chroma; ab: the `base` net's real prediction)
  rgb24           yuv420p frame -> RGB24 (what the deepfake path feeds its detector)
  inference       Colorizer.predict_ab on L* already at 256x256, batch 1/4/8/16, `base` and `siggraph17`
  flow            DIS flow between consecutive frames at the hosts' working size (L* resized, then flow)
  smoothing       TemporalSmoother, radius 2, on working-size L* and ab (includes its 2 DIS flows per frame)
  upsample        working-size ab -> full size by the guided filter on full L* (propagate.to_full_size)
  face_detection  BlazeFace (shared weights) on RGB frames, batches of 8
  classification  face crop + Meso4 (shared Meso4_DF.h5) on 16 face crops from a DFDC frame
  overlay         draw_overlay with two scored faces
  encode          libx264 with the project's MP4 defaults; h264_nvenc with the project's NVENC defaults when it
                  opens (else the JSON's "h264_nvenc" says why not)
  end_to_end      file-to-file colorize transcode: transcode() with ColorizeNode(base-v1, smoothing r=2, batch 8,
                  overlap as `chromaflow colorize` sets it), MP4 output with the project's default encoder

Rates are items/s (frames, flow pairs or crops: see the unit column), the median of repeats, each repeat running
for at least --min-time seconds. Memory: peak RSS of the process while the stage ran (absolute, and over the level
at its start), and peak CUDA allocation. Prints a table on stdout (progress on stderr) and writes
benchmarks/results/stages.json.

    python benchmarks/stages.py [--quick] [--resolutions 480p,1080p] [--stages decode,inference]
                                [--devices cpu,cuda] [--frames 32] [--out results/stages.json] [--merge]
    python benchmarks/stages.py --markdown      # the results as a Markdown table (README)
    python benchmarks/stages.py --stages smoothing,end_to_end --resolutions 480p --merge --baseline /tmp/cf-old
                                                # also the same stages on another checkout, in one run

Host-only stages (decode, rgb24, flow, upsample, overlay, encode) run once, on the CPU. Inference does not
depend on the frame size (the net sees 256x256), so it runs once. ``--merge`` keeps the rows of the result file
for stage/resolution/device triples this run does not measure, so slow stages can be measured in separate runs.
"""

import argparse
import inspect
import itertools
import json
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import PeakMemory, describe_machine, machine, measure, run_baseline

from chromaflow.core import registry
from chromaflow.core.colorizer import Colorizer, ycbcr_chroma, ycbcr_lightness
from chromaflow.core.deepfake import CROP_SPECS, DeepfakeScorer, FaceScore, crop_face
from chromaflow.core.faces import FaceDetector
from chromaflow.core.flow import compute_flow, resize_luma, to_flow_luma, working_size
from chromaflow.core.nets import mesonet
from chromaflow.core.nets.zhang import build_zhang
from chromaflow.core.overlay import OverlayStyle, draw_overlay
from chromaflow.core.temporal import TemporalSmoother
from chromaflow.core.transfer import PropagationParams
from chromaflow.core.transfer.propagate import to_full_size  # the stage itself: (H, W, 2) inside
from chromaflow.core.video import DEFAULT_SMOOTH_RADIUS
from chromaflow.filters.pyav import ColorizeNode, transcode
from chromaflow.filters.pyav.encoders import EncodeOptions
from chromaflow.filters.pyav.frames import layout_of, plane_view, rgb24_of, siting_of, ycbcr_format_of

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "stages.json"
SHARED = Path(os.environ.get("CHROMAFLOW_SHARED", HERE.parent.parent / "shared"))
STAGES = (
    "decode",
    "lightness",
    "chroma",
    "rgb24",
    "inference",
    "flow",
    "smoothing",
    "upsample",
    "face_detection",
    "classification",
    "overlay",
    "encode",
    "end_to_end",
)
HOST_ONLY = {
    "decode",
    "rgb24",
    "flow",
    "overlay",
    "encode",
}  # no device choice: CPU libraries (FFmpeg, OpenCV)
PER_RESOLUTION = [s for s in STAGES if s != "inference"]  # inference runs on L* already at the model size
NAMED_SIZES = {"480p": (854, 480), "720p": (1280, 720), "1080p": (1920, 1080), "2160p": (3840, 2160)}
MODEL_SIZE = 256
FPS = 24


def log(*parts: object) -> None:
    print(*parts, file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------------ options


@dataclass
class Settings:
    frames: int
    repeats: int
    min_time: float
    budget: float
    batches: list[int]
    models: list[str]
    precisions: list[str]
    devices: list[str]
    resolutions: dict[str, tuple[int, int]]
    stages: list[str]
    shared: Path
    quick: bool
    out: Path
    merge: bool
    markdown: bool
    baseline: Path | None = None


def parse_resolutions(text: str) -> dict[str, tuple[int, int]]:
    out = {}
    for item in (t.strip() for t in text.split(",") if t.strip()):
        if item in NAMED_SIZES:
            w, h = NAMED_SIZES[item]
        else:
            try:
                w, h = (int(v) for v in item.lower().split("x"))
            except ValueError:
                raise SystemExit(f"bad resolution {item!r}: use 480p, 1080p or WIDTHxHEIGHT") from None
            if w < 64 or h < 64 or w % 2 or h % 2:
                raise SystemExit(f"resolution {item} must be even and at least 64x64")
        out[f"{w}x{h}"] = (w, h)
    if not out:
        raise SystemExit("give at least one resolution")
    return out


def parse_list(text: str, allowed: tuple[str, ...], what: str) -> list[str]:
    items = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in items if t not in allowed]
    if unknown:
        raise SystemExit(f"unknown {what} {', '.join(unknown)}: choose from {', '.join(allowed)}")
    return items


def parse_args(argv: list[str] | None) -> Settings:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="few frames, one short repeat per case")
    parser.add_argument("--resolutions", default="480p,1080p", help="comma list: 480p, 1080p or WxH")
    parser.add_argument("--stages", default="all", help=f"comma list of: {', '.join(STAGES)}")
    parser.add_argument(
        "--devices", default="auto", help="cpu, cuda or both (auto: cpu, plus cuda when present)"
    )
    parser.add_argument("--frames", type=int, default=None, help="clip length (default 32, 12 with --quick)")
    parser.add_argument(
        "--repeats", type=int, default=None, help="repeats per case (default 3, 1 with --quick)"
    )
    parser.add_argument(
        "--min-time", type=float, default=None, help="seconds per repeat (default 1, 0 quick)"
    )
    parser.add_argument(
        "--budget", type=float, default=20.0, help="seconds per case after which no further repeat starts"
    )
    parser.add_argument("--batches", default="1,4,8,16", help="inference batch sizes")
    parser.add_argument("--models", default="base,siggraph17", help="colorizer architectures for inference")
    parser.add_argument(
        "--precisions",
        default="auto",
        help="CUDA inference precisions (auto, fp32, fp16, bf16); CPU runs fp32",
    )
    parser.add_argument("--shared", type=Path, default=SHARED, help="the shared data folder")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="result JSON path")
    parser.add_argument(
        "--markdown",
        action="store_true",
        help="measure nothing: print the results in --out as a Markdown table (for the README)",
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the rows of --out for stage/resolution/device triples this run does not measure",
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        default=None,
        help="also run the chosen stages on another checkout of chromaflow (e.g. `git archive HEAD | tar -x -C "
        "/tmp/cf-old`), in a child process right after this one; its rows are added with ' [baseline]' in the "
        "variant, and this run's rows get vs_baseline (rate ratio)",
    )
    args = parser.parse_args(argv)
    quick = args.quick
    frames = args.frames if args.frames is not None else (12 if quick else 32)
    if frames < 4:
        raise SystemExit("--frames must be at least 4")
    if args.devices == "auto":
        devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    else:
        devices = parse_list(args.devices, ("cpu", "cuda"), "device")
        if "cuda" in devices and not torch.cuda.is_available():
            raise SystemExit("--devices cuda: no CUDA device is available here; use --devices cpu")
    stages = list(STAGES) if args.stages == "all" else parse_list(args.stages, STAGES, "stage")
    try:
        batches = [int(b) for b in args.batches.split(",") if b.strip()]
    except ValueError:
        raise SystemExit(f"bad --batches {args.batches!r}: use numbers like 1,4,8,16") from None
    if not batches or min(batches) < 1:
        raise SystemExit("--batches needs positive batch sizes")
    settings = Settings(
        frames=frames,
        repeats=args.repeats if args.repeats is not None else (1 if quick else 3),
        min_time=args.min_time if args.min_time is not None else (0.0 if quick else 1.0),
        budget=args.budget,
        batches=batches,
        models=parse_list(args.models, ("base", "siggraph17", "eccv16"), "model"),
        precisions=parse_list(args.precisions, ("auto", "fp32", "fp16", "bf16"), "precision"),
        devices=devices,
        resolutions=parse_resolutions(args.resolutions),
        stages=stages,
        shared=args.shared,
        quick=quick,
        out=args.out,
        merge=args.merge,
        markdown=args.markdown,
        baseline=args.baseline,
    )
    return settings


# -------------------------------------------------------------------------------------------- test media


def davis_frames(shared: Path, count: int) -> tuple[str, list[np.ndarray]]:
    """The first ``count`` RGB frames of the first DAVIS sequence that has enough (else of all, in order)."""
    root = shared / "data" / "davis-dev"
    if not root.is_dir():
        raise SystemExit(
            f"{root} is missing: point --shared (or CHROMAFLOW_SHARED) at the shared data folder"
        )
    sequences = sorted(p for p in root.iterdir() if p.is_dir())
    ranked = sorted(sequences, key=lambda p: len(list(p.glob("*.jpg"))) < count)  # long enough first, stable
    paths: list[Path] = []
    names = []
    for seq in ranked:
        names.append(seq.name)
        paths += sorted(seq.glob("*.jpg"))[: count - len(paths)]
        if len(paths) >= count:
            break
    frames = []
    for p in paths:
        bgr = cv2.imread(str(p), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"cannot read {p}")
        frames.append(np.ascontiguousarray(bgr[:, :, ::-1]))
    if len(frames) < 4:
        raise SystemExit(f"{root} holds fewer than 4 frames")
    return "+".join(names), frames


def scaled(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    w, h = size
    if rgb.shape[:2] == (h, w):
        return rgb
    interp = cv2.INTER_AREA if w * h < rgb.shape[0] * rgb.shape[1] else cv2.INTER_CUBIC
    return cv2.resize(rgb, (w, h), interpolation=interp)


def write_clip(path: Path, frames: list[np.ndarray], size: tuple[int, int]) -> None:
    """An H.264 yuv420p MP4 of ``frames`` scaled to ``size`` (BT.709 tags, limited range)."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=FPS, options={"crf": "18", "preset": "veryfast"})
        stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
        for rgb in frames:
            frame = av.VideoFrame.from_ndarray(scaled(rgb, size), format="rgb24")
            frame = frame.reformat(format="yuv420p", dst_colorspace=1, dst_color_range=1)
            frame.colorspace, frame.color_range = 1, 1
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def iter_planes(path: Path) -> Iterator[tuple[np.ndarray, ...]]:
    """Decode ``path`` (FFmpeg's frame threads, as transcode() uses) and yield copies of each frame's planes."""
    with av.open(str(path)) as inp:
        stream = inp.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in inp.decode(stream):
            yield tuple(np.array(plane_view(frame, i)) for i in range(3))


def drain(items: Iterable[object]) -> None:
    """Run through ``items`` keeping none (so a stage's memory figure is its working set, not all its outputs)."""
    for _ in items:
        pass


def decode_planes(path: Path) -> tuple[list[av.VideoFrame], list[tuple[np.ndarray, np.ndarray, np.ndarray]]]:
    """Every frame of ``path`` and numpy copies of its Y', Cb, Cr planes."""
    frames, planes = [], []
    with av.open(str(path)) as inp:
        stream = inp.streams.video[0]
        stream.thread_type = "AUTO"
        for frame in inp.decode(stream):
            frames.append(frame)
            planes.append(tuple(np.array(plane_view(frame, i)) for i in range(3)))
    return frames, planes  # type: ignore[return-value]


@dataclass
class Media:
    """One resolution's clip and what the stages derive from it (computed once, reused)."""

    name: str
    size: tuple[int, int]
    clip: Path
    frames: list[av.VideoFrame]
    planes: list[tuple[np.ndarray, np.ndarray, np.ndarray]]
    lstar: list[np.ndarray]  # full-resolution L* (H, W) float32
    fmt: Any
    factors: tuple[int, int]
    siting: Any
    extra: dict[str, Any] = field(default_factory=dict)


def prepare_media(name: str, size: tuple[int, int], rgb: list[np.ndarray], folder: Path) -> Media:
    clip = folder / f"clip-{name}.mp4"
    write_clip(clip, rgb, size)
    frames, planes = decode_planes(clip)
    layout = layout_of(frames[0].format)
    fmt = ycbcr_format_of(frames[0], layout)
    lstar = [ycbcr_lightness(p[0], fmt).numpy() for p in planes]
    return Media(name, size, clip, frames, planes, lstar, fmt, layout.factors, siting_of(frames[0]))


# ------------------------------------------------------------------------------------------------- models


_COLORIZERS: dict[tuple[str, str, str], tuple[Colorizer, str]] = {}
_NET_BATCH = 64  # the Colorizer's own chunking; larger than any batch given to it here, so batches pass whole


def colorizer_for(model: str, device: str, precision: str = "auto") -> tuple[Colorizer, str]:
    """A Colorizer of architecture ``model`` (real weights when present, else seeded random ones) and a label."""
    key = (model, device, precision)
    if key not in _COLORIZERS:
        if registry.is_present(model):
            net: Any = model
            label = model
        else:  # the cost of a forward pass does not depend on the weights' values
            torch.manual_seed(0)
            net = build_zhang(model).eval()
            label = f"{model} (random weights)"
        prec = None if precision == "auto" else precision
        _COLORIZERS[key] = (
            Colorizer(net, device=device, precision=prec, size=MODEL_SIZE, batch_size=_NET_BATCH),
            label,
        )
    return _COLORIZERS[key]


def forget_colorizers(keep: str = "base") -> None:
    """Drop cached colorizers other than ``keep`` (so their weights do not weigh on later stages' memory)."""
    for key in [k for k in _COLORIZERS if k[0] != keep]:
        del _COLORIZERS[key]
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def blazeface_detector(shared: Path, device: str) -> FaceDetector:
    folder = shared / "models" / "blazeface"
    return FaceDetector(
        "blazeface",
        min_size=80,  # DeepfakeScorer's default
        blazeface_weights=folder / "blazeface.pth",
        blazeface_anchors=folder / "anchors.npy",
        device=device,
    )


def meso4(shared: Path) -> torch.nn.Module:
    return mesonet.load_meso("meso4", shared / "models" / "mesonet" / "Meso4_DF.h5")


# -------------------------------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One measurement: ``fn`` handles ``items`` items (``unit``) per call."""

    stage: str
    variant: str
    fn: Callable[[], object]
    items: int
    unit: str = "frames/s"
    batch: int | None = None
    note: str = ""
    warmup: int = 1


def run_case(case: Case, resolution: str, device: str, settings: Settings) -> dict[str, Any]:
    log(f"  {case.stage:<15} {case.variant:<40} {resolution:<10} {device}")
    sync = device if device == "cuda" else None
    load = round(os.getloadavg()[0], 2)
    # first calls (JIT, cuDNN autotune, lazy loads) stay out of the timing and the memory figure
    for _ in range(min(case.warmup, 1) if settings.quick else case.warmup):
        case.fn()
    cpu_start = time.process_time()
    with PeakMemory() as mem:
        result = measure(
            case.fn,
            case.items,
            min_time=settings.min_time,
            repeats=settings.repeats,
            warmup=0,
            device=sync,
            budget=settings.budget,
        )
    row: dict[str, Any] = {
        "stage": case.stage,
        "variant": case.variant,
        "resolution": resolution,
        "device": device,
        "batch": case.batch,
        "unit": case.unit,
        "rate": round(result.items_per_s, 2),
        **mem.as_dict(),
        "timing": result.as_dict(),
        # CPU seconds of every thread per item: what the work costs, nearly blind to other processes' load
        "cpu_ms_per_item": round(1000 * (time.process_time() - cpu_start) / (result.calls * case.items), 3),
        "load_average_1min": load,
    }
    if case.note:
        row["note"] = case.note
    return row


def decode_cases(media: Media, settings: Settings, device: str) -> list[Case]:
    n = len(media.frames)
    return [Case("decode", "PyAV H.264 -> yuv420p planes", lambda: drain(iter_planes(media.clip)), n)]


def lightness_cases(media: Media, settings: Settings, device: str) -> list[Case]:
    ys = [p[0] for p in media.planes]
    if device == "cpu":
        return [
            Case(
                "lightness",
                "Y' -> L* (numpy frame, table)",
                lambda: drain(ycbcr_lightness(y, media.fmt) for y in ys),
                len(ys),
            )
        ]
    batch = min(16, len(ys))
    y_dev = torch.from_numpy(np.stack(ys[:batch])).to(device)
    return [
        Case(
            "lightness",
            "Y' -> L* (uint8 batch on device)",
            lambda: ycbcr_lightness(y_dev, media.fmt),
            batch,
            batch=batch,
        )
    ]


def _real_ab(media: Media, count: int) -> torch.Tensor:
    """ab of the `base` net (CPU, fp32) for the first ``count`` frames at full resolution."""
    key = f"ab{count}"
    if key not in media.extra:
        colorizer, _ = colorizer_for("base", "cpu")
        l = torch.from_numpy(np.stack(media.lstar[:count]))[:, None]
        media.extra[key] = colorizer.predict_ab(l)
    return media.extra[key]


def chroma_cases(media: Media, settings: Settings, device: str) -> list[Case]:
    batch = min(4 if device == "cpu" else 16, len(media.lstar))
    ab = _real_ab(media, batch).to(device)
    l = torch.from_numpy(np.stack(media.lstar[:batch]))[:, None].to(device)
    return [
        Case(
            "chroma",
            "L* + ab -> 4:2:0 Cb Cr codes (in gamut)",
            lambda: ycbcr_chroma(l, ab, media.fmt, media.factors, media.siting),
            batch,
            batch=batch,
            note="ab: the base net's prediction for these frames",
        )
    ]


def rgb24_cases(media: Media, settings: Settings, device: str) -> list[Case]:
    return [
        Case(
            "rgb24",
            "yuv420p -> RGB24 (swscale)",
            lambda: drain(rgb24_of(f) for f in media.frames),
            len(media.frames),
        )
    ]


def inference_cases(media: Media, settings: Settings, device: str) -> list[Case]:
    l_full = torch.from_numpy(np.stack(media.lstar))[:, None]
    l_small = F.interpolate(l_full, (MODEL_SIZE, MODEL_SIZE), mode="bilinear", antialias=True)
    precisions = ["auto"] if device == "cpu" else settings.precisions  # auto: fp32 on the CPU
    cases = []
    for model in settings.models:
        for precision in precisions:
            for batch in settings.batches:
                colorizer, label = colorizer_for(model, device, precision)
                reps = -(-batch // l_small.shape[0])
                l_in = l_small.repeat(reps, 1, 1, 1)[:batch].to(device)
                dtype = str(colorizer.placement.dtype).removeprefix("torch.")
                cases.append(
                    Case(
                        "inference",
                        f"{label} {dtype} at {MODEL_SIZE}",
                        lambda c=colorizer, x=l_in: c.predict_ab(x),
                        batch,
                        batch=batch,
                        note="L* already at the model size, on the device",
                        warmup=3 if device == "cuda" else 1,
                    )
                )
    return cases


def _work_size(media: Media) -> tuple[int, int]:
    w, h = media.size
    return working_size((h, w), PropagationParams().max_side)


def flow_cases(media: Media, settings: Settings, device: str) -> list[Case]:
    work = _work_size(media)

    def run() -> None:
        small = [to_flow_luma(np.asarray(resize_luma(l, work))) for l in media.lstar]
        for a, b in itertools.pairwise(small):
            compute_flow(a, b)

    return [
        Case(
            "flow",
            f"DIS medium at {work[1]}x{work[0]} (resize + flow)",
            run,
            len(media.lstar) - 1,
            unit="pairs/s",
            note="one flow per consecutive pair (temporal smoothing computes its own, DIS fast, 2 per frame)",
        )
    ]


def _work_planes(media: Media) -> tuple[list[np.ndarray], np.ndarray]:
    """Working-size L* planes and the `base` net's ab ``(N, 2, h, w)`` for them, as VideoColorizer makes them."""
    if "work" not in media.extra:
        colorizer, _ = colorizer_for("base", "cpu")
        work = _work_size(media)
        l_work = [np.asarray(resize_luma(l, work), dtype=np.float32) for l in media.lstar]
        ab_work = colorizer.predict_ab(torch.from_numpy(np.stack(l_work))[:, None]).numpy()
        media.extra["work"] = (l_work, ab_work)
    return media.extra["work"]


def smoothing_cases(media: Media, settings: Settings, device: str) -> list[Case]:
    work = _work_size(media)
    l_work, ab_work = _work_planes(media)
    ab_in: list[Any] = [torch.from_numpy(a).to(device) for a in ab_work] if device != "cpu" else list(ab_work)
    smoother = TemporalSmoother(
        DEFAULT_SMOOTH_RADIUS, flow_max_side=PropagationParams().max_side, device=device
    )

    def run() -> None:
        smoother.reset()
        for l, ab in zip(l_work, ab_in, strict=True):
            smoother.push(l, ab)
        smoother.flush()

    return [
        Case(
            "smoothing",
            f"r={DEFAULT_SMOOTH_RADIUS} {smoother.backend} at {work[1]}x{work[0]}",
            run,
            len(l_work),
            note="includes its DIS flows (CPU) and scene-cut checks",
        )
    ]


def upsample_cases(media: Media, settings: Settings, device: str) -> list[Case]:
    l_work, ab_work = _work_planes(media)
    ab_hwc = [np.ascontiguousarray(a.transpose(1, 2, 0)) for a in ab_work]
    params = PropagationParams()
    h, w = l_work[0].shape
    return [
        Case(
            "upsample",
            f"ab {w}x{h} -> full size, guided filter r={params.guided_radius}",
            lambda: drain(
                to_full_size(lw, ab, lf, params)
                for lw, ab, lf in zip(l_work, ab_hwc, media.lstar, strict=True)
            ),
            len(l_work),
        )
    ]


def rgb_frames(media: Media) -> list[np.ndarray]:
    if "rgb" not in media.extra:
        media.extra["rgb"] = [rgb24_of(f) for f in media.frames]
    return media.extra["rgb"]


def face_detection_cases(media: Media, settings: Settings, device: str) -> list[Case]:
    detector = blazeface_detector(settings.shared, device)
    batch = min(8, len(media.frames))
    frames = rgb_frames(media)[:batch]
    tiles = len(detector.tiles(media.size[1], media.size[0]))
    return [
        Case(
            "face_detection",
            f"BlazeFace, {tiles} tiles per frame",
            lambda: detector.detect_batch(frames),
            batch,
            batch=batch,
        )
    ]


def _dfdc_faces(
    media: Media, settings: Settings
) -> tuple[np.ndarray, list[tuple[float, float, float, float]]]:
    """A DFDC frame scaled to this resolution and its BlazeFace boxes (or one centred box if none is found)."""
    if "dfdc" not in media.extra:
        path = settings.shared / "data" / "deepfake-dev" / "dfdc" / "lynaeydofd_fr0.jpg"
        bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if bgr is None:
            raise SystemExit(f"cannot read {path}")
        frame = scaled(np.ascontiguousarray(bgr[:, :, ::-1]), media.size)
        faces = blazeface_detector(settings.shared, "cpu").detect(frame)
        w, h = media.size
        boxes = [f.box for f in faces] or [(w * 0.4, h * 0.3, w * 0.6, h * 0.65)]
        media.extra["dfdc"] = (frame, boxes)
    return media.extra["dfdc"]


def classification_cases(media: Media, settings: Settings, device: str) -> list[Case]:
    frame, boxes = _dfdc_faces(media, settings)
    count = 16
    chosen = [boxes[i % len(boxes)] for i in range(count)]
    scorer = DeepfakeScorer(
        detector=blazeface_detector(settings.shared, "cpu"),
        classifier=meso4(settings.shared),
        classifier_name="meso4-df",
        device=device,
    )
    spec = CROP_SPECS["blazeface"]
    return [
        Case(
            "classification",
            "crop + Meso4 (DF weights)",
            lambda: scorer.classify([crop_face(frame, box, spec) for box in chosen]),
            count,
            unit="crops/s",
            batch=count,
            note=f"{len(boxes)} distinct face box(es) of a DFDC frame, repeated",
        )
    ]


def overlay_cases(media: Media, settings: Settings, device: str) -> list[Case]:
    _, boxes = _dfdc_faces(media, settings)
    w, h = media.size
    second = (w * 0.1, h * 0.2, w * 0.25, h * 0.5)
    faces = [FaceScore(1, boxes[0], 0.82, 0.9, 0.95), FaceScore(2, second, 0.2, 0.1, 0.9)]
    frames = rgb_frames(media)
    style = OverlayStyle(show_frame_bar=True)
    return [
        Case(
            "overlay",
            "2 faces, labels, bars (copy of the frame)",
            lambda: drain(draw_overlay(f, faces, style, frame_score=0.82) for f in frames),
            len(frames),
        )
    ]


def _encode_all(codec: str, options: dict[str, str], media: Media) -> int:
    ctx = av.CodecContext.create(codec, "w")
    ctx.width, ctx.height = media.size
    ctx.pix_fmt = "yuv420p"
    ctx.time_base = Fraction(1, FPS)
    ctx.framerate = Fraction(FPS)
    ctx.options = dict(options)
    size = 0
    for i, frame in enumerate(media.frames):
        frame.pts = i
        frame.time_base = ctx.time_base
        size += sum(p.size for p in ctx.encode(frame))
    size += sum(p.size for p in ctx.encode(None))
    return size


def encoder_settings(codec: str) -> tuple[str, dict[str, str]]:
    """The encoder and options the project's writer uses for ``codec`` in an MP4 (its defaults, no overrides)."""
    name, options, _ = EncodeOptions(codec=codec).resolve(".mp4", False)
    return name, options


def nvenc_status(media: Media) -> tuple[str, dict[str, str]]:
    """("ok", options) when h264_nvenc opens and encodes a frame here, else ("unavailable: <reason>", {})."""
    try:
        _, options = encoder_settings("h264_nvenc")  # the project refuses an NVENC that does not open
        ctx = av.CodecContext.create("h264_nvenc", "w")
        ctx.width, ctx.height = media.size
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = Fraction(1, FPS)
        ctx.framerate = Fraction(FPS)
        ctx.options = dict(options)
        ctx.open()
        ctx.encode(media.frames[0])
        ctx.encode(None)
    except Exception as err:  # any failure (no codec, no driver, no GPU, refused options) means "not here"
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        return f"unavailable: {type(err).__name__}: {reason}", {}
    return "ok", options


def encode_cases(media: Media, settings: Settings, device: str) -> list[Case]:
    codec, options = encoder_settings("libx264")
    label = " ".join(f"{k} {v}" for k, v in options.items())
    cases = [
        Case("encode", f"{codec} {label}", lambda: _encode_all(codec, options, media), len(media.frames))
    ]
    status, nv_options = nvenc_status(media)
    media.extra["nvenc"] = status
    if status == "ok":
        nv_label = " ".join(f"{k} {v}" for k, v in nv_options.items())
        cases.append(
            Case(
                "encode",
                f"h264_nvenc {nv_label}",
                lambda: _encode_all("h264_nvenc", nv_options, media),
                len(media.frames),
            )
        )
    return cases


# the node as `chromaflow colorize` builds it (the model a batch ahead on a worker thread); a --baseline checkout
# from before that option runs without it
CLI_NODE = {"overlap": True} if "overlap" in inspect.signature(ColorizeNode).parameters else {}


def end_to_end_cases(media: Media, settings: Settings, device: str) -> list[Case]:
    # base-v1 where the registry has it, else base: a --baseline checkout from before issue 19 (where base was
    # base-v1) then times the same net, and the ratio measures the pipeline alone
    model = "base-v1" if "base-v1" in registry.names() else "base"
    colorizer, label = colorizer_for(model, device)
    folder = media.clip.parent
    frames = len(media.frames)
    used: dict[str, str] = {}

    def run() -> None:
        report = transcode(
            media.clip,
            folder / f"e2e-{media.name}-{device}.mp4",
            [ColorizeNode(colorizer, smooth=DEFAULT_SMOOTH_RADIUS, batch_size=8, **CLI_NODE)],
        )
        if report.frames_out != frames:
            raise RuntimeError(f"transcode wrote {report.frames_out} frames of {frames}")
        used["codec"] = report.codec

    run()  # the warm-up; it also tells which encoder the MP4 default picks here
    return [
        Case(
            "end_to_end",
            f"colorize transcode, {label}, r={DEFAULT_SMOOTH_RADIUS}, batch 8",
            run,
            frames,
            note=f"file to file: decode, ColorizeNode, encode with the MP4 default ({used.get('codec', '?')}), mux",
            warmup=0,  # the builder ran it once already
        )
    ]


BUILDERS: dict[str, Callable[[Media, Settings, str], list[Case]]] = {
    "decode": decode_cases,
    "lightness": lightness_cases,
    "chroma": chroma_cases,
    "rgb24": rgb24_cases,
    "inference": inference_cases,
    "flow": flow_cases,
    "smoothing": smoothing_cases,
    "upsample": upsample_cases,
    "face_detection": face_detection_cases,
    "classification": classification_cases,
    "overlay": overlay_cases,
    "encode": encode_cases,
    "end_to_end": end_to_end_cases,
}


# -------------------------------------------------------------------------------------------------- output


def fmt_mib(v: float | None) -> str:
    return "-" if v is None else f"{v:.0f}"


def print_table(rows: list[dict[str, Any]], info: dict[str, Any]) -> None:
    print(f"per-stage throughput, {describe_machine(info)}")
    head = (
        f"{'stage':<15} {'variant':<44} {'resolution':<10} {'device':<6} {'batch':>5} {'rate':>9} "
        f"{'unit':<9} {'RSS peak':>8} {'RSS +':>7} {'dev peak':>8}"
    )
    print(head)
    print("-" * len(head))
    for r in rows:
        if "error" in r:
            print(f"{r['stage']:<15} {'ERROR: ' + r['error']}")
            continue
        batch = "" if r["batch"] is None else str(r["batch"])
        print(
            f"{r['stage']:<15} {r['variant'][:44]:<44} {r['resolution']:<10} {r['device']:<6} {batch:>5} "
            f"{r['rate']:>9.2f} {r['unit']:<9} {fmt_mib(r['host_peak_mib']):>8} "
            f"{fmt_mib(r['host_over_baseline_mib']):>7} {fmt_mib(r['device_peak_mib']):>8}"
        )
    print(
        "(rates: median of repeats; memory in MiB: process RSS peak, peak over the stage's start, CUDA peak)"
    )


def markdown_table(payload: dict[str, Any]) -> str:
    """The rows of a stages.json as a Markdown table, headed by the machine they were measured on."""
    lines = [
        f"Measured on {payload.get('machine_line', 'an unnamed machine')}"
        f"{' (quick run)' if payload.get('settings', {}).get('quick') else ''}.",
        "",
        "| stage | variant | resolution | device | batch | rate | unit | peak RSS MiB | RSS over start MiB "
        "| peak CUDA MiB |",
        "|---|---|---|---|---:|---:|---|---:|---:|---:|",
    ]
    for r in payload.get("rows", []):
        if "error" in r:
            lines.append(
                f"| {r['stage']} | error: {r['error']} | {r['resolution']} | {r['device']} |  |  |  |  |  |  |"
            )
            continue
        lines.append(
            f"| {r['stage']} | {r['variant']} | {r['resolution']} | {r['device']} | {r['batch'] or ''} "
            f"| {r['rate']:.2f} | {r['unit']} | {fmt_mib(r['host_peak_mib'])} "
            f"| {fmt_mib(r['host_over_baseline_mib'])} | {fmt_mib(r['device_peak_mib'])} |"
        )
    if payload.get("h264_nvenc"):
        lines += ["", f"h264_nvenc: {payload['h264_nvenc']}"]
    return "\n".join(lines)


def write_json(path: Path, payload: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.partial")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    tmp.replace(path)


# ---------------------------------------------------------------------------------------------------- main


def baseline_rows(settings: Settings, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same stages measured on the ``--baseline`` checkout (a child process), marked ' [baseline]'; this
    run's rows get ``vs_baseline``, their rate over the baseline's."""
    assert settings.baseline is not None
    args = [
        "--stages",
        ",".join(settings.stages),
        "--resolutions",
        ",".join(settings.resolutions),
        "--devices",
        ",".join(settings.devices),
        "--frames",
        str(settings.frames),
        "--repeats",
        str(settings.repeats),
        "--min-time",
        str(settings.min_time),
        "--budget",
        str(settings.budget),
        "--shared",
        str(settings.shared),
    ]
    log(f"baseline: the same stages on {settings.baseline}")
    old = run_baseline(Path(__file__), args + (["--quick"] if settings.quick else []), settings.baseline)
    marked = []
    for r in old.get("rows", []):
        if "error" in r:
            continue
        match = [
            n
            for n in rows
            if (n["stage"], n.get("resolution"), n.get("device"))
            == (r["stage"], r["resolution"], r["device"])
            and (n.get("batch"), n.get("variant")) == (r.get("batch"), r.get("variant"))
            and "rate" in n
        ]
        for n in match[:1]:
            n["vs_baseline"] = round(n["rate"] / r["rate"], 3)
        marked.append(r | {"variant": f"{r['variant']} [baseline]", "baseline": str(settings.baseline)})
    return marked


def main(argv: list[str] | None = None) -> int:
    settings = parse_args(argv)
    if settings.markdown:
        if not settings.out.is_file():
            raise SystemExit(f"{settings.out} does not exist: run the benchmark first")
        print(markdown_table(json.loads(settings.out.read_text())))
        return 0
    torch.manual_seed(0)
    info = machine()
    log(f"machine: {describe_machine(info)}; devices {', '.join(settings.devices)}")
    source, rgb = davis_frames(settings.shared, settings.frames)
    log(f"frames: {len(rgb)} of DAVIS {source}")
    rows: list[dict[str, Any]] = []
    nvenc = None
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chromaflow-stages-") as tmp:
        plans: list[tuple[str, Media | None]] = []
        media_by_res: dict[str, Media] = {}
        for res_name, size in settings.resolutions.items():
            log(f"clip {res_name}: encoding {len(rgb)} frames")
            media_by_res[res_name] = prepare_media(res_name, size, rgb, Path(tmp))
        first = next(iter(media_by_res.values()))
        for stage in settings.stages:
            if stage in PER_RESOLUTION:
                plans += [(stage, m) for m in media_by_res.values()]
            else:
                plans.append((stage, first))
        for stage, media in plans:
            assert media is not None
            devices = ["cpu"] if stage in HOST_ONLY else settings.devices
            resolution = media.name if stage in PER_RESOLUTION else f"{MODEL_SIZE}x{MODEL_SIZE}"
            for device in devices:
                try:
                    cases = BUILDERS[stage](media, settings, device)
                    for case in cases:
                        rows.append(run_case(case, resolution, device, settings))
                except Exception as err:  # keep measuring the other stages; the error is reported
                    log(traceback.format_exc())
                    rows.append(
                        {"stage": stage, "resolution": resolution, "device": device, "error": f"{err!r}"}
                    )
            if stage == "encode":
                nvenc = media.extra.get("nvenc", nvenc)
            if stage == "inference":
                forget_colorizers()
    if settings.baseline is not None:
        rows += baseline_rows(settings, rows)
    elapsed = time.perf_counter() - started
    print_table(rows, info)
    if nvenc is not None:
        print(f"h264_nvenc: {nvenc}")
    out = settings.out
    payload = {
        "machine": info,
        "machine_line": describe_machine(info),
        "settings": {
            "frames": settings.frames,
            "source": f"DAVIS {source} (../shared/data/davis-dev), libx264 yuv420p",
            "repeats": settings.repeats,
            "min_time_s": settings.min_time,
            "budget_s": settings.budget,
            "quick": settings.quick,
            "devices": settings.devices,
            "resolutions": list(settings.resolutions),
            "model_size": MODEL_SIZE,
            "working_side": PropagationParams().max_side,
        },
        "h264_nvenc": nvenc,
        "seconds": round(elapsed, 1),
        "rows": rows,
    }
    if settings.merge and out.is_file():
        earlier = json.loads(out.read_text())
        measured = {(r["stage"], r["resolution"], r["device"]) for r in rows}
        kept = [
            r for r in earlier.get("rows", []) if (r["stage"], r["resolution"], r["device"]) not in measured
        ]
        if nvenc is None:  # this run did not look at NVENC: keep what the earlier one found
            payload["h264_nvenc"] = earlier.get("h264_nvenc")
        order = {name: i for i, name in enumerate(STAGES)}
        payload["rows"] = sorted(kept + rows, key=lambda r: order.get(r["stage"], len(order)))
        payload["merged"] = True
    write_json(out, payload)
    log(f"wrote {out} after {elapsed:.0f} s")
    return 1 if any("error" in r for r in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
