"""Which encoder: defaults by container, NVENC or software for a format name, its quality and preset options.

Defaults (overridable by every option): H.264 (CRF 18, preset "medium") for MP4/MOV/MKV/AVI/TS, VP9
(libvpx-vp9, CRF 32, constant quality) for WebM, FFV1 for NUT, y4m as raw frames, PNG/JPEG/TIFF/BMP for image
sequences. The pixel format the encoder gets is :mod:`chromaflow.filters.pyav.pixel_formats`' choice.

Format names choose the encoder: ``h264``, ``hevc`` and ``av1`` (and the container default, which is ``h264``)
mean "the best encoder for this format here": NVENC (``h264_nvenc``, ``hevc_nvenc``, ``av1_nvenc``) when it really
opens on this machine for the stream's size and pixel format (see :mod:`chromaflow.filters.pyav.hardware`), else the
software encoder (libx264, libx265, libsvtav1 / libaom-av1). The choice and, on fallback, why NVENC was not used
are logged once per run (logger ``chromaflow.encode``, level INFO: ``chromaflow -v``). Without a usable NVENC the
software path is exactly what ``--codec libx264`` gives. Naming an NVENC encoder (``--codec h264_nvenc``) that
cannot open is an error (:class:`DeviceError`), never a silent fallback.

Quality mapping for NVENC (option facts from FFmpeg's libavcodec/nvenc.c and nvenc_h264.c / nvenc_hevc.c /
nvenc_av1.c, ``ffmpeg -h encoder=h264_nvenc``):

- ``--crf N`` -> ``rc=vbr cq=N b=0``. ``cq`` is NVENC's constant-quality target, "0 to 51, 0 means automatic",
  in VBR rate control; with it set FFmpeg drops the average bit rate and VBV size and honours only a max rate.
  Both scales are H.264/HEVC quantiser-like (lower = better), so the same number is the starting point, not an
  equivalence: the defaults are cq 18 for H.264 (our x264 CRF 18) and cq 23 for HEVC, where libx265 gets
  CRF 23 (FFmpeg's H.265 guide: x265 CRF 28 "should visually correspond to libx264 video at CRF 23", i.e. +5;
  CRF 18 + 5 = 23). AV1 keeps each encoder's own default quality unless ``--crf`` is given. NVENC refuses
  ``cq`` outside 1..51 here (CRF 0, lossless, has no NVENC ``cq`` twin: use ``--codec libx264 --crf 0`` or ffv1).
- ``--bitrate R`` -> ``rc=vbr`` with bit rate R (no ``cq``).
- ``--preset``: NVENC has p1 "fastest (lowest quality)" .. p4 "medium (default)" .. p7 "slowest (best
  quality)". x264/x265 names map by those labels: ultrafast/superfast/veryfast -> p1, faster -> p2, fast -> p3,
  medium -> p4, slow -> p5, slower -> p6, veryslow/placebo -> p7; p1..p7 given to libx264/libx265 map back to
  veryfast, faster, fast, medium, slow, slower, veryslow. Other names pass through untouched.
"""

import logging
from dataclasses import dataclass, field

import av

from chromaflow.core.errors import DeviceError, UsageError
from chromaflow.filters.pyav.hardware import (
    HARDWARE_ENCODERS,
    format_of_encoder,
    is_hardware_encoder,
    probe_encoder,
    software_encoder,
)
from chromaflow.filters.pyav.pixel_formats import choose_pix_fmt, fit_odd_size

log = logging.getLogger("chromaflow.encode")

# Codec names that mean "the best available encoder for this coding format".
AUTO_FORMATS = tuple(HARDWARE_ENCODERS)
# Options a software encoder gets when chosen through a format name (or as a container default).
SOFTWARE_DEFAULTS: dict[str, dict[str, str]] = {
    "libx264": {"crf": "18", "preset": "medium"},
    "libx265": {"crf": "23", "preset": "medium"},
}
# NVENC's constant-quality target (cq) by format when the user gives neither --crf nor --bitrate.
NVENC_DEFAULT_CQ: dict[str, float] = {"h264": 18, "hevc": 23}
NVENC_PRESETS = tuple(f"p{i}" for i in range(1, 8))
_X264_TO_NVENC_PRESET = {
    "ultrafast": "p1",
    "superfast": "p1",
    "veryfast": "p1",
    "faster": "p2",
    "fast": "p3",
    "medium": "p4",
    "slow": "p5",
    "slower": "p6",
    "veryslow": "p7",
    "placebo": "p7",
}
_NVENC_TO_X264_PRESET = dict(
    zip(NVENC_PRESETS, ("veryfast", "faster", "fast", "medium", "slow", "slower", "veryslow"), strict=True)
)

_H264 = ("h264", SOFTWARE_DEFAULTS["libx264"])
DEFAULTS_BY_SUFFIX: dict[str, tuple[str, dict[str, str]]] = {
    ".mp4": _H264,
    ".m4v": _H264,
    ".mov": _H264,
    ".mkv": _H264,
    ".avi": _H264,
    ".ts": _H264,
    ".m2ts": _H264,
    ".flv": _H264,
    ".webm": ("libvpx-vp9", {"crf": "32", "b": "0", "row-mt": "1"}),
    ".nut": ("ffv1", {}),
    ".y4m": ("wrapped_avframe", {}),
    ".png": ("png", {}),
    ".jpg": ("mjpeg", {"qmin": "1", "q:v": "2"}),
    ".jpeg": ("mjpeg", {"qmin": "1", "q:v": "2"}),
    ".tif": ("tiff", {}),
    ".tiff": ("tiff", {}),
    ".bmp": ("bmp", {}),
}
PIPE_CODEC = "wrapped_avframe"


@dataclass(frozen=True)
class EncoderChoice:
    """Which encoder a request became: ``automatic`` when it was a format name; ``note`` says why."""

    requested: str
    codec: str
    automatic: bool
    note: str = ""


@dataclass
class EncodeOptions:
    """What the user may ask of the video encoder; ``None`` means "the container's default"."""

    codec: str | None = None
    crf: float | None = None
    bitrate: str | int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def choose(self, suffix: str, is_pipe: bool, allow_hardware: bool = True) -> EncoderChoice:
        """The concrete encoder for an output with this suffix (probing NVENC for format names)."""
        requested = self.codec or _default_for(suffix, is_pipe)[0]
        if requested in AUTO_FORMATS:
            return _choose_for_format(requested, allow_hardware)
        if requested not in av.codecs_available:
            raise UsageError(
                f"video codec {requested!r} is not available in this PyAV build; try h264, libx264 or ffv1"
            )
        try:
            if av.Codec(requested, "w").type != "video":
                raise UsageError(f"{requested!r} is not a video encoder")
        except av.codec.codec.UnknownCodecError as err:
            raise UsageError(f"{requested!r} is not an encoder in this PyAV build") from err
        if is_hardware_encoder(requested):
            probe = probe_encoder(requested)
            if not probe.opens:
                fmt = format_of_encoder(requested) or "h264"
                raise DeviceError(
                    f"{requested} (NVIDIA NVENC) cannot be used on this machine: {probe.reason}. "
                    f"Use --codec {fmt} (NVENC where it works, else {software_encoder(fmt) or 'software'}) "
                    f"or name a software encoder such as --codec {software_encoder(fmt) or 'libx264'}"
                )
        return EncoderChoice(requested, requested, automatic=False)

    def resolve(
        self, suffix: str, is_pipe: bool, allow_hardware: bool = True
    ) -> tuple[str, dict[str, str], int | None]:
        """(codec name, codec options, bit rate) for an output with this suffix."""
        return self.options_for(self.choose(suffix, is_pipe, allow_hardware), suffix, is_pipe)

    def options_for(
        self, choice: EncoderChoice, suffix: str, is_pipe: bool
    ) -> tuple[str, dict[str, str], int | None]:
        """(codec, options, bit rate) for an already chosen encoder: container or format defaults, then
        --bitrate / --crf / --preset translated for that encoder (NVENC: cq, p1..p7), then raw codec options."""
        codec = choice.codec
        hardware = is_hardware_encoder(codec)
        default_codec, default_opts = _default_for(suffix, is_pipe)
        if hardware:
            opts = _nvenc_defaults(format_of_encoder(codec))
        elif codec == _software_of(default_codec):
            opts = dict(default_opts)
        elif choice.automatic:
            opts = dict(SOFTWARE_DEFAULTS.get(codec, {}))
        else:
            opts = {}
        bit_rate = None
        if self.bitrate is not None:
            bit_rate = _parse_bitrate(self.bitrate)
            for key in ("crf", "b", "cq"):
                opts.pop(key, None)
        if self.crf is not None:
            if self.bitrate is not None:
                raise UsageError("give either --crf or --bitrate, not both")
            if hardware:
                opts.update(_nvenc_quality(codec, self.crf))
            else:
                opts["crf"] = f"{self.crf:g}"
        if self.preset is not None:
            opts["preset"] = _translate_preset(codec, self.preset)
        opts.update(self.options)
        return codec, opts, bit_rate


@dataclass(frozen=True)
class EncoderPlan:
    """Everything the writer needs to add the video stream: encoder, its options, bit rate, pixel format."""

    codec: str
    options: dict[str, str]
    bit_rate: int | None
    pix_fmt: str
    choice: EncoderChoice


def plan_encoder(
    options: EncodeOptions,
    suffix: str,
    is_pipe: bool,
    frame_format: str,
    width: int,
    height: int,
    is_y4m: bool = False,
) -> EncoderPlan:
    """Encoder, options and pixel format for a stream whose first frame is ``width``x``height`` ``frame_format``.

    An NVENC encoder is probed at this size and pixel format with these options; when it was chosen through a
    format name and refuses (too small, a bit depth the chip lacks, no free session), the software encoder
    takes over; when it was named explicitly, that is a :class:`UsageError`. Logs the choice for format names.
    """
    choice = options.choose(suffix, is_pipe)
    codec, opts, bit_rate = options.options_for(choice, suffix, is_pipe)
    pix_fmt = _fit_pix_fmt(codec, frame_format, width, height, options.pix_fmt, is_y4m)
    if is_hardware_encoder(codec):
        probe_opts = {**opts, **({"b": str(bit_rate)} if bit_rate is not None else {})}
        probe = probe_encoder(codec, width, height, pix_fmt, tuple(sorted(probe_opts.items())))
        if not probe.opens:
            if not choice.automatic:
                raise UsageError(
                    f"{codec} cannot encode this {width}x{height} {pix_fmt} stream with options "
                    f"{probe_opts}: {probe.reason}; use --codec {format_of_encoder(codec) or 'h264'} to fall "
                    "back to software automatically, or change --pix-fmt / the options"
                )
            note = f"{codec} refused this {width}x{height} {pix_fmt} stream: {probe.reason}"
            choice = _choose_for_format(choice.requested, allow_hardware=False, note=note)
            codec, opts, bit_rate = options.options_for(choice, suffix, is_pipe)
            pix_fmt = _fit_pix_fmt(codec, frame_format, width, height, options.pix_fmt, is_y4m)
    if choice.automatic:
        log.info("video encoder for %s: %s (%s)", choice.requested, codec, choice.note)
    return EncoderPlan(codec, opts, bit_rate, pix_fmt, choice)


def _fit_pix_fmt(
    codec: str, frame_format: str, width: int, height: int, requested: str | None, is_y4m: bool
) -> str:
    pix_fmt = choose_pix_fmt(codec, frame_format, requested, is_y4m)
    fitted = fit_odd_size(codec, pix_fmt, width, height, requested)
    if fitted != pix_fmt:
        log.warning("%s needs even sizes for %s: writing %s instead", codec, pix_fmt, fitted)
    return fitted


def _default_for(suffix: str, is_pipe: bool) -> tuple[str, dict[str, str]]:
    return (PIPE_CODEC, {}) if is_pipe else DEFAULTS_BY_SUFFIX.get(suffix, _H264)


def _software_of(codec: str) -> str | None:
    return software_encoder(codec) if codec in AUTO_FORMATS else codec


def _choose_for_format(fmt: str, allow_hardware: bool, note: str = "") -> EncoderChoice:
    hardware = HARDWARE_ENCODERS[fmt]
    software = software_encoder(fmt)
    if allow_hardware:
        probe = probe_encoder(hardware)
        if probe.opens:
            return EncoderChoice(fmt, hardware, True, f"{hardware} opens on this machine")
        note = f"{hardware} does not open here: {probe.reason}"
    if software is None:
        raise UsageError(f"no {fmt} encoder in this PyAV build (and {hardware} is not usable); try ffv1")
    return EncoderChoice(fmt, software, True, note or "hardware encoding not tried")


def _nvenc_defaults(fmt: str | None) -> dict[str, str]:
    opts = {"preset": "p4", "rc": "vbr"}
    cq = NVENC_DEFAULT_CQ.get(fmt or "")
    if cq is not None:
        opts.update({"cq": f"{cq:g}", "b": "0"})
    return opts


def _nvenc_quality(codec: str, crf: float) -> dict[str, str]:
    if not 1 <= crf <= 51:
        raise UsageError(
            f"--crf {crf:g}: {codec} takes a constant-quality target (cq) from 1 to 51; for lossless use "
            "--codec libx264 --crf 0 or --codec ffv1"
        )
    return {"rc": "vbr", "cq": f"{crf:g}", "b": "0"}


def _translate_preset(codec: str, preset: str) -> str:
    name = preset.strip().lower()
    if is_hardware_encoder(codec):
        return _X264_TO_NVENC_PRESET.get(name, preset)
    if codec in ("libx264", "libx265"):
        return _NVENC_TO_X264_PRESET.get(name, preset)
    return preset


def _parse_bitrate(value: str | int) -> int:
    if isinstance(value, int):
        return value
    text = value.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    try:
        return int(float(text.rstrip("km")) * scale)
    except ValueError as err:
        raise UsageError(f"bad bitrate {value!r}: use a number of bits/s like 4M or 2500k") from err
