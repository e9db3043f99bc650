"""Encoder choices: codec and quality defaults by container, pixel-format choice, colour tags.

Defaults (overridable by every option): H.264 (libx264, CRF 18, preset "medium") for MP4/MOV/MKV/AVI/TS, VP9
(libvpx-vp9, CRF 32, constant quality) for WebM, FFV1 for NUT, y4m as raw frames, PNG/JPEG/TIFF/BMP for image
sequences. The pixel format stays the frames' own whenever the encoder accepts it, so a colorized Y'CbCr stream
keeps its source luma samples and bit depth.
"""

from dataclasses import dataclass, field

import av
from av.video.reformatter import ColorRange

from chromaflow.core.errors import UsageError
from chromaflow.filters.pyav_frames import is_full_range, layout_of, matrix_of

_X264 = ("libx264", {"crf": "18", "preset": "medium"})
DEFAULTS_BY_SUFFIX: dict[str, tuple[str, dict[str, str]]] = {
    ".mp4": _X264,
    ".m4v": _X264,
    ".mov": _X264,
    ".mkv": _X264,
    ".avi": _X264,
    ".ts": _X264,
    ".m2ts": _X264,
    ".flv": _X264,
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
# Pixel formats the y4m muxer accepts (higher depths need strict=-1, which the writer sets).
Y4M_FORMATS = {
    "gray",
    "gray9le",
    "gray10le",
    "gray12le",
    "gray16le",
    "yuv411p",
    "yuv420p",
    "yuv422p",
    "yuv444p",
    "yuvj420p",
    "yuvj422p",
    "yuvj444p",
    *(f"yuv{c}p{b}le" for c in ("420", "422", "444") for b in (9, 10, 12, 14, 16)),
}


@dataclass
class EncodeOptions:
    """What the user may ask of the video encoder; ``None`` means "the container's default"."""

    codec: str | None = None
    crf: float | None = None
    bitrate: str | int | None = None
    preset: str | None = None
    pix_fmt: str | None = None
    options: dict[str, str] = field(default_factory=dict)

    def resolve(self, suffix: str, is_pipe: bool) -> tuple[str, dict[str, str], int | None]:
        """(codec name, codec options, bit rate) for an output with this suffix."""
        default_codec, default_opts = (PIPE_CODEC, {}) if is_pipe else DEFAULTS_BY_SUFFIX.get(suffix, _X264)
        codec = self.codec or default_codec
        if codec not in av.codecs_available:
            raise UsageError(
                f"video codec {codec!r} is not available in this PyAV build; try libx264 or ffv1"
            )
        try:
            if av.Codec(codec, "w").type != "video":
                raise UsageError(f"{codec!r} is not a video encoder")
        except av.codec.codec.UnknownCodecError as err:
            raise UsageError(f"{codec!r} is not an encoder in this PyAV build") from err
        opts = dict(default_opts) if codec == default_codec else {}
        bit_rate = None
        if self.bitrate is not None:
            bit_rate = _parse_bitrate(self.bitrate)
            opts.pop("crf", None)
            opts.pop("b", None)
        if self.crf is not None:
            if self.bitrate is not None:
                raise UsageError("give either --crf or --bitrate, not both")
            opts["crf"] = f"{self.crf:g}"
        if self.preset is not None:
            opts["preset"] = self.preset
        opts.update(self.options)
        return codec, opts, bit_rate


def _parse_bitrate(value: str | int) -> int:
    if isinstance(value, int):
        return value
    text = value.strip().lower()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    try:
        return int(float(text.rstrip("km")) * scale)
    except ValueError as err:
        raise UsageError(f"bad bitrate {value!r}: use a number of bits/s like 4M or 2500k") from err


def _family(name: str) -> str:
    lay = layout_of(name)
    if lay.kind != "other":
        return lay.kind
    return "rgb" if av.VideoFormat(name).is_rgb else "other"


def choose_pix_fmt(codec: str, frame_format: str, requested: str | None, is_y4m: bool = False) -> str:
    """The encoder's pixel format: the requested one, else the frames' own if accepted, else the nearest."""
    supported = [f.name for f in (av.Codec(codec, "w").video_formats or ())]
    if is_y4m:
        supported = [f for f in supported if f in Y4M_FORMATS] or sorted(Y4M_FORMATS)
    if requested:
        try:
            av.VideoFormat(requested)
        except ValueError as err:
            raise UsageError(f"unknown pixel format {requested!r}") from err
        if supported and requested not in supported:
            raise UsageError(f"encoder {codec} does not take {requested}; it takes {', '.join(supported)}")
        return requested
    if not supported or frame_format in supported:
        return frame_format
    src = layout_of(frame_format)
    src_family = _family(frame_format)

    def score(name: str) -> tuple[int, int, int]:
        lay = layout_of(name)
        family = _family(name)
        same_family = family == src_family or (src_family == "gray" and family == "yuv")
        enough_bits = lay.bits >= src.bits
        return (int(same_family), int(enough_bits), -abs(lay.bits - src.bits))

    return max(supported, key=score)


# Encoders that refuse odd picture sizes with subsampled chroma.
_EVEN_SIZE_ENCODERS = {"libx264", "libx265", "h264_nvenc", "hevc_nvenc", "mpeg4", "libopenh264"}


def fit_odd_size(codec: str, pix_fmt: str, width: int, height: int, requested: str | None) -> str:
    """For an odd-sized picture, swap a subsampled format the encoder would refuse for its 4:4:4 sibling."""
    lay = layout_of(pix_fmt)
    if requested or codec not in _EVEN_SIZE_ENCODERS or lay.kind != "yuv":
        return pix_fmt
    fy, fx = lay.factors
    if (fx > 1 and width % 2) or (fy > 1 and height % 2):
        wider = pix_fmt.replace("420", "444").replace("422", "444")
        supported = {f.name for f in (av.Codec(codec, "w").video_formats or ())}
        if wider in supported:
            return wider
        raise UsageError(
            f"{codec} cannot encode a {width}x{height} picture in {pix_fmt} (odd size); "
            "scale to an even size or choose another codec (e.g. --codec ffv1)"
        )
    return pix_fmt


def apply_colour_tags(ctx: av.codec.context.CodecContext, frame: av.VideoFrame, pix_fmt: str) -> None:
    """Copy primaries, transfer, matrix and range from the first frame to the encoder (Y'CbCr outputs)."""
    if _family(pix_fmt) in ("yuv", "gray"):
        for attr in ("color_primaries", "color_trc", "colorspace"):
            value = int(getattr(frame, attr))
            if value not in (0, 2):  # reserved / unspecified
                setattr(ctx, attr, value)
        lay = layout_of(pix_fmt)
        if int(frame.color_range) in (1, 2) and not lay.full_range_name:
            ctx.color_range = int(frame.color_range)
        elif lay.full_range_name:
            ctx.color_range = int(ColorRange.JPEG)


def convert_for_encoder(frame: av.VideoFrame, pix_fmt: str) -> av.VideoFrame:
    """Convert ``frame`` to the encoder's pixel format with its own matrix and range; timing is kept."""
    if frame.format.name == pix_fmt:
        return frame
    src_layout = layout_of(frame.format)
    src_range = ColorRange.JPEG if is_full_range(frame, src_layout) else ColorRange.MPEG
    dst_layout = layout_of(pix_fmt)
    if dst_layout.full_range_name or (src_range == ColorRange.JPEG and dst_layout.kind != "other"):
        dst_range = ColorRange.JPEG
    else:
        dst_range = ColorRange.MPEG
    space = {"709": 1, "601": 5, "2020": 9}[matrix_of(frame)]
    out = frame.reformat(
        format=pix_fmt,
        src_colorspace=space,
        dst_colorspace=space,
        src_color_range=src_range,
        dst_color_range=dst_range,
    )
    out.pts = frame.pts
    out.time_base = frame.time_base
    out.duration = frame.duration
    return out
