"""The batch's video plumbing: the scene-cut scan, frame-accurate reads of a range, lossless segment files, the join.

- :func:`scan_video` decodes an input once: its frame count, each frame's timestamp, and where shots start (the
  engine's detector on the frames' luma at the engine's working size).
- :func:`read_range` decodes frames ``[first, stop)`` exactly: it seeks to the nearest keyframe before ``first``
  and identifies frames by the timestamps the scan recorded, decoding from the start where a stream's timestamps
  cannot name its frames.
- :class:`SegmentFile` writes frames losslessly (FFV1 in Matroska) under a partial name, renamed when complete.
- :class:`ReplayNode` is the join: run through :func:`~chromaflow.filters.pyav.transcode` over the source, it hands
  out the segments' frames in order with the source frames' timing, so the final encode, the audio and subtitle
  copy and the atomic output are exactly those of a single-file run.
"""

import contextlib
import itertools
import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction

import av
import numpy as np

from chromaflow.core import partials
from chromaflow.core.errors import InputError, OutputError
from chromaflow.core.scenecut import SceneCutDetector
from chromaflow.core.shots import cut_luma
from chromaflow.filters.pyav.frames import plane_view, to_planar
from chromaflow.filters.pyav.nodes import FrameNode
from chromaflow.filters.pyav.targets import open_input

SEGMENT_RATE = Fraction(
    25
)  # segment files carry frames in order; their timing comes from the source at the join
TAGS = ("color_primaries", "color_trc", "colorspace", "color_range", "chroma_location")


@dataclass(frozen=True)
class Scan:
    """What one decode of an input tells: frame count, timestamps (None where the stream has none) and cuts."""

    frames: int
    pts: tuple[int | None, ...]
    cuts: tuple[int, ...]


def _frame_luma(frame: av.VideoFrame, max_side: int) -> np.ndarray:
    """The frame's luma as L*-like values 0..100 at the working size, as cut detection sees it."""
    planar, layout = to_planar(frame)
    y = np.asarray(plane_view(planar, 0), dtype=np.float32)
    top = float((1 << layout.bits) - 1) if layout.bits else 255.0
    return cut_luma(np.asarray(y * (100.0 / top), dtype=np.float32), max_side)


def scan_video(path: str, detector: SceneCutDetector | None, max_side: int) -> Scan:
    """Decode ``path`` once (module docstring). Raises :class:`InputError` for a file without video frames."""
    source = open_input(path)
    pts: list[int | None] = []
    cuts: list[int] = []
    try:
        if not source.container.streams.video:
            kinds = ", ".join(sorted({s.type for s in source.container.streams})) or "none"
            raise InputError(f"{path} has no video stream (streams: {kinds}); give a video file")
        previous = None
        for frame in _decode(source.container, path):
            if detector is not None:
                stats = detector.stats(_frame_luma(frame, max_side))
                if previous is not None and detector.is_cut(previous, stats):
                    cuts.append(len(pts))
                previous = stats
            pts.append(frame.pts)
    finally:
        source.container.close()
    if not pts:
        raise InputError(f"{path}: no video frames could be decoded; the file is empty or damaged")
    return Scan(len(pts), tuple(pts), tuple(cuts))


def _decode(container: av.container.InputContainer, name: str) -> Iterator[av.VideoFrame]:
    video = container.streams.video[0]
    video.thread_type = "AUTO"
    try:
        for packet in container.demux(video):
            try:
                yield from video.decode(packet)
            except av.error.EOFError:
                return
            except av.error.InvalidDataError:
                continue  # a damaged packet is skipped, as a single-file run does without --strict
    except av.error.FFmpegError as err:
        raise InputError(f"{name}: cannot read the video: {err}") from err


def _seekable(pts: Sequence[int | None]) -> bool:
    """True when every frame has a timestamp and they rise: a timestamp then names its frame."""
    known = [p for p in pts if p is not None]
    return len(known) == len(pts) and all(a < b for a, b in itertools.pairwise(known))


def read_range(path: str, scan: Scan, first: int, stop: int) -> Iterator[av.VideoFrame]:
    """Frames ``first .. stop - 1`` of ``path`` (indices of the scan), decoded exactly (module docstring)."""
    wanted = stop - first
    if first > 0 and _seekable(scan.pts):
        frames = list(_read_after_seek(path, scan, first, stop))
        if len(frames) == wanted:
            yield from frames
            return
    source = open_input(path)
    try:
        index = 0
        for frame in _decode(source.container, path):
            if index >= stop:
                break
            if index >= first:
                yield frame
            index += 1
    finally:
        source.container.close()
    if index < stop:
        raise InputError(f"{path}: only {index} frames could be decoded; the scan found {scan.frames}")


def _read_after_seek(path: str, scan: Scan, first: int, stop: int) -> Iterator[av.VideoFrame]:
    """Frames of the range after a seek, or fewer when the seek cannot reach them (the caller then decodes)."""
    target = scan.pts[first]
    assert target is not None
    expected = {p: i for i, p in enumerate(scan.pts[first:stop], first)}
    source = open_input(path)
    try:
        container = source.container
        container.seek(target, backward=True, any_frame=False, stream=container.streams.video[0])
        following = first
        for frame in _decode(container, path):
            if frame.pts is None or frame.pts < target:
                continue
            if expected.get(frame.pts) != following:
                return  # not the frame the scan saw at this place: decode from the start instead
            yield frame
            following += 1
            if following == stop:
                return
    except av.error.FFmpegError:
        return
    finally:
        source.container.close()


class SegmentFile:
    """Frames written losslessly (FFV1 in Matroska) to a partial name, moved to ``path`` by :meth:`commit`."""

    def __init__(self, path: str) -> None:
        self.path = path
        self._tmp = str(partials.partial_file(path))
        partials.track(self._tmp)
        self._out = av.open(self._tmp, "w", format="matroska")
        self._stream: av.VideoStream | None = None
        self.frames = 0
        self.tags: dict[str, int] = {}

    def write(self, frame: av.VideoFrame) -> None:
        if self._stream is None:
            stream = self._out.add_stream("ffv1", rate=SEGMENT_RATE, options={"level": "3", "slicecrc": "1"})
            assert isinstance(stream, av.VideoStream)
            stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, frame.format.name
            stream.time_base = 1 / SEGMENT_RATE
            self._stream = stream
            self.tags = {name: int(getattr(frame, name)) for name in TAGS}
        frame.pts, frame.time_base = self.frames, 1 / SEGMENT_RATE  # order only; the join restores the timing
        for packet in self._stream.encode(frame):
            self._out.mux(packet)
        self.frames += 1

    def commit(self) -> None:
        try:
            if self._stream is not None:
                for packet in self._stream.encode(None):
                    self._out.mux(packet)
            self._out.close()
            os.replace(self._tmp, self.path)
            partials.untrack(self._tmp)
        except (OSError, av.error.FFmpegError) as err:
            self.discard()
            raise OutputError(f"cannot write the segment {self.path}: {err}") from err

    def discard(self) -> None:
        with contextlib.suppress(av.error.FFmpegError):
            self._out.close()
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)
        partials.untrack(self._tmp)


def segment_frames(paths: Iterable[str]) -> Iterator[av.VideoFrame]:
    """The frames of segment files, in order."""
    for path in paths:
        with av.open(path) as container:
            yield from container.decode(video=0)


class ReplayNode(FrameNode):
    """The join (module docstring): each source frame pushed is replaced by the next segment frame, which takes
    the source frame's timing and the processed frames' colour tags."""

    def __init__(self, paths: Sequence[str], tags: dict[str, int], total: int) -> None:
        super().__init__()
        self._frames = segment_frames(paths)
        self._tags = tags
        self._total = total
        self._count = 0

    def _accept(self, frame: av.VideoFrame) -> Iterable[av.VideoFrame]:
        out = next(self._frames, None)
        if out is None:
            raise InputError(
                f"the source has more frames than its segments ({self._total}); it changed since"
            )
        out.pts, out.duration = frame.pts, frame.duration
        if frame.time_base is not None:
            out.time_base = frame.time_base
        for name, value in self._tags.items():
            setattr(out, name, value)
        self._count += 1
        return (out,)

    def _finish(self) -> Iterable[av.VideoFrame]:
        if self._count != self._total or next(self._frames, None) is not None:
            raise InputError(f"the source gave {self._count} frames, its segments hold {self._total}")
        return ()
