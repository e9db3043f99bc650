"""Shared plumbing of the video verbs (`colorize`, `deepfake`): I/O and encoder options, progress, JSON summary.

IN and OUT are files, image-sequence patterns (``frames/%05d.png``) or ``-`` for y4m on stdin/stdout, so a verb
works between two ffmpeg processes::

    ffmpeg -i in.mp4 -f yuv4mpegpipe - | chromaflow colorize - - | ffmpeg -i - out.mp4

Exit codes are the CLI's (see plugins/cli/main.py): 2 bad option (also an OUT name no container is known for),
3 bad input (missing, unreadable, no video stream, no frames, damaged with --strict), 4 model/weights, 5 device,
6 output cannot be written (missing or read-only folder, a write-protected file, an output that is an input or
another output), 130/143/129 stopped by SIGINT/SIGTERM/SIGHUP. Outputs are checked before any work
(:func:`check_video_io`); a failed or stopped run leaves no output file behind.
"""

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from chromaflow.core import stopping
from chromaflow.core.errors import UsageError
from chromaflow.core.process_tuning import freeze_startup_objects
from chromaflow.core.write_plan import WritePlan
from chromaflow.filters.pyav import STDIO, FrameNode, TranscodeReport, estimate_frames, transcode
from chromaflow.filters.pyav.targets import InputSource, check_output_name, is_sequence_pattern


def add_video_io_arguments(parser: argparse.ArgumentParser) -> None:
    """The positional IN and OUT of a verb that reads and writes video (files, image sequences, y4m pipes)."""
    parser.add_argument(
        "input", metavar="IN", help="input video, image-sequence pattern, or - (y4m on stdin)"
    )
    parser.add_argument(
        "output", metavar="OUT", help="output video, image-sequence pattern, or - (y4m on stdout)"
    )


def frames_at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type`` for a radius in whole frames of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a radius: give a whole number of frames >= {minimum}"
            )
        return value

    return parse


def add_encode_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("encoding (defaults depend on OUT's container)")
    group.add_argument(
        "--codec",
        help="video encoder: a format name h264 (the default for .mp4/.mkv/.mov), hevc or av1 picks NVENC "
        "(h264_nvenc ...) when it opens on this machine, else libx264 / libx265 / libsvtav1 (-v tells which and "
        "why); or name one: libx264, libx265, h264_nvenc, hevc_nvenc, libvpx-vp9, ffv1, prores_ks ...",
    )
    group.add_argument(
        "--crf",
        type=float,
        help="constant quality, lower is better (default: H.264 18, HEVC 23, VP9 32); NVENC gets it as cq (1-51)",
    )
    group.add_argument("--bitrate", help="target bit rate instead of --crf, e.g. 4M or 2500k")
    group.add_argument(
        "--preset",
        help="encoder preset (default medium; x264 names map to NVENC p1-p7: fast -> p3, medium -> p4, slow -> p5)",
    )
    group.add_argument("--pix-fmt", help="output pixel format (default: the processed frames' own)")
    group.add_argument("--framerate", help="frame rate of an image-sequence IN (default 25)")
    group.add_argument(
        "--strict",
        action="store_true",
        help="stop at the first decode error instead of skipping damaged data",
    )


PROGRESS_MODES = ("auto", "bar", "json", "none")


def add_ui_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quiet", action="store_true", help="no progress output (same as --progress none)")
    parser.add_argument(
        "--progress",
        choices=PROGRESS_MODES,
        default="auto",
        help="progress on stderr: a bar (auto: when stderr is a terminal), or json: one line "
        '{"frames": N, "total": T, "fps": F} about twice a second and at the end (T is null when unknown), '
        "for programs such as the Blender add-on and the OBS script",
    )
    parser.add_argument(
        "--json", action="store_true", help="print a JSON summary on stdout (not with OUT = -)"
    )


def check_video_io(
    src: str,
    dest: str | None,
    *,
    reads: Sequence[tuple[str, str | None]] = (),
    writes: Sequence[tuple[str, str | None]] = (),
) -> WritePlan:
    """Before any work: OUT's name (exit 2), then every file the run reads (IN, its frames, ``reads``) and writes
    (OUT, its frames, ``writes``: ``(what, path)`` pairs, ``None`` skipped) against each other, and whether each
    output can be put in place (exit 6). Stale partials of the outputs left by killed runs are removed."""
    if dest is not None:
        check_output_name(dest)
    plan = WritePlan()
    if src != STDIO:
        if is_sequence_pattern(src):
            plan.read_sequence(src, "the input IN")
        else:
            plan.read(src, "the input IN")
    for what, path in reads:
        plan.read(path, what)
    if dest is not None and dest != STDIO:
        if is_sequence_pattern(dest):
            plan.write_sequence(dest, "the output OUT")
        else:
            plan.write(dest, "the output OUT")
    for what, path in writes:
        plan.write(path, what)
    plan.check()
    plan.remove_stale_partials()
    return plan


def check_json(args: argparse.Namespace, out: str | None) -> None:
    if args.json and out == STDIO:
        raise UsageError(
            "--json prints on stdout, which OUT '-' already uses for video; drop --json or name a file"
        )


class Progress:
    """Progress on stderr: a tqdm bar (frames, fps, ETA), JSON lines, or nothing.

    ``mode``: ``bar``, ``json``, ``none``, or ``auto`` (a bar when stderr is a terminal, else nothing). JSON lines
    look like ``{"frames": 45, "total": 100, "fps": 12.5}`` (``total`` null when unknown): one at the start, then at
    most one per ``interval`` seconds, and a last one when the run ends.
    """

    def __init__(self, mode: str, desc: str, interval: float = 0.5) -> None:
        if mode not in PROGRESS_MODES:
            raise UsageError(f"--progress {mode!r}: use one of {', '.join(PROGRESS_MODES)}")
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "none"
        self.mode = mode
        self.desc = desc
        self.interval = interval
        self._bar: Any = None
        self._total: int | None = None
        self._done = 0
        self._started: float | None = None
        self._last = 0.0

    @property
    def enabled(self) -> bool:
        return self.mode != "none"

    def start(self, source: InputSource) -> None:
        if self.mode == "none":
            return
        total = estimate_frames(source)
        self._total = int(total) if total else None
        self._started = self._last = time.monotonic()
        if self.mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(
                total=self._total, desc=self.desc, unit="frame", file=sys.stderr, dynamic_ncols=True
            )
        else:
            self._line()

    def update(self, n: int) -> None:
        self._done += n
        if self._bar is not None:
            self._bar.update(n)
        elif self.mode == "json" and time.monotonic() - self._last >= self.interval:
            self._line()

    def _line(self) -> None:
        now = time.monotonic()
        elapsed = now - (self._started if self._started is not None else now)
        fps = round(self._done / elapsed, 2) if elapsed > 0 else 0.0
        print(
            json.dumps({"frames": self._done, "total": self._total, "fps": fps}), file=sys.stderr, flush=True
        )
        self._last = now

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        if self.mode == "json" and self._started is not None:
            self._line()
            self._started = None


def run_video(
    args: argparse.Namespace,
    src: str,
    dest: str | None,
    nodes: Sequence[FrameNode],
    desc: str,
    extra_json: Callable[[TranscodeReport], dict[str, Any]] | None = None,
) -> TranscodeReport:
    """Transcode ``src`` to ``dest`` through ``nodes`` with the encoder options, progress and --json of ``args``."""
    check_json(args, dest)
    freeze_startup_objects()  # the imports and the built nodes live until exit: out of the collector's scans
    progress = Progress("none" if args.quiet else getattr(args, "progress", "auto"), desc)

    def on_frames(n: int) -> None:
        progress.update(n)
        stopping.pause_at("frame")

    try:
        report = transcode(
            src,
            dest,
            nodes,
            codec=args.codec,
            crf=args.crf,
            bitrate=args.bitrate,
            preset=args.preset,
            pix_fmt=args.pix_fmt,
            framerate=args.framerate,
            strict=args.strict,
            progress=on_frames,
            on_start=progress.start,
        )
    finally:
        progress.close()
    if extra_json is not None:
        report.extra.update(extra_json(report))
    if report.warnings or report.corrupt_frames:
        print(
            f"chromaflow: warning: {report.input} is damaged: {len(report.warnings)} problem(s), "
            f"{report.decode_errors} undecodable packet(s), {report.corrupt_frames} corrupt frame(s); what could "
            "be read was written (use --strict to stop instead)",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    return report
