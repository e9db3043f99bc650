"""`chromaflow colorize IN OUT`: colorize a video (file, image sequence or y4m pipe), keeping audio and timing."""

import argparse

from chromaflow.core.hints import HINT_SYNTAX, collect_hints
from chromaflow.filters.pyav import ColorizeNode, FrameNode
from chromaflow.filters.pyav_colorize import DEFAULT_SMOOTH_RADIUS
from chromaflow.plugins.cli.video_common import add_encode_arguments, add_ui_arguments, run_video

DEFAULT_MODEL = "base"


def build_nodes(args: argparse.Namespace) -> list[FrameNode]:
    """The node chain of a colorize run. Keyframe transfer (--ref/--transfer) will slot in here."""
    hints = collect_hints(args.hint or (), args.hints_json)
    return [
        ColorizeNode(
            model=args.model,
            device=args.device,
            precision=args.precision,
            size=args.size,
            hints=hints,
            smooth=0 if args.no_smooth else args.smooth,
            batch_size=args.batch,
        )
    ]


def run(args: argparse.Namespace) -> int:
    nodes = build_nodes(args)
    run_video(
        args,
        args.input,
        args.output,
        nodes,
        "colorize",
        extra_json=lambda _r: {"model": args.model, "smooth": 0 if args.no_smooth else args.smooth},
    )
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "colorize",
        help="colorize a video; audio, subtitles and timestamps are kept",
        description="Colorize IN into OUT. IN/OUT: video files, image sequences (frames/%05d.png) or '-' for "
        "y4m on stdin/stdout (ffmpeg -i in.mp4 -f yuv4mpegpipe - | chromaflow colorize - - | ffmpeg -i - "
        "out.mp4). Y'CbCr input keeps its luma plane bit for bit.",
    )
    parser.add_argument(
        "input", metavar="IN", help="input video, image-sequence pattern, or - (y4m on stdin)"
    )
    parser.add_argument(
        "output", metavar="OUT", help="output video, image-sequence pattern, or - (y4m on stdout)"
    )
    model = parser.add_argument_group("colorization")
    model.add_argument("--model", default=DEFAULT_MODEL, help=f"colour model (default: {DEFAULT_MODEL})")
    model.add_argument(
        "--hint", action="append", metavar="X,Y,#RRGGBB[,R]", help=f"colour hint: {HINT_SYNTAX}"
    )
    model.add_argument("--hints-json", metavar="FILE", help="colour hints as a JSON list")
    model.add_argument("--size", type=int, default=256, help="model input side (default 256)")
    smooth = model.add_mutually_exclusive_group()
    smooth.add_argument(
        "--smooth",
        type=int,
        default=DEFAULT_SMOOTH_RADIUS,
        metavar="R",
        help=f"temporal smoothing radius in frames (default {DEFAULT_SMOOTH_RADIUS})",
    )
    smooth.add_argument("--no-smooth", action="store_true", help="no temporal smoothing")
    model.add_argument("--batch", type=int, default=8, help="frames per model batch (default 8)")
    model.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: $CHROMAFLOW_DEVICE or auto)")
    model.add_argument("--precision", help="auto, fp32, fp16 or bf16")
    # Keyframe transfer options (--ref N=IMAGE, --transfer MODE) belong in their own group here.
    add_encode_arguments(parser)
    add_ui_arguments(parser)
    parser.set_defaults(func=run)
