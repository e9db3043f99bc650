"""`chromaflow deflicker IN OUT`: remove colour flicker from a video already in colour, keeping luma, audio, timing.

Runs :class:`chromaflow.filters.pyav.DeflickerNode` (the core's :class:`~chromaflow.core.deflicker.DeflickerStream`,
the same smoothing as colorize's ``--smooth``) on the video's own colour; I/O, encoding, progress and ``--json``
are the other video verbs' (:mod:`chromaflow.plugins.cli.video_common`). The flags' defaults are
:class:`~chromaflow.core.options.DeflickerOptions`'s, and a run builds one of those from them for the node.
"""

import argparse

from chromaflow.core.options import DeflickerOptions
from chromaflow.core.scenecut import DEFAULT_THRESHOLD
from chromaflow.filters.pyav import DeflickerNode
from chromaflow.plugins.cli.video_common import (
    add_encode_arguments,
    add_ui_arguments,
    add_video_io_arguments,
    check_video_io,
    frames_at_least,
    run_video,
)


def options_of(args: argparse.Namespace) -> DeflickerOptions:
    """The run's options (also what `chromaflow batch deflicker` builds for each segment)."""
    return DeflickerOptions(
        radius=args.radius, strength=args.strength, scene_cut_threshold=args.scene_cut, max_side=args.max_side
    )


def run(args: argparse.Namespace) -> int:
    check_video_io(args.input, args.output)
    options = options_of(args)
    run_video(
        args,
        args.input,
        args.output,
        [DeflickerNode(options=options)],
        "deflicker",
        extra_json=lambda _r: {
            "radius": options.radius,
            "strength": options.strength,
            "scene_cut": options.scene_cut_threshold,
        },
    )
    return 0


def _strength(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also refuses nan
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a strength: give a number >= 0 (1 = full, 0 = off)"
        )
    return value


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "deflicker",
        help="remove colour flicker from a video already in colour; luma, audio and timestamps are kept",
        description="Remove colour flicker from IN (e.g. the output of a per-frame colorizer) into OUT: each "
        "frame's colour is smoothed with its neighbours along the motion, stopping at scene cuts. The luma plane "
        "is kept bit for bit and only the change of colour is applied, so a frame without flicker comes back as "
        "it was. IN/OUT: video files, image sequences (frames/%05d.png) or '-' for y4m on stdin/stdout "
        "(ffmpeg -i in.mp4 -f yuv4mpegpipe - | chromaflow deflicker - - | ffmpeg -i - out.mp4). Gray video has "
        "no colour to deflicker: use `chromaflow colorize` for it.",
    )
    add_video_io_arguments(parser)
    group = parser.add_argument_group("deflicker")
    group.add_argument(
        "--radius",
        type=frames_at_least(1),
        default=DeflickerOptions.radius,
        metavar="R",
        help=f"frames on either side a frame's colour is smoothed with (>= 1, default {DeflickerOptions.radius}); "
        "output starts R frames after input",
    )
    group.add_argument(
        "--strength",
        type=_strength,
        default=DeflickerOptions.strength,
        metavar="S",
        help="weight of the neighbouring frames (>= 0; 1 = a confident neighbour counts as much as the frame "
        "itself, default; 0 = no change)",
    )
    group.add_argument(
        "--scene-cut",
        type=float,
        default=DEFAULT_THRESHOLD,
        metavar="T",
        help=f"scene-cut threshold: no colour is taken across a cut (default {DEFAULT_THRESHOLD})",
    )
    group.add_argument(
        "--max-side",
        type=int,
        default=DeflickerOptions.max_side,
        metavar="PX",
        help=f"longer side of the working resolution the correction is computed at (>= 16, default "
        f"{DeflickerOptions.max_side})",
    )
    add_encode_arguments(parser)
    add_ui_arguments(parser)
    parser.set_defaults(func=run)
