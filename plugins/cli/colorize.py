"""`chromaflow colorize IN OUT`: colorize a video (file, image sequence or y4m pipe), keeping audio and timing.

The options are those of VapourSynth's ``colorize`` and the PyAV ``ColorizeNode``: one core engine
(:class:`chromaflow.core.video.VideoColorizer`) behind all three, so the same options give the same chroma.
"""

import argparse
import os

from chromaflow.core.errors import UsageError
from chromaflow.core.hints import HINT_SYNTAX, collect_hints
from chromaflow.core.scenecut import DEFAULT_THRESHOLD
from chromaflow.core.transfer import MODES, load_references
from chromaflow.core.video import DEFAULT_SMOOTH_RADIUS
from chromaflow.filters.pyav import ColorizeNode, FrameNode
from chromaflow.filters.pyav_transcode import exact_frame_count
from chromaflow.plugins.cli.video_common import (
    add_encode_arguments,
    add_ui_arguments,
    add_video_io_arguments,
    check_video_io,
    frames_at_least,
    run_video,
)

DEFAULT_MODEL = "base"
NO_MODEL = "none"


def model_of(args: argparse.Namespace) -> str | None:
    """The --model value, ``None`` for ``--model none`` (keyframe transfer alone)."""
    return None if str(args.model).strip().lower() == NO_MODEL else str(args.model)


def smooth_of(args: argparse.Namespace) -> int:
    return 0 if args.no_smooth else int(args.smooth)


def build_nodes(args: argparse.Namespace) -> list[FrameNode]:
    """The node chain of a colorize run: one ColorizeNode carrying every option."""
    hints = collect_hints(args.hint or (), args.hints_json)
    references = load_references(args.ref, exact_frame_count(args.input)) if args.ref else None
    model = model_of(args)
    if args.arch and model is None:
        raise UsageError("--arch names the architecture of a --model file; --model none has no model")
    from chromaflow.core.colorizer import Colorizer

    colorizer = (  # --arch: the architecture of a plain state_dict file, as for `chromaflow image`
        Colorizer(model, device=args.device, precision=args.precision, size=args.size, arch=args.arch)
        if args.arch and model is not None
        else None
    )
    return [
        ColorizeNode(
            colorizer,
            model=model,
            references=references,
            transfer=args.transfer,
            device=args.device,
            precision=args.precision,
            size=args.size,
            hints=hints or None,
            smooth=smooth_of(args),
            batch_size=args.batch,
            scene_cut_threshold=args.scene_cut,
            engine=args.engine,
        )
    ]


def files_read(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """What a colorize run reads besides IN: reference images, the hints file, a model given as a file."""
    reads: list[tuple[str, str | None]] = [
        (f"the reference image --ref {spec}", spec.split("=", 1)[1].strip())
        for spec in args.ref or ()
        if "=" in spec
    ]
    reads.append(("the hints file --hints-json", args.hints_json))
    model = model_of(args)
    if model is not None and os.path.isfile(os.path.expanduser(model)):
        reads.append(("the model file --model", os.path.expanduser(model)))
    return reads


def run(args: argparse.Namespace) -> int:
    check_video_io(args.input, args.output, reads=files_read(args))
    nodes = build_nodes(args)
    run_video(
        args,
        args.input,
        args.output,
        nodes,
        "colorize",
        extra_json=lambda _r: {
            "model": model_of(args),
            "references": sorted(int(spec.split("=", 1)[0]) for spec in args.ref or ()),
            "transfer": args.transfer if args.ref else None,
            "smooth": smooth_of(args),
        },
    )
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "colorize",
        help="colorize a video; audio, subtitles and timestamps are kept",
        description="Colorize IN into OUT. IN/OUT: video files, image sequences (frames/%05d.png) or '-' for "
        "y4m on stdin/stdout (ffmpeg -i in.mp4 -f yuv4mpegpipe - | chromaflow colorize - - | ffmpeg -i - "
        "out.mp4). Y'CbCr input keeps its luma plane bit for bit. Colour comes from a model, from reference "
        "keyframes (--ref), or both (the model fills in where the references do not reach).",
    )
    add_video_io_arguments(parser)
    model = parser.add_argument_group("colorization")
    model.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        metavar="NAME|none",
        help=f"colour model: a registry name, a .pt file, or 'none' for keyframe transfer alone "
        f"(default: {DEFAULT_MODEL})",
    )
    model.add_argument("--arch", help="architecture of a .pt --model file (eccv16, siggraph17, base)")
    model.add_argument(
        "--hint", action="append", metavar="X,Y,#RRGGBB[,R]", help=f"colour hint: {HINT_SYNTAX}"
    )
    model.add_argument("--hints-json", metavar="FILE", help="colour hints as a JSON list")
    model.add_argument("--size", type=int, default=256, help="model input side (default 256)")
    model.add_argument("--batch", type=int, default=8, help="frames per model batch (default 8)")
    model.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: $CHROMAFLOW_DEVICE or auto)")
    model.add_argument("--precision", help="auto, fp32, fp16 or bf16")
    model.add_argument(
        "--engine",
        choices=("auto", "device", "video"),
        default="auto",
        help="device: every per-frame step on the model's device (automatic colour without --ref or smoothing; "
        "the fast path on a GPU); video: the temporal engine; auto: device on CUDA where it applies (default)",
    )
    keys = parser.add_argument_group("reference keyframes")
    keys.add_argument(
        "--ref",
        action="append",
        metavar="N=IMAGE",
        help="a coloured reference for frame N (0-based); repeat for several keyframes",
    )
    keys.add_argument(
        "--transfer",
        choices=MODES,
        default="auto",
        help="how references reach other frames: propagate (same shot, optical flow), reinhard / histogram "
        "(global colour statistics), knn (texture matching; references of other content), auto (propagate, "
        "falling back per region; default)",
    )
    keys.add_argument(
        "--scene-cut",
        type=float,
        default=DEFAULT_THRESHOLD,
        metavar="T",
        help=f"scene-cut threshold: propagation and smoothing stop at cuts (default {DEFAULT_THRESHOLD})",
    )
    smooth = model.add_mutually_exclusive_group()
    smooth.add_argument(
        "--smooth",
        type=frames_at_least(0),
        default=DEFAULT_SMOOTH_RADIUS,
        metavar="R",
        help=f"temporal smoothing radius in frames against colour flicker (default {DEFAULT_SMOOTH_RADIUS})",
    )
    smooth.add_argument("--no-smooth", action="store_true", help="no temporal smoothing")
    add_encode_arguments(parser)
    add_ui_arguments(parser)
    parser.set_defaults(func=run)
