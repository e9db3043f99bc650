"""`chromaflow deepfake IN [OUT]`: score faces for manipulation; optional overlay video and score sidecars."""

import argparse
import sys
from typing import Any

from chromaflow.core.deepfake import CLASSIFIERS
from chromaflow.core.errors import UsageError
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
        "no face found" if score is None else f"{'FAKE' if score >= 0.5 else 'REAL'} (score {score:.3f})"
    )
    print(
        f"chromaflow: {verdict}; faces in {video['frames_with_faces']} of {video['frames']} scored frames "
        f"({video['model']}, {video['detector']})",
        file=sys.stderr,
    )


def run(args: argparse.Namespace) -> int:
    if args.every < 1:
        raise UsageError(f"--every must be at least 1, got {args.every}")
    if args.min_track < 1:
        raise UsageError(f"--min-track must be at least 1 (1 reports every detection), got {args.min_track}")
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
        vtt = ScoresVttWriter(args.vtt) if args.vtt else None
        node = DeepfakeNode(
            detector=args.detector,
            classifier=args.classifier,
            device=args.device,
            overlay=args.output is not None and not args.no_overlay,
            every=args.every,
            batch_size=args.batch,
            on_result=on_result,
            min_track=args.min_track,
        )

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
    parser.add_argument("--detector", choices=("haar", "blazeface"), default="haar", help="face detector")
    parser.add_argument("--classifier", choices=CLASSIFIERS, default="meso4-df", help="MesoNet weights")
    parser.add_argument("--no-overlay", action="store_true", help="copy the video without drawing on it")
    parser.add_argument(
        "--every", type=int, default=1, metavar="N", help="score every N-th frame (default 1)"
    )
    parser.add_argument(
        "--min-track",
        type=int,
        default=1,
        metavar="N",
        help="report a face once its track was seen in N scored frames (default 1: every detection; 3 hides the "
        "one- and two-frame false faces a detector makes)",
    )
    parser.add_argument("--batch", type=int, default=8, help="frames per scoring batch (default 8)")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    add_encode_arguments(parser)
    add_ui_arguments(parser)
    parser.set_defaults(func=run)
