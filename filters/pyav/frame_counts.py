"""How many frames an input holds: an estimate for progress bars, and the exact count where the input states it.

Kept apart from the run because the two answers have different uses: :func:`estimate_frames` (duration x nominal
rate when the header has no count) only feeds progress, while the exact figures -- a y4m file's layout, an MP4/MOV
sample table, a stream's stated duration -- are what an input may be judged damaged on, and what ``--ref`` frame
numbers are checked against before a run.
"""

import os
from typing import BinaryIO

import av

from chromaflow.filters.pyav.targets import STDIO, InputSource, is_sequence_pattern
from chromaflow.filters.pyav.y4m import Y4mLayout, scan


def estimate_frames(source: InputSource | av.container.InputContainer) -> int | None:
    """The number of video frames, from the header or duration x rate (``None`` when unknown).

    A hint for progress bars only: variable-frame-rate video holds fewer frames than duration x nominal rate.
    """
    container = source.container if isinstance(source, InputSource) else source
    if not container.streams.video:
        return None
    stream = container.streams.video[0]
    if stream.frames:
        return int(stream.frames)
    rate = stream.average_rate or stream.guessed_rate
    if rate and stream.duration and stream.time_base:
        return round(float(stream.duration * stream.time_base * rate))
    if rate and container.duration:
        return round(container.duration / 1_000_000 * float(rate))
    return None


def exact_frame_count(input: str | os.PathLike[str] | BinaryIO) -> int | None:
    """The number of video frames of a file that states it exactly (a y4m file's layout, an MP4/MOV sample table);
    ``None`` for pipes, image sequences and containers that give only a duration."""
    layout = scan_y4m(input)
    if layout is not None:
        return layout.frames
    if not isinstance(input, str | os.PathLike) or input == STDIO or is_sequence_pattern(input):
        return None
    if not os.path.isfile(input):
        return None
    try:
        with av.open(os.fspath(input)) as container:
            video = container.streams.video
            return int(video[0].frames) if video and video[0].frames else None
    except (av.error.FFmpegError, OSError):
        return None  # the run itself says what is wrong with the file


def scan_y4m(input: str | os.PathLike[str] | BinaryIO) -> Y4mLayout | None:
    """The layout of a y4m file or seekable binary object (``None`` for anything else)."""
    if isinstance(input, str | os.PathLike):
        path = os.fspath(input)
        if path == STDIO or is_sequence_pattern(path) or not os.path.isfile(path):
            return None
        try:
            with open(path, "rb") as f:
                return scan(f, path)
        except OSError:
            return None
    seekable = getattr(input, "seekable", None)
    if callable(seekable) and seekable():
        return scan(input, "input stream")
    return None


def stated_seconds(
    stream: av.video.stream.VideoStream, container: av.container.InputContainer
) -> float | None:
    """How long the video stream says it lasts: its own duration, Matroska's per-track DURATION tag, or, when
    the container holds nothing else, the container's duration."""
    if stream.duration and stream.time_base:
        return float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION") or stream.metadata.get("duration")
    if tag:
        try:
            hours, minutes, seconds = tag.split(":")
            start = (
                float(stream.start_time * stream.time_base) if stream.start_time and stream.time_base else 0.0
            )
            return int(hours) * 3600 + int(minutes) * 60 + float(seconds) - start
        except ValueError:
            pass
    if container.duration and len(container.streams) == 1:
        return container.duration / 1_000_000
    return None
