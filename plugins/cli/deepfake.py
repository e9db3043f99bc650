"""`chromaflow deepfake IN [OUT]`: score faces for manipulation; optional overlay video and score sidecars.

The flags' defaults are :class:`~chromaflow.core.options.DeepfakeOptions`'s; a run builds one of those from them and
hands it to :class:`~chromaflow.filters.pyav.DeepfakeNode`.
"""

import argparse
import sys
from typing import Any

from chromaflow.core.errors import UsageError
from chromaflow.core.nets.builders import archs
from chromaflow.core.options import AGGREGATES, CLASSIFIERS, FACE_DETECTORS, DeepfakeOptions
from chromaflow.core.scores_export import ScoresJsonlWriter, ScoresVttWriter
from chromaflow.filters.pyav import DeepfakeNode, ScoredFrame, TranscodeReport
from chromaflow.plugins.cli.video_common import (
    add_encode_arguments,
    add_ui_arguments,
    check_video_io,
    run_video,
)


def _print_summary(summary: dict[str, Any]) -> None:
    video = summary["video"]
    score = video["score"]
    verdict = (
        "no face found"
        if score is None
        else f"{video['verdict']} (score {score:.3f}, threshold {video['threshold']}, {video['aggregate']})"
    )
    print(
        f"chromaflow: {verdict}; faces in {video['frames_with_faces']} of {video['frames']} scored frames "
        f"({video['model']}, {video['detector']})",
        file=sys.stderr,
    )


# options checked one by one first, so that a refusal names the flag it came from
_FLAGS = {
    "classifier": "--classifier",
    "every": "--every",
    "min_track": "--min-track",
    "batch_size": "--batch",
    "threshold": "--threshold",
    "aggregate": "--aggregate",
}


def options_of(args: argparse.Namespace) -> DeepfakeOptions:
    """The run's options (a bad value is refused naming its flag)."""
    values = {
        "detector": args.detector,
        "classifier": args.classifier,
        "classifier_arch": args.arch,
        "device": args.device,
        "precision": args.precision,
        "threshold": args.threshold,
        "aggregate": args.aggregate,
        "overlay": args.output is not None and not args.no_overlay,
        "every": args.every,
        "batch_size": args.batch,
        "min_track": args.min_track,
    }
    for name, flag in _FLAGS.items():
        try:
            DeepfakeOptions(**{name: values[name]})
        except UsageError as err:
            raise UsageError(f"{flag} {values[name]}: {err}") from None
    return DeepfakeOptions(**values)


def run(args: argparse.Namespace) -> int:
    options = options_of(args)
    check_video_io(
        args.input,
        args.output,
        writes=[("the scores --scores", args.scores), ("the WebVTT track --vtt", args.vtt)],
    )
    jsonl: ScoresJsonlWriter | None = None
    vtt: ScoresVttWriter | None = None

    def on_result(item: ScoredFrame) -> None:
        if jsonl is not None:
            jsonl.write_frame(item.result, item.frame, item.time)
        if vtt is not None and item.time is not None:
            vtt.add(item.result.score, item.time)

    try:
        jsonl = ScoresJsonlWriter(args.scores) if args.scores else None
        vtt = ScoresVttWriter(args.vtt, options.threshold) if args.vtt else None
        node = DeepfakeNode(options=options, on_result=on_result)

        def extra(_report: TranscodeReport) -> dict[str, Any]:
            return node.summary().to_json()

        run_video(args, args.input, args.output, [node], "deepfake", extra_json=extra)
        summary = node.summary()
        if jsonl is not None:
            jsonl.close(summary)
        if vtt is not None:
            vtt.close()
    except BaseException:
        for writer in (jsonl, vtt):
            if writer is not None:
                writer.abort()
        raise
    if not args.quiet:
        _print_summary(summary.to_json())
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "deepfake",
        help="score faces for manipulation (per frame and per video), optionally drawing an overlay",
        description="Score the faces of IN. With OUT, write IN with the score overlay drawn (audio and timing "
        "kept; '-' = y4m on stdout). --scores/--vtt write sidecars: JSONL per frame plus a video line, and a "
        "WebVTT track of the score.",
    )
    parser.add_argument(
        "input", metavar="IN", help="input video, image-sequence pattern, or - (y4m on stdin)"
    )
    parser.add_argument("output", metavar="OUT", nargs="?", help="output video with the overlay (optional)")
    parser.add_argument("--scores", metavar="FILE.jsonl", help="write per-frame scores as JSON lines")
    parser.add_argument("--vtt", metavar="FILE.vtt", help="write the score over time as a WebVTT track")
    parser.add_argument(
        "--detector",
        choices=FACE_DETECTORS,
        default=DeepfakeOptions.detector,
        help="face detector (blazeface and mtcnn need their weights: chromaflow models download NAME; auto: "
        "blazeface when present, else haar)",
    )
    parser.add_argument(
        "--classifier",
        default=DeepfakeOptions.classifier,
        metavar="NAME|FILE",
        help=f"face classifier: {', '.join(CLASSIFIERS)} (effnet-b7-dfdc: the DFDC winner's ensemble of seven), "
        f"or a weights file with --arch (default {DeepfakeOptions.classifier})",
    )
    parser.add_argument(
        "--arch",
        choices=archs("classifier"),
        help="the architecture of a --classifier FILE (default: the one the file records)",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=DeepfakeOptions.threshold,
        help=f"scores at or above read FAKE (default {DeepfakeOptions.threshold})",
    )
    parser.add_argument(
        "--aggregate",
        choices=AGGREGATES,
        default=DeepfakeOptions.aggregate,
        help="the video score: confident (ours: mostly-fake or mostly-real frames decide, any clip length), dfdc "
        "(the DFDC winners' confident strategy on raw face scores per model), mean or median of the frame scores "
        f"(default {DeepfakeOptions.aggregate})",
    )
    parser.add_argument("--precision", help="classifier precision: auto, fp32, fp16 or bf16")
    parser.add_argument("--no-overlay", action="store_true", help="copy the video without drawing on it")
    parser.add_argument(
        "--every",
        type=int,
        default=DeepfakeOptions.every,
        metavar="N",
        help=f"score every N-th frame (default {DeepfakeOptions.every})",
    )
    parser.add_argument(
        "--min-track",
        type=int,
        default=DeepfakeOptions.min_track,
        metavar="N",
        help=f"report a face once its track was seen in N scored frames (default {DeepfakeOptions.min_track}: "
        "every detection; 3 hides the one- and two-frame false faces a detector makes)",
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=DeepfakeOptions.batch_size,
        help=f"frames per scoring batch (default {DeepfakeOptions.batch_size})",
    )
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    add_encode_arguments(parser)
    add_ui_arguments(parser)
    parser.set_defaults(func=run)
