"""The three stages of a transcode: decode -> nodes -> encode, overlapped in threads with bounded queues.

- A reader thread demuxes and decodes video; audio and subtitle packets are forwarded untouched (stream copy).
- The calling thread runs the nodes (so Ctrl-C lands where the heavy work is and stops everything cleanly).
- A writer thread encodes video and muxes it with the copied packets (:class:`~chromaflow.filters.pyav.writer.Writer`);
  FFmpeg's interleaving muxer orders them.

Timestamps are the decoder's own (variable frame rate stays variable); they are invented only where a stream has none
or goes backwards. The first error in any stage stops the others, and it is the one raised.
"""

import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from fractions import Fraction
from typing import Any

import av

from chromaflow.core.errors import InputError
from chromaflow.filters.pyav.encoders import EncodeOptions
from chromaflow.filters.pyav.frame_counts import estimate_frames, stated_seconds
from chromaflow.filters.pyav.nodes import FrameNode
from chromaflow.filters.pyav.report import TranscodeReport
from chromaflow.filters.pyav.targets import InputSource, OutputTarget
from chromaflow.filters.pyav.writer import Writer
from chromaflow.filters.pyav.y4m import Y4mLayout, Y4mPipeWatch

log = logging.getLogger("chromaflow.transcode")

_END = object()
_COPY_TYPES = ("audio", "subtitle")


class _StopError(Exception):
    """Raised inside a worker when another part of the pipeline has stopped."""


class _Channel:
    """A bounded queue whose put/get give up as soon as the pipeline is stopping."""

    def __init__(self, size: int, stop: threading.Event) -> None:
        self._q: queue.Queue[Any] = queue.Queue(maxsize=size)
        self._stop = stop

    def put(self, item: Any) -> None:
        while True:
            if self._stop.is_set():
                raise _StopError
            try:
                self._q.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def get(self) -> Any:
        while True:
            if self._stop.is_set():
                raise _StopError
            try:
                return self._q.get(timeout=0.05)
            except queue.Empty:
                continue


class Pipeline:
    """One run: the reader and writer threads around the nodes run on the calling thread (module docstring)."""

    def __init__(
        self,
        source: InputSource,
        target: OutputTarget | None,
        chain: FrameNode,
        options: EncodeOptions,
        copy_audio: bool,
        copy_subtitles: bool,
        strict: bool,
        queue_size: int,
        y4m: Y4mLayout | None = None,
        watch: Y4mPipeWatch | None = None,
    ) -> None:
        self.source = source
        self.target = target
        self.chain = chain
        self.options = options
        self.strict = strict
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.decoded = _Channel(queue_size, self.stop)
        self.processed = _Channel(queue_size, self.stop)
        container = source.container
        self.video = container.streams.video[0]
        self.video.thread_type = "AUTO"
        wanted = {"audio": copy_audio, "subtitle": copy_subtitles}
        self.copy = [s for s in container.streams if s.type in _COPY_TYPES and wanted[s.type] and target]
        self.report = TranscodeReport(input=source.name, output=target.final if target is not None else "")
        self.y4m = y4m  # the layout of a y4m file, read before the run
        self.watch = watch  # follows a y4m pipe as it is read
        self._start: float | None = None  # seconds: the first decoded frame's time
        self._end: float | None = None  # seconds: the latest end (time + duration) of a decoded frame
        self._log_errors: list[str] = []  # what FFmpeg logged at error level while reading

    # -- the three stages --------------------------------------------------------------------------------
    def run(self, progress: Callable[[int], None] | None) -> TranscodeReport:
        started = time.perf_counter()
        reader = threading.Thread(
            target=self._guard, args=(self._read,), name="chromaflow-decode", daemon=True
        )
        writer = threading.Thread(
            target=self._guard, args=(self._write,), name="chromaflow-encode", daemon=True
        )
        reader.start()
        writer.start()
        try:
            self._process(progress)
        except _StopError:
            pass
        except BaseException:
            self.stop.set()
            raise
        finally:
            if self.errors or not writer.is_alive():
                self.stop.set()
            writer.join()
            self.stop.set()
            reader.join()
        if self.errors:
            raise self.errors[0]
        if self.report.frames_out == 0:
            raise InputError(
                f"{self.source.name}: no video frames were decoded from stream #{self.video.index} "
                f"({self.report.decode_errors} decode errors); the file is empty or damaged"
            )
        self._check_complete()
        self.report.seconds = time.perf_counter() - started
        return self.report

    def _check_complete(self) -> None:
        """Warn (or, strict, fail) when the input stops clearly short of what it states exactly about itself.

        The evidence: a y4m stream cut inside a frame; a frame count in the header (MP4/MOV sample tables); the
        video stream's own duration against the time its decoded frames reach. ``expected_frames`` (duration x
        nominal rate when the header has no count) is reported for progress only: variable-frame-rate video holds
        fewer frames than that, and is not damaged.
        """
        self.report.expected_frames = estimate_frames(self.source)
        problem = self._shortfall()
        if problem is None and self._log_errors and not self.report.warnings:
            # A demuxer that resyncs past damaged data (Matroska skipping a broken block) says so only in its log.
            problem = (
                f"FFmpeg reported {len(self._log_errors)} error(s) reading stream #{self.video.index} "
                f"({self._log_errors[0].strip()})"
            )
        if problem is not None:
            self._damaged(problem)

    def _shortfall(self) -> str | None:
        """How the input falls short of what it states exactly about itself, if it does."""
        layout = self.y4m if self.y4m is not None else (self.watch.layout() if self.watch else None)
        if layout is not None:
            return layout.cut_message() if layout.cut is not None else None
        if self.source.is_pipe:
            return None
        index, got = self.video.index, self.report.frames_in
        stated = int(self.video.frames or 0)
        if stated:
            if got < 0.9 * stated - 1:
                return f"stream #{index} ends after {got} of the {stated} frames its header lists"
            return None
        declared = stated_seconds(self.video, self.source.container)
        if not declared or self._start is None or self._end is None:
            return None
        step = 1 / float(self.video.average_rate or self.video.guessed_rate or 25)
        reached = self._end - self._start
        if reached + 2 * step < 0.9 * declared:
            return (
                f"stream #{index} ends after {reached:.2f} s ({got} frames) of the {declared:.2f} s its header "
                "announces"
            )
        return None

    def _reached(self, frame: av.VideoFrame) -> None:
        """Track the time span the decoded frames cover."""
        if frame.pts is None or frame.time_base is None:
            return
        start = float(frame.pts * frame.time_base)
        end = start + float((getattr(frame, "duration", 0) or 0) * frame.time_base)
        self._start = start if self._start is None else min(self._start, start)
        self._end = end if self._end is None else max(self._end, end)

    def _guard(self, stage: Callable[[], None]) -> None:
        try:
            stage()
        except _StopError:
            pass
        except BaseException as err:
            self.errors.append(err)
            self.stop.set()

    def _read(self) -> None:
        with _ffmpeg_errors() as errors:
            self._read_all()
        self._log_errors = errors
        self.decoded.put(_END)

    def _read_all(self) -> None:
        video = self.video
        index = video.index
        last_pts: int | None = None
        step = _pts_step(video)
        try:
            for packet in self.source.container.demux([video, *self.copy]):
                if packet.stream.index != index:
                    if packet.dts is not None:
                        self.decoded.put(("packet", packet))
                    continue
                for frame in self._decode(packet):
                    last_pts = _fix_pts(frame, last_pts, step, video.time_base)
                    self._reached(frame)
                    self.decoded.put(("frame", frame))
        except av.error.FFmpegError as err:
            self._damaged(f"reading stream #{index} stopped after frame {self.report.frames_in}: {err}")
        for frame in self._decode(None):
            last_pts = _fix_pts(frame, last_pts, step, video.time_base)
            self._reached(frame)
            self.decoded.put(("frame", frame))

    def _decode(self, packet: av.Packet | None) -> list[av.VideoFrame]:
        try:
            frames = self.video.decode(packet)
        except av.error.EOFError:
            return []  # already flushed by the demuxer's final empty packet
        except av.error.FFmpegError as err:
            self.report.decode_errors += 1
            self._damaged(
                f"stream #{self.video.index}: cannot decode the packet after frame {self.report.frames_in}: {err}"
            )
            return []
        for frame in frames:
            self.report.frames_in += 1
            if frame.is_corrupt:
                self.report.corrupt_frames += 1
        return frames

    def _damaged(self, message: str) -> None:
        if self.strict:
            raise InputError(f"{self.source.name}: {message} (run without strict to skip damaged data)")
        self.report.warnings.append(message)
        log.warning("%s: %s; going on with what can be read", self.source.name, message)

    def _process(self, progress: Callable[[int], None] | None) -> None:
        chain = self.chain
        while True:
            item = self.decoded.get()
            if item is _END:
                break
            kind, obj = item
            if kind == "packet":
                self.processed.put(item)
                continue
            chain.push(obj)
            for frame in chain.pull():
                self.processed.put(("frame", frame))
                if progress is not None:
                    progress(1)
        for frame in chain.flush():
            self.processed.put(("frame", frame))
            if progress is not None:
                progress(1)
        self.processed.put(_END)

    def _write(self) -> None:
        rate = self.video.average_rate or self.video.guessed_rate or Fraction(25)
        if self.target is None:
            while (item := self.processed.get()) is not _END:
                self.report.frames_out += item[0] == "frame"
            return
        writer = Writer(
            self.target, self.options, self.copy, self.report, Fraction(rate.numerator, rate.denominator)
        )
        try:
            while True:
                item = self.processed.get()
                if item is _END:
                    break
                kind, obj = item
                if kind == "packet":
                    writer.packet(obj)
                else:
                    writer.frame(obj)
            writer.finish()
        finally:
            writer.close()


@contextlib.contextmanager
def _ffmpeg_errors() -> Iterator[list[str]]:
    """The messages FFmpeg logs at error level while the block runs (from any thread), instead of printing them.

    PyAV passes FFmpeg's log on only at or above a set level, and drops a line equal to the one before (which would
    hide a second run's errors on the same file): error level is set for the block when the process asked for less
    (the default), repeats are kept, and both settings are put back after it.
    """
    import av.logging

    level, skip = av.logging.get_level(), av.logging.get_skip_repeated()
    if level is None or level < av.logging.ERROR:
        av.logging.set_level(av.logging.ERROR)
    av.logging.set_skip_repeated(False)
    messages: list[str] = []
    try:
        with av.logging.Capture(local=False) as logs:
            yield messages
            messages += [str(entry[2]) for entry in logs if entry[0] <= av.logging.ERROR]
    finally:
        av.logging.set_level(level)
        av.logging.set_skip_repeated(skip)


def _pts_step(stream: av.video.stream.VideoStream) -> int:
    rate = stream.average_rate or stream.guessed_rate or Fraction(25)
    tb = stream.time_base or Fraction(1, 25)
    return max(1, round(1 / (float(rate) * float(tb))))


def _fix_pts(
    frame: av.VideoFrame, last: int | None, step: int, time_base: av.AVRational | Fraction | None
) -> int:
    """Keep the decoder's timestamps; invent them only where a stream has none (or goes backwards)."""
    if frame.time_base is None and time_base is not None:
        frame.time_base = time_base
    pts = frame.pts
    if pts is None:
        pts = 0 if last is None else last + step
    elif last is not None and pts <= last:
        pts = last + 1
    frame.pts = pts
    return pts
