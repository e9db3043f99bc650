"""Hardware video encoders (NVIDIA NVENC): does one really open on this machine?

PyAV's wheels are built with ``h264_nvenc``, ``hevc_nvenc`` and ``av1_nvenc``, so their names are in
``av.codecs_available`` on every machine, GPU or not. Whether one works is only known by trying: the encoder
loads ``libcuda`` and asks the driver for an NVENC session when it is opened. :func:`probe_encoder` opens the
encoder for a picture, encodes one frame and flushes; a failure (no driver, no GPU, a GPU without NVENC, every
session taken, a size or pixel format the chip refuses) is caught and its reason kept. Results are cached per
encoder, size and pixel format for the life of the process, so a run pays for a probe once (milliseconds when
the driver is missing).
"""

import functools
from dataclasses import dataclass
from fractions import Fraction
from typing import cast

import av
import av.logging
from av.video.codeccontext import VideoCodecContext

# The hardware encoder of each coding format, and the software encoders to use instead, best first.
HARDWARE_ENCODERS: dict[str, str] = {"h264": "h264_nvenc", "hevc": "hevc_nvenc", "av1": "av1_nvenc"}
SOFTWARE_ENCODERS: dict[str, tuple[str, ...]] = {
    "h264": ("libx264", "libopenh264"),
    "hevc": ("libx265",),
    "av1": ("libsvtav1", "libaom-av1", "librav1e"),
}
PROBE_SIZE = (256, 256)
PROBE_PIX_FMT = "yuv420p"


@dataclass(frozen=True)
class ProbeResult:
    """Whether ``encoder`` opened and encoded a ``width``x``height`` ``pix_fmt`` frame; ``reason`` says why not."""

    encoder: str
    opens: bool
    reason: str
    width: int = PROBE_SIZE[0]
    height: int = PROBE_SIZE[1]
    pix_fmt: str = PROBE_PIX_FMT

    def to_json(self) -> dict[str, object]:
        return {"encoder": self.encoder, "opens": self.opens, "reason": self.reason or None}


def is_hardware_encoder(name: str) -> bool:
    """NVENC encoders (the only hardware family chromaflow chooses by itself)."""
    return name.endswith("_nvenc")


def format_of_encoder(name: str) -> str | None:
    """The coding format (``h264``, ``hevc``, ``av1``) a known hardware or software encoder writes."""
    for fmt, hw in HARDWARE_ENCODERS.items():
        if name == hw or name in SOFTWARE_ENCODERS[fmt]:
            return fmt
    return None


@functools.cache
def probe_encoder(
    encoder: str,
    width: int = PROBE_SIZE[0],
    height: int = PROBE_SIZE[1],
    pix_fmt: str = PROBE_PIX_FMT,
    options: tuple[tuple[str, str], ...] = (),
) -> ProbeResult:
    """Open ``encoder`` for a ``width``x``height`` ``pix_fmt`` picture with ``options`` (name/value pairs) and
    encode one frame; the answer is cached per argument set for the life of the process."""
    if encoder not in av.codecs_available:
        return ProbeResult(encoder, False, "not in this PyAV build", width, height, pix_fmt)
    old_level = av.logging.get_level()
    av.logging.set_level(av.logging.ERROR)  # so FFmpeg's own words ("Cannot load libcuda.so.1") reach us
    try:
        with av.logging.Capture(local=True) as logs:
            try:
                ctx = cast(VideoCodecContext, av.CodecContext.create(encoder, "w"))
                ctx.width, ctx.height, ctx.pix_fmt = width, height, pix_fmt
                ctx.time_base = Fraction(1, 25)
                ctx.framerate = Fraction(25)
                ctx.options = dict(options)
                ctx.open()
                frame = av.VideoFrame(width, height, pix_fmt)
                frame.pts = 0
                ctx.encode(frame)
                ctx.encode(None)
            except (av.error.FFmpegError, ValueError, OSError) as err:
                return ProbeResult(encoder, False, _reason(err, logs), width, height, pix_fmt)
    finally:
        av.logging.set_level(old_level)
    return ProbeResult(encoder, True, "", width, height, pix_fmt)


def _reason(err: BaseException, logs: list[tuple[int, str, str]]) -> str:
    lines = [msg.strip() for level, _name, msg in logs if level <= av.logging.ERROR and msg.strip()]
    text = "; ".join(dict.fromkeys(lines)) or getattr(err, "strerror", None) or str(err)
    if "libcuda" in text or "libnvidia-encode" in text:
        text += " (no NVIDIA driver: NVENC needs an NVIDIA GPU and its driver)"
    elif "capable devices found" in text or "unsupported device" in text:
        text += " (no GPU with an NVENC engine: compute GPUs such as A100 and H100 have none)"
    return str(text)


def software_encoder(fmt: str) -> str | None:
    """The first software encoder for ``fmt`` that this PyAV build has."""
    return next((name for name in SOFTWARE_ENCODERS.get(fmt, ()) if name in av.codecs_available), None)


def hardware_encoders() -> list[dict[str, object]]:
    """Each NVENC encoder of this PyAV build with the format it writes and whether it opens here.

    Meant for ``chromaflow info``: ``[{"format": "h264", "encoder": "h264_nvenc", "opens": False,
    "reason": "Cannot load libcuda.so.1 (...)", "fallback": "libx264"}, ...]``.
    """
    report: list[dict[str, object]] = []
    for fmt, name in HARDWARE_ENCODERS.items():
        if name not in av.codecs_available:
            continue
        probe = probe_encoder(name)
        report.append({"format": fmt, **probe.to_json(), "fallback": software_encoder(fmt)})
    return report
