"""Plane-level access to PyAV video frames: numpy views, pixel-format families and Y'CbCr coding.

Nodes work on planes directly so that a Y'CbCr frame's luma can be carried to the output bit for bit; only the
chroma planes are rewritten. The helpers here know which formats are planar Y'CbCr (with optional alpha), which
are gray, and which must first be unpacked into a planar Y'CbCr format.
"""

import re
from dataclasses import dataclass

import av
import numpy as np
from av.video.reformatter import ColorRange

from chromaflow.core.colour import Siting, YCbCrFormat
from chromaflow.core.errors import InputError

# FFmpeg/H.273 codes (AVColorSpace) mapped to the core's matrix names.
_MATRIX_BY_COLORSPACE = {1: "709", 5: "601", 6: "601", 7: "601", 9: "2020", 10: "2020"}
# AVChromaLocation codes mapped to the core's siting names (0 = unspecified -> MPEG-2 "left").
_SITING_BY_LOCATION: dict[int, Siting] = {
    1: "left",
    2: "center",
    3: "topleft",
    4: "top",
    5: "bottomleft",
    6: "bottom",
}
_PLANAR_YUV = re.compile(r"^yuva?j?(4[0-4][0-4]|41[01])p(\d+)?(le|be)?$")
_GRAY = re.compile(r"^gray(\d+)?(le|be)?$")

# Packed/semi-planar Y'CbCr formats whose luma survives a repack into a planar format unchanged.
_REPACK = {
    "nv12": "yuv420p",
    "nv21": "yuv420p",
    "nv16": "yuv422p",
    "nv24": "yuv444p",
    "nv42": "yuv444p",
    "yuyv422": "yuv422p",
    "uyvy422": "yuv422p",
    "p010le": "yuv420p10le",
    "p012le": "yuv420p12le",
    "p016le": "yuv420p16le",
    "p210le": "yuv422p10le",
    "p410le": "yuv444p10le",
}


@dataclass(frozen=True)
class PlaneLayout:
    """What a node needs to know about a pixel format."""

    name: str
    bits: int
    kind: str  # "yuv" (planar Y'CbCr, maybe with alpha), "gray", or "other"
    factors: tuple[int, int] = (1, 1)  # chroma subsampling (vertical, horizontal)
    full_range_name: bool = False  # yuvj* formats are full range by definition

    @property
    def dtype(self) -> type[np.unsignedinteger]:
        return np.uint8 if self.bits <= 8 else np.uint16


def layout_of(fmt: str | av.VideoFormat) -> PlaneLayout:
    """Classify a pixel format by name; big-endian high-depth formats count as "other" (they get unpacked)."""
    name = fmt if isinstance(fmt, str) else fmt.name
    desc = av.VideoFormat(name)
    bits = max(c.bits for c in desc.components)
    m = _PLANAR_YUV.match(name)
    if m and not desc.is_big_endian and (bits == 8 or name.endswith("le")):
        sub = m.group(1)
        factors = {"420": (2, 2), "422": (1, 2), "444": (1, 1), "440": (2, 1), "411": (1, 4), "410": (4, 4)}[
            sub
        ]
        return PlaneLayout(name, bits, "yuv", factors, full_range_name="yuvj" in name)
    if _GRAY.match(name) and not desc.is_big_endian and (bits == 8 or name.endswith("le")):
        return PlaneLayout(name, bits, "gray")
    return PlaneLayout(name, bits, "other")


def planar_yuv_name(bits: int, chroma: str) -> str:
    """The planar Y'CbCr format with ``chroma`` subsampling ("420", "422", "444") and ``bits`` per sample."""
    return f"yuv{chroma}p" if bits <= 8 else f"yuv{chroma}p{bits}le"


def unpacked_format(layout: PlaneLayout) -> str:
    """The planar Y'CbCr format that an "other" format is converted into before a node works on it."""
    if layout.name in _REPACK:
        return _REPACK[layout.name]
    return planar_yuv_name(8 if layout.bits <= 8 else 16, "444")


def plane_view(frame: av.VideoFrame, index: int) -> np.ndarray:
    """A writable ``(height, width)`` numpy view of one plane (no copy), without the line padding."""
    plane = frame.planes[index]
    itemsize = 1 if frame.format.components[0].bits <= 8 else 2
    dtype = np.uint8 if itemsize == 1 else np.dtype("<u2")
    flat = np.frombuffer(plane, dtype=dtype)
    return flat.reshape(plane.height, plane.line_size // itemsize)[:, : plane.width]


def is_full_range(frame: av.VideoFrame, layout: PlaneLayout) -> bool:
    """Full ("JPEG", PC) range when tagged so, for yuvj formats, and for untagged gray (FFmpeg's convention)."""
    if frame.color_range == ColorRange.JPEG or layout.full_range_name:
        return True
    if frame.color_range == ColorRange.MPEG:
        return False
    return layout.kind == "gray"


def matrix_of(frame: av.VideoFrame) -> str:
    """Y'CbCr matrix from the frame's tag; untagged frames are guessed like players do (HD -> 709, SD -> 601)."""
    guessed = "709" if frame.height >= 720 else "601"
    return _MATRIX_BY_COLORSPACE.get(int(frame.colorspace), guessed)


def ycbcr_format_of(frame: av.VideoFrame, layout: PlaneLayout | None = None) -> YCbCrFormat:
    """The core's description of how ``frame``'s samples are coded."""
    layout = layout or layout_of(frame.format)
    return YCbCrFormat(matrix=matrix_of(frame), full_range=is_full_range(frame, layout), bits=layout.bits)  # type: ignore[arg-type]


def siting_of(frame: av.VideoFrame) -> Siting:
    return _SITING_BY_LOCATION.get(int(frame.chroma_location), "left")


def copy_props(src: av.VideoFrame, dst: av.VideoFrame) -> av.VideoFrame:
    """Carry timing and colour tags from ``src`` to ``dst`` (and return ``dst``)."""
    dst.pts = src.pts
    if src.time_base is not None:  # frames made in Python (from_ndarray) have none
        dst.time_base = src.time_base
    dst.duration = src.duration
    dst.color_primaries = src.color_primaries
    dst.color_trc = src.color_trc
    dst.colorspace = src.colorspace
    dst.color_range = src.color_range
    dst.chroma_location = src.chroma_location
    return dst


def to_planar(frame: av.VideoFrame) -> tuple[av.VideoFrame, PlaneLayout]:
    """Return ``frame`` itself when it is planar Y'CbCr or gray, else a planar Y'CbCr copy of it."""
    layout = layout_of(frame.format)
    if layout.kind != "other":
        return frame, layout
    target = unpacked_format(layout)
    try:
        if frame.format.is_rgb:
            # RGB has no luma to keep: code it as full-range Y'CbCr with the matrix its tags (or size) suggest.
            space = _swscale_space(frame)
            out = frame.reformat(format=target, dst_colorspace=space, dst_color_range=ColorRange.JPEG)
            copy_props(frame, out)
            out.colorspace, out.color_range = space, ColorRange.JPEG
            return out, layout_of(target)
        rng = frame.color_range or None
        out = frame.reformat(format=target, src_color_range=rng, dst_color_range=rng)
    except ValueError as err:
        raise InputError(f"cannot convert pixel format {layout.name} to {target}: {err}") from err
    return copy_props(frame, out), layout_of(target)


def rgb24_of(frame: av.VideoFrame) -> np.ndarray:
    """``(H, W, 3)`` uint8 sRGB of a frame, honouring its matrix and range tags."""
    layout = layout_of(frame.format)
    if layout.kind == "other" and frame.format.is_rgb:
        return frame.to_ndarray(format="rgb24")
    rng = ColorRange.JPEG if is_full_range(frame, layout) else ColorRange.MPEG
    rgb = frame.reformat(format="rgb24", src_colorspace=_swscale_space(frame), src_color_range=rng)
    return rgb.to_ndarray()


def _swscale_space(frame: av.VideoFrame) -> int:
    return {"709": 1, "601": 5, "2020": 9}[matrix_of(frame)]
