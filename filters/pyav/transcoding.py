"""transcode(): the video of an input through frame nodes into an output, audio and subtitles copied.

Decoding, the nodes and encoding overlap in three threads (:mod:`~chromaflow.filters.pyav.pipeline`). Timestamps are
the decoder's own (variable frame rate stays variable), colour tags are copied to the encoder, and the output only
appears under its final name when everything succeeded. An input is called damaged only on what it states exactly
about itself (a frame count in its header, its video stream's duration, a y4m stream's layout), never on a frame
count estimated from the nominal frame rate, which variable-frame-rate video does not follow.
"""

import os
import sys
from collections.abc import Callable, Sequence
from typing import BinaryIO, cast

import av

from chromaflow.core.errors import InputError
from chromaflow.filters.pyav.encoders import EncodeOptions
from chromaflow.filters.pyav.frame_counts import scan_y4m
from chromaflow.filters.pyav.nodes import FrameNode, NodeChain
from chromaflow.filters.pyav.pipeline import Pipeline
from chromaflow.filters.pyav.report import TranscodeReport
from chromaflow.filters.pyav.targets import STDIO, InputSource, OutputTarget, open_input, prepare_output
from chromaflow.filters.pyav.y4m import Y4mPipeWatch


def transcode(
    input: str | os.PathLike[str] | BinaryIO,
    output: str | os.PathLike[str] | None,
    nodes: Sequence[FrameNode] | FrameNode = (),
    *,
    codec: str | None = None,
    crf: float | None = None,
    bitrate: str | int | None = None,
    preset: str | None = None,
    pix_fmt: str | None = None,
    codec_options: dict[str, str] | None = None,
    copy_audio: bool = True,
    copy_subtitles: bool = True,
    framerate: str | None = None,
    strict: bool = False,
    queue_size: int = 16,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[InputSource], None] | None = None,
    stdin: BinaryIO | None = None,
    stdout: BinaryIO | None = None,
) -> TranscodeReport:
    """Run the video of ``input`` through ``nodes`` into ``output``; copy audio and subtitles.

    ``input``/``output``: a path, an image-sequence pattern (``frames/%05d.png``) or ``-`` for y4m on
    stdin/stdout; ``output=None`` runs the nodes without writing anything (e.g. scoring only). ``framerate`` applies to image-sequence input. ``strict`` turns decode errors into
    :class:`InputError` instead of skipping the broken packets (their count is in the report).
    ``progress(n)`` is called with the number of frames written so far.
    """
    options = EncodeOptions(codec, crf, bitrate, preset, pix_fmt, dict(codec_options or {}))
    watch: Y4mPipeWatch | None = None
    layout = scan_y4m(input)
    if isinstance(input, str) and input == STDIO:
        watch = Y4mPipeWatch(stdin if stdin is not None else sys.stdin.buffer, "stdin (y4m)")
        stdin = cast(BinaryIO, watch)
    elif layout is not None and layout.cut is not None and strict:
        name = "input stream" if not isinstance(input, str | os.PathLike) else os.fspath(input)
        raise InputError(f"{name}: {layout.cut_message()} (run without strict to skip damaged data)")
    try:
        source = open_input(input, framerate=framerate, stdin=stdin)
    except InputError:
        if watch is not None and watch.error is not None:
            raise watch.error from None  # FFmpeg's own message for it is "Device or resource busy"
        raise
    target: OutputTarget | None = None
    try:
        if not source.container.streams.video:
            kinds = ", ".join(sorted({s.type for s in source.container.streams})) or "none"
            raise InputError(f"{source.name} has no video stream (streams: {kinds}); give a video file")
        if output is not None:
            target = prepare_output(output, None if source.is_pipe else source.name, stdout=stdout)
            options.resolve(target.suffix, target.is_pipe)  # fail early on bad codec options
        if on_start is not None:
            on_start(source)
        chain = nodes if isinstance(nodes, FrameNode) else NodeChain(list(nodes))
        report = Pipeline(
            source, target, chain, options, copy_audio, copy_subtitles, strict, queue_size, layout, watch
        ).run(progress)
        if target is not None:
            target.commit()
        return report
    except BaseException:
        if target is not None:
            target.discard()
        raise
    finally:
        source.container.close()


def run_nodes(frames: Sequence[av.VideoFrame], nodes: Sequence[FrameNode] | FrameNode) -> list[av.VideoFrame]:
    """Push a list of frames through nodes and return everything that came out (for scripts and tests)."""
    chain = nodes if isinstance(nodes, FrameNode) else NodeChain(list(nodes))
    out: list[av.VideoFrame] = []
    for frame in frames:
        chain.push(frame)
        out.extend(chain.pull())
    out.extend(chain.flush())
    return out
