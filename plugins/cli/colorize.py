"""`chromaflow colorize IN OUT`: colorize a video (file, image sequence or y4m pipe), keeping audio and timing.

The options are those of VapourSynth's ``colorize`` and the PyAV ``ColorizeNode``: one core engine
(:class:`chromaflow.core.video.VideoColorizer`) behind all three, so the same options give the same chroma. The
flags' defaults are :class:`~chromaflow.core.options.ColorizeOptions`'s, and a run builds one of those from them
and hands it to the node.
"""

import argparse
import os

from chromaflow.core.errors import UsageError
from chromaflow.core.hints import HINT_SYNTAX, collect_hints
from chromaflow.core.mixing import members_of
from chromaflow.core.options import COLORIZE_ENGINES, MODES, ColorizeOptions
from chromaflow.core.scenecut import DEFAULT_THRESHOLD
from chromaflow.core.transfer import load_references
from chromaflow.filters.pyav import ColorizeNode, FrameNode
from chromaflow.filters.pyav.frame_counts import exact_frame_count
from chromaflow.plugins.cli.model_options import add_model_arguments
from chromaflow.plugins.cli.project_args import (
    add_project_argument,
    project_of,
    project_options,
    project_reads,
)
from chromaflow.plugins.cli.video_common import (
    add_encode_arguments,
    add_ui_arguments,
    add_video_io_arguments,
    check_video_io,
    frames_at_least,
    run_video,
)

DEFAULT_MODEL = ColorizeOptions.model
NO_MODEL = "none"


def model_of(args: argparse.Namespace) -> str | None:
    """The --model value, ``None`` for ``--model none`` (keyframe transfer alone)."""
    return None if str(args.model).strip().lower() == NO_MODEL else str(args.model)


def smooth_of(args: argparse.Namespace) -> int:
    return 0 if args.no_smooth else int(args.smooth)


def options_of(args: argparse.Namespace) -> ColorizeOptions:
    """The run's options (checked as they are built, before references and hints are read)."""
    project = project_of(args)
    if project is not None:
        return project_options(args, project)
    return ColorizeOptions(
        model=model_of(args),
        device=args.device,
        precision=args.precision,
        size=args.size,
        render_factor=args.render_factor,
        mix=args.mix,
        mix_rule=args.mix_rule,
        mix_softness=args.mix_softness,
        batch_size=args.batch,
        transfer=args.transfer,
        smooth=smooth_of(args),
        scene_cut_threshold=args.scene_cut,
        engine=args.engine,
    )


def build_nodes(args: argparse.Namespace, options: ColorizeOptions) -> list[FrameNode]:
    """The node chain of a colorize run: one ColorizeNode carrying ``options``."""
    project = project_of(args)
    if project is not None:
        hints_of, refs_of = project.engine_inputs(exact_frame_count(args.input))
        return [ColorizeNode(references=refs_of, hints=hints_of, options=options, overlap=True)]
    model = model_of(args)
    if args.arch and model is None:
        raise UsageError("--arch names the architecture of a --model file; --model none has no model")
    hints = collect_hints(args.hint or (), args.hints_json)
    references = load_references(args.ref, exact_frame_count(args.input)) if args.ref else None
    # --arch: the architecture of a plain state_dict file, as for `chromaflow image`
    colorizer = options.new_colorizer(args.arch) if args.arch and model is not None else None
    # overlap: the model runs a batch ahead on a worker thread while this thread smooths and joins the frames before
    return [
        ColorizeNode(colorizer, references=references, hints=hints or None, options=options, overlap=True)
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
    for member in members_of(model) if model is not None else ():
        if os.path.isfile(os.path.expanduser(member)):
            reads.append(("the model file --model", os.path.expanduser(member)))
    return reads + project_reads(args)


def run(args: argparse.Namespace) -> int:
    check_video_io(args.input, args.output, reads=files_read(args))
    options = options_of(args)
    nodes = build_nodes(args, options)
    run_video(
        args,
        args.input,
        args.output,
        nodes,
        "colorize",
        extra_json=lambda _r: {
            "model": options.model,
            "references": sorted(int(spec.split("=", 1)[0]) for spec in args.ref or ()),
            "transfer": options.transfer if args.ref else None,
            "smooth": options.smooth,
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
        metavar="NAME|A+B|none",
        help=f"colour model: a registry name (chromaflow models list), a .pt file, two of them as A+B (their "
        f"colours mixed, see --mix-rule), or 'none' for keyframe transfer alone (default: {DEFAULT_MODEL})",
    )
    add_model_arguments(model)
    model.add_argument(
        "--hint", action="append", metavar="X,Y,#RRGGBB[,R]", help=f"colour hint: {HINT_SYNTAX}"
    )
    model.add_argument("--hints-json", metavar="FILE", help="colour hints as a JSON list")
    model.add_argument(
        "--batch",
        type=int,
        default=ColorizeOptions.batch_size,
        help=f"frames per model batch (default {ColorizeOptions.batch_size})",
    )
    model.add_argument("--device", help="auto, cpu, cuda or cuda:N (default: $CHROMAFLOW_DEVICE or auto)")
    model.add_argument("--precision", help="auto, fp32, fp16 or bf16")
    model.add_argument(
        "--engine",
        choices=COLORIZE_ENGINES,
        default=ColorizeOptions.engine,
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
    add_project_argument(keys)
    keys.add_argument(
        "--transfer",
        choices=MODES,
        default=ColorizeOptions.transfer,
        help="how references reach other frames: propagate (same shot, optical flow), reinhard / histogram "
        "(global colour statistics), knn (texture matching; references of other content), flow (propagate, "
        "falling back per region), auto (flow fused with feature matching against the keyframes and a memory; "
        "flow when the matching encoder mobilenet-v2-imagenet is not downloaded; default)",
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
        default=ColorizeOptions.smooth,
        metavar="R",
        help=f"temporal smoothing radius in frames against colour flicker (default {ColorizeOptions.smooth})",
    )
    smooth.add_argument("--no-smooth", action="store_true", help="no temporal smoothing")
    add_encode_arguments(parser)
    add_ui_arguments(parser)
    parser.set_defaults(func=run)
