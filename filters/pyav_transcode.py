"""transcode(): decode -> nodes -> encode, overlapped in three threads with bounded queues.

- A reader thread demuxes and decodes video; audio and subtitle packets are forwarded untouched (stream copy).
- The calling thread runs the nodes (so Ctrl-C lands where the heavy work is and stops everything cleanly).
- A writer thread encodes video and muxes it with the copied packets; FFmpeg's interleaving muxer orders them.

Timestamps are the decoder's own (variable frame rate stays variable), colour tags are copied to the encoder, and
the output only appears under its final name when everything succeeded. An input is called damaged only on what it
states exactly about itself (a frame count in its header, its video stream's duration, a y4m stream's layout),
never on a frame count estimated from the nominal frame rate, which variable-frame-rate video does not follow.
"""

import contextlib
import logging
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, BinaryIO, cast

import av

from chromaflow.core.errors import ChromaflowError, InputError, OutputError, UsageError
from chromaflow.filters.pyav.encoders import EncodeOptions, plan_encoder
from chromaflow.filters.pyav.nodes import FrameNode, NodeChain
from chromaflow.filters.pyav.pixel_formats import apply_colour_tags, convert_for_encoder
from chromaflow.filters.pyav.targets import (
    STDIO,
    InputSource,
    OutputTarget,
    is_sequence_pattern,
    open_input,
    prepare_output,
)
from chromaflow.filters.pyav_y4m import Y4mLayout, Y4mPipeWatch, scan

log = logging.getLogger("chromaflow.transcode")

_END = object()
_COPY_TYPES = ("audio", "subtitle")


@dataclass
class TranscodeReport:
    """What a run did; ``to_json()`` is the CLI's ``--json`` summary."""

    input: str
    output: str
    frames_in: int = 0
    frames_out: int = 0
    decode_errors: int = 0
    corrupt_frames: int = 0
    skipped_packets: int = 0
    expected_frames: int | None = None
    warnings: list[str] = field(default_factory=list)
    width: int = 0
    height: int = 0
    codec: str = ""
    pix_fmt: str = ""
    copied_streams: list[str] = field(default_factory=list)
    dropped_streams: list[str] = field(default_factory=list)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "output": self.output,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "decode_errors": self.decode_errors,
            "corrupt_frames": self.corrupt_frames,
            "skipped_packets": self.skipped_packets,
            "expected_frames": self.expected_frames,
            "warnings": self.warnings,
            "width": self.width,
            "height": self.height,
            "codec": self.codec,
            "pix_fmt": self.pix_fmt,
            "copied_streams": self.copied_streams,
            "dropped_streams": self.dropped_streams,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 2),
            **self.extra,
        }


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
    layout = _scan_y4m(input)
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


def _scan_y4m(input: str | os.PathLike[str] | BinaryIO) -> Y4mLayout | None:
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


def _stated_seconds(
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
    layout = _scan_y4m(input)
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
        report = _Pipeline(
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


class _Pipeline:
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
        declared = _stated_seconds(self.video, self.source.container)
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
        writer = _Writer(
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


class _Writer:
    """Opens the output at the first processed frame (its size and format decide the stream), then muxes."""

    def __init__(
        self,
        target: OutputTarget,
        options: EncodeOptions,
        copy: list[av.stream.Stream],
        report: TranscodeReport,
        rate: Fraction,
    ) -> None:
        self.target = target
        self.rate = rate
        self.options = options
        self.copy = copy
        self.report = report
        self.container: av.container.OutputContainer | None = None
        self.stream: av.video.stream.VideoStream | None = None
        self.pix_fmt = ""
        self.size = (0, 0)
        self.stream_map: dict[int, av.stream.Stream] = {}
        self.waiting: list[av.Packet] = []

    def _open(self, first: av.VideoFrame) -> None:
        target = self.target
        is_y4m = target.is_pipe or target.suffix == ".y4m"
        # Encoder (NVENC probed at this size, software fallback for format names), options and pixel format.
        plan = plan_encoder(
            self.options, target.suffix, target.is_pipe, first.format.name, first.width, first.height, is_y4m
        )
        codec, codec_opts, bit_rate, pix_fmt = plan.codec, plan.options, plan.bit_rate, plan.pix_fmt
        container_opts = {"strict": "-1"} if is_y4m else {}
        try:
            out = av.open(target.write_to, mode="w", format=target.format, container_options=container_opts)
        except (av.error.FFmpegError, OSError) as err:
            raise OutputError(f"cannot create {target.final}: {err}") from err
        self.container = out
        try:
            stream = out.add_stream(codec, rate=self.rate, options=codec_opts)
        except (av.error.FFmpegError, ValueError) as err:
            raise UsageError(f"cannot use video codec {codec!r} for {target.final}: {err}") from err
        if not isinstance(stream, av.VideoStream):
            raise UsageError(f"{codec!r} is not a video codec; choose one for {target.final}")
        stream.width, stream.height, stream.pix_fmt = first.width, first.height, pix_fmt
        if is_y4m or first.time_base is None:
            stream.codec_context.time_base = 1 / self.rate  # y4m takes its frame rate from the time base
        else:
            stream.codec_context.time_base = first.time_base
        if bit_rate is not None:
            stream.bit_rate = bit_rate
        stream.thread_type = "AUTO"
        apply_colour_tags(stream.codec_context, first, pix_fmt)
        for src in self.copy:
            label = f"#{src.index} {src.type} ({src.codec_context.name})"
            if src.codec_context.name not in out.supported_codecs:
                self.report.dropped_streams.append(
                    f"{label}: {target.suffix or 'this output'} cannot hold it"
                )
                log.warning("stream %s cannot be copied into %s; it is left out", label, target.final)
                continue
            try:
                self.stream_map[src.index] = out.add_stream_from_template(src)
            except (av.error.FFmpegError, ValueError) as err:
                self.report.dropped_streams.append(f"{label}: {err}")
                continue
            self.report.copied_streams.append(label)
        self.stream, self.pix_fmt, self.size = stream, pix_fmt, (first.width, first.height)
        self.report.codec, self.report.pix_fmt = codec, pix_fmt
        self.report.width, self.report.height = first.width, first.height

    def packet(self, packet: av.Packet) -> None:
        if self.container is None:
            self.waiting.append(packet)
            return
        self._mux_copy(packet)

    def _mux_copy(self, packet: av.Packet) -> None:
        assert self.container is not None
        dest = self.stream_map.get(packet.stream.index)
        if dest is None:
            return
        packet.stream = dest
        try:
            self.container.mux(packet)
        except av.error.ArgumentError as err:
            # A damaged packet (e.g. timestamps going backwards) is dropped rather than ending the run.
            self.report.skipped_packets += 1
            self.report.warnings.append(f"stream {dest.index}: packet at dts {packet.dts} dropped: {err}")
            log.warning("stream %d: packet at dts %s dropped: %s", dest.index, packet.dts, err)
        except av.error.FFmpegError as err:
            raise OutputError(f"writing {self.target.final}: stream {dest.index}: {err}") from err

    def frame(self, frame: av.VideoFrame) -> None:
        if self.container is None:
            self._open(frame)
            for packet in self.waiting:
                self._mux_copy(packet)
            self.waiting.clear()
        assert self.stream is not None and self.container is not None
        n = self.report.frames_out
        if (frame.width, frame.height) != self.size:
            raise InputError(
                f"video frame {n} is {frame.width}x{frame.height} but the stream started at "
                f"{self.size[0]}x{self.size[1]}; size changes mid-stream are not supported (add a scale filter)"
            )
        frame = convert_for_encoder(frame, self.pix_fmt)
        try:
            packets = self.stream.encode(frame)
            self.container.mux(packets)
        except av.error.FFmpegError as err:
            raise OutputError(
                f"encoding video frame {n} (pts {frame.pts}) into {self.target.final}: {err}"
            ) from err
        self.report.frames_out += 1

    def finish(self) -> None:
        if self.container is None or self.stream is None:
            return
        try:
            self.container.mux(self.stream.encode(None))
        except av.error.FFmpegError as err:
            raise OutputError(f"finishing the video stream of {self.target.final}: {err}") from err

    def close(self) -> None:
        if self.container is None:
            return
        try:
            self.container.close()
        except (av.error.FFmpegError, OSError) as err:
            raise OutputError(f"closing {self.target.final}: {err}") from err
        finally:
            self.container = None
            if self.target.is_pipe and hasattr(self.target.write_to, "flush"):
                with contextlib.suppress(BrokenPipeError, ValueError):
                    self.target.write_to.flush()


def run_nodes(frames: Sequence[av.VideoFrame], nodes: Sequence[FrameNode] | FrameNode) -> list[av.VideoFrame]:
    """Push a list of frames through nodes and return everything that came out (for scripts and tests)."""
    chain = nodes if isinstance(nodes, FrameNode) else NodeChain(list(nodes))
    out: list[av.VideoFrame] = []
    for frame in frames:
        chain.push(frame)
        out.extend(chain.pull())
    out.extend(chain.flush())
    return out


__all__ = [
    "ChromaflowError",
    "TranscodeReport",
    "estimate_frames",
    "exact_frame_count",
    "run_nodes",
    "transcode",
]
