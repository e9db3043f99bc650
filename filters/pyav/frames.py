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
from chromaflow.core.colour.tags import (
    UNTAGGED_CHROMA_LOCATION,
    ChromaLocation,
    ColourRange,
    Family,
    Matrix,
    UnsupportedMatrixError,
    resolve_matrix,
    untagged_matrix,
    untagged_range,
)
from chromaflow.core.errors import InputError

# What to do about a refused matrix, in FFmpeg's words (FFmpeg's colorspace codes are H.273's).
_RETAG = (
    "convert it first (ffmpeg -vf colorspace=all=bt709, or zscale=matrix=709) or, if the tag is wrong, retag it "
    "(ffmpeg -vf setparams=colorspace=bt709)"
)
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


def family_of(frame: av.VideoFrame, layout: PlaneLayout | None = None) -> Family:
    """The kind of samples a frame holds, as the colour-tag model names it."""
    if frame.format.is_rgb:
        return "rgb"
    return "gray" if (layout or layout_of(frame.format)).kind == "gray" else "yuv"


def is_full_range(frame: av.VideoFrame, layout: PlaneLayout) -> bool:
    """Full range when tagged so or for yuvj formats (full by definition); untagged: the colour-tag rule."""
    if layout.full_range_name:
        return True
    tagged = ColourRange.from_ffmpeg(int(frame.color_range))
    rng = untagged_range(family_of(frame, layout)) if tagged is None else tagged
    return rng == ColourRange.FULL


def matrix_of(frame: av.VideoFrame) -> Matrix:
    """The frame's matrix through the colour-tag model: its tag, or the untagged rule (an RGB frame, which has
    none, gets the rule's: the matrix it is coded in as Y'CbCr). A refused matrix is an :class:`InputError`."""
    try:
        matrix = resolve_matrix(int(frame.colorspace), family_of(frame), frame.width, frame.height)
    except UnsupportedMatrixError as err:
        raise InputError(f"a frame has {err.explain('colorspace', _RETAG)}") from err
    return untagged_matrix(frame.width, frame.height) if matrix == Matrix.RGB else matrix


def ycbcr_format_of(frame: av.VideoFrame, layout: PlaneLayout | None = None) -> YCbCrFormat:
    """The core's description of how ``frame``'s samples are coded."""
    layout = layout or layout_of(frame.format)
    return YCbCrFormat(matrix_of(frame).coefficients, is_full_range(frame, layout), layout.bits)


def siting_of(frame: av.VideoFrame) -> Siting:
    location = ChromaLocation.from_ffmpeg(int(frame.chroma_location))
    return (UNTAGGED_CHROMA_LOCATION if location is None else location).siting


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
            # RGB has no luma to keep: code it as full-range Y'CbCr with the matrix the untagged rule gives.
            matrix = matrix_of(frame)
            out = frame.reformat(
                format=target, dst_colorspace=int(matrix.canonical), dst_color_range=ColorRange.JPEG
            )
            copy_props(frame, out)
            out.colorspace, out.color_range = int(matrix), ColourRange.FULL.ffmpeg
            return out, layout_of(target)
        rng = frame.color_range or None
        out = frame.reformat(format=target, src_color_range=rng, dst_color_range=rng)
    except ValueError as err:
        raise InputError(f"cannot convert pixel format {layout.name} to {target}: {err}") from err
    return copy_props(frame, out), layout_of(target)


def rgb24_of(frame: av.VideoFrame) -> np.ndarray:
    """``(H, W, 3)`` uint8 sRGB of a frame, honouring its matrix and range tags (through the colour-tag model)."""
    layout = layout_of(frame.format)
    if layout.kind == "other" and frame.format.is_rgb:
        return frame.to_ndarray(format="rgb24")
    full = is_full_range(frame, layout)
    matrix = matrix_of(frame)  # refuses what the colour-tag model refuses, gray frames included
    if layout.kind == "gray" and not full:
        return _limited_gray_rgb24(frame, layout)
    rng = ColorRange.JPEG if full else ColorRange.MPEG
    rgb = frame.reformat(format="rgb24", src_colorspace=int(matrix.canonical), src_color_range=rng)
    return rgb.to_ndarray()


def _limited_gray_rgb24(frame: av.VideoFrame, layout: PlaneLayout) -> np.ndarray:
    """R' = G' = B' = E'Y of limited-range gray (FFmpeg's swscale takes every gray format as full range)."""
    step = float(1 << (layout.bits - 8))
    unit = (plane_view(frame, 0).astype(np.float32) - 16.0 * step) / (219.0 * step)
    gray = np.clip(np.rint(unit * 255.0), 0, 255).astype(np.uint8)
    return np.repeat(gray[:, :, None], 3, axis=2)
