"""Writer: the output side of a transcode -- the video encoder and the muxer, with the copied streams.

The output is opened at the first processed frame, because its size and pixel format decide the video stream (and
whether NVENC opens at that size); packets of copied streams that arrive earlier wait for it. A packet the muxer
refuses (damaged timestamps) is dropped and reported rather than ending the run.
"""

import contextlib
import logging
from fractions import Fraction

import av

from chromaflow.core.errors import InputError, OutputError, UsageError
from chromaflow.filters.pyav.encoders import EncodeOptions, plan_encoder
from chromaflow.filters.pyav.pixel_formats import apply_colour_tags, convert_for_encoder
from chromaflow.filters.pyav.report import TranscodeReport
from chromaflow.filters.pyav.targets import OutputTarget

log = logging.getLogger("chromaflow.transcode")


class Writer:
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
