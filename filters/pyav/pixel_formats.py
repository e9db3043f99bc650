"""The pixels an encoder gets: its pixel format, a 4:4:4 sibling for odd sizes, the conversion, the colour tags.

The pixel format stays the frames' own whenever the encoder accepts it, so a colorized Y'CbCr stream keeps its
source luma samples and bit depth; otherwise the nearest one of the same family and at least the same depth is
taken. Conversions use the frame's own matrix and range, and the first frame's colour tags go to the encoder.
"""

import av
from av.video.reformatter import ColorRange

from chromaflow.core.colour.tags import ColourRange, Matrix
from chromaflow.core.errors import InputError, UsageError
from chromaflow.filters.pyav.frames import is_full_range, layout_of, matrix_of

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


def _family(name: str) -> str:
    lay = layout_of(name)
    if lay.kind != "other":
        return lay.kind
    return "rgb" if av.VideoFormat(name).is_rgb else "other"


def choose_pix_fmt(codec: str, frame_format: str, requested: str | None, is_y4m: bool = False) -> str:
    """The encoder's pixel format: the requested one, else the frames' own if accepted, else the nearest."""
    supported = [f.name for f in (av.Codec(codec, "w").video_formats or ()) if f.components]
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


def apply_colour_tags(ctx: av.VideoCodecContext, frame: av.VideoFrame, pix_fmt: str) -> None:
    """Copy primaries, transfer, matrix and range from the first frame to the encoder (Y'CbCr outputs)."""
    if _family(pix_fmt) in ("yuv", "gray"):
        for attr in ("color_primaries", "color_trc", "colorspace"):
            value = int(getattr(frame, attr))
            # 2: unspecified; 0: reserved (primaries, transfer) or RGB (matrix), neither a Y'CbCr output's
            if value not in (0, Matrix.UNSPECIFIED):
                setattr(ctx, attr, value)
        lay = layout_of(pix_fmt)
        tagged = ColourRange.from_ffmpeg(int(frame.color_range))
        if lay.full_range_name:
            ctx.color_range = ColourRange.FULL.ffmpeg
        elif tagged is not None:
            ctx.color_range = tagged.ffmpeg


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
    try:
        space: int | None = int(matrix_of(frame).canonical)  # swscale names BT.601 once, as 5
    except InputError:
        if frame.format.is_rgb or av.VideoFormat(pix_fmt).is_rgb:
            raise
        space = None  # Y'CbCr to Y'CbCr: swscale applies no matrix, so one chromaflow cannot decode may pass
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
