"""VapourSynth clip formats and colour-description frame properties, as the engine understands them.

Frame properties read (VapourSynth's reserved names, ITU-T H.273 code values) and the defaults used when a property
is missing or says "unspecified" (2):

- ``_Matrix``: 1 (BT.709), 5/6 (BT.601), 9 (BT.2020 non-constant luminance). Default: 709 for HD frames (wider
  than 1024 or taller than 576), else 601 (written as 6, SMPTE 170M). Other matrices are refused.
- ``_Range`` (VapourSynth R81+, ITU-T H.273 numbering: 0 = limited, 1 = full) or, on older cores, the
  deprecated ``_ColorRange`` (0 = full, 1 = limited); the output gets the one its core uses. Default: limited for
  integer YUV and GRAY, full for RGB and for float samples.
- ``_ChromaLocation``: 0 left (default, the MPEG-2/H.264 siting), 1 center, 2 top-left, 3 top, 4 bottom-left,
  5 bottom.
- ``_Transfer`` / ``_Primaries``: passed through when given; defaults follow the matrix (709: 1/1; 601: 6/6, or
  6/5 with matrix 5; 2020: 14/9) and, for RGB, sRGB (13) with BT.709 primaries.

The output carries the description that was used, so a later ``core.resize`` converts it correctly.
"""

from dataclasses import dataclass
from typing import Any

import vapoursynth as vs

from chromaflow.core.colour import Siting, YCbCrFormat

_MATRIX_NAMES = {1: "709", 5: "601", 6: "601", 9: "2020"}
_MATRIX_LABELS = {
    0: "RGB",
    4: "FCC",
    7: "SMPTE 240M",
    8: "YCgCo",
    10: "BT.2020 constant luminance",
    12: "chromaticity-derived NCL",
    13: "chromaticity-derived CL",
    14: "ICtCp",
}
_DEFAULT_TRANSFER_PRIMARIES = {1: (1, 1), 5: (6, 5), 6: (6, 6), 9: (14, 9)}
_SITINGS: dict[int, Siting] = {0: "left", 1: "center", 2: "topleft", 3: "top", 4: "bottomleft", 5: "bottom"}
UNSPECIFIED = 2
# R81 replaced _ColorRange (0 = full) with _Range (H.273: 1 = full) and aliases the old name to the new one.
HAS_RANGE_PROP = vs.core.core_version.release_major >= 81
RGB_TRANSFER_DEFAULT = 13  # IEC 61966-2-1 (sRGB): what the colour nets assume for R'G'B'
RGB_PRIMARIES_DEFAULT = 1


@dataclass(frozen=True)
class ClipLayout:
    """What the filters need to know about a constant-format clip."""

    family: int  # vs.GRAY, vs.YUV or vs.RGB
    bits: int
    is_float: bool
    ss_w: int  # log2 of the horizontal chroma subsampling
    ss_h: int
    width: int
    height: int

    @property
    def factors(self) -> tuple[int, int]:
        """Chroma subsampling as (vertical, horizontal) factors, as :mod:`chromaflow.core.colour` takes them."""
        return 1 << self.ss_h, 1 << self.ss_w

    @property
    def peak(self) -> int:
        return (1 << self.bits) - 1

    @property
    def is_hd(self) -> bool:
        return self.width > 1024 or self.height > 576


def check_clip(clip: Any, func: str) -> ClipLayout:
    """The clip's layout, or a ``vs.Error`` naming ``func`` for what chromaflow cannot take."""
    if not isinstance(clip, vs.VideoNode):
        raise vs.Error(f"chromaflow.{func}: expected a video clip (vs.VideoNode), got {type(clip).__name__}")
    fmt = clip.format
    if fmt is None or fmt.id == 0:
        raise vs.Error(
            f"chromaflow.{func}: the clip has a variable format; convert it to one format first "
            "(e.g. core.resize.Bicubic(clip, format=vs.YUV420P8))"
        )
    if clip.width == 0 or clip.height == 0:
        raise vs.Error(
            f"chromaflow.{func}: the clip has a variable frame size; resize it to one size first "
            "(e.g. core.resize.Bicubic(clip, width=W, height=H))"
        )
    family = fmt.color_family
    is_float = fmt.sample_type == vs.FLOAT
    ok_depth = fmt.bits_per_sample in (16, 32) if is_float else 8 <= fmt.bits_per_sample <= 16
    if (
        family not in (vs.GRAY, vs.YUV, vs.RGB)
        or not ok_depth
        or fmt.subsampling_w > 2
        or fmt.subsampling_h > 2
    ):
        raise vs.Error(
            f"chromaflow.{func}: unsupported format {fmt.name}; use GRAY, YUV or RGB with 8-16 bit integer, "
            "half or single float samples (convert with core.resize.Bicubic(clip, format=vs.YUV420P8))"
        )
    return ClipLayout(
        family, fmt.bits_per_sample, is_float, fmt.subsampling_w, fmt.subsampling_h, clip.width, clip.height
    )


def _prop_int(props: Any, *names: str) -> int | None:
    for name in names:
        value = props.get(name)
        if value is not None:
            try:
                return int(value)
            except (TypeError, ValueError):
                return None
    return None


@dataclass(frozen=True)
class ColourDescription:
    """The colour description of one frame, after defaults."""

    matrix: int
    transfer: int
    primaries: int
    full_range: bool
    chroma_location: int

    @property
    def siting(self) -> Siting:
        return _SITINGS[self.chroma_location]

    def ycbcr(self, layout: ClipLayout) -> YCbCrFormat:
        """How the frame's Y'CbCr (or gray) samples are coded."""
        name = _MATRIX_NAMES.get(self.matrix, "709")
        bits = None if layout.is_float else layout.bits
        return YCbCrFormat(name, self.full_range, bits)  # type: ignore[arg-type]

    def write(self, props: Any, family: int) -> None:
        """Set this description on an output frame of colour family ``family``."""
        props["_Matrix"] = 0 if family == vs.RGB else self.matrix
        props["_Transfer"] = self.transfer
        props["_Primaries"] = self.primaries
        full = family == vs.RGB or self.full_range
        if HAS_RANGE_PROP:
            props["_Range"] = 1 if full else 0
        else:
            props["_ColorRange"] = 0 if full else 1
        if family == vs.YUV:
            props["_ChromaLocation"] = self.chroma_location
        elif "_ChromaLocation" in props:
            del props["_ChromaLocation"]


def describe(props: Any, layout: ClipLayout, func: str, n: int) -> ColourDescription:
    """Read a frame's colour description (see the module docstring for the defaults)."""
    if HAS_RANGE_PROP:
        rng = _prop_int(props, "_Range")
        full_flag = None if rng not in (0, 1) else rng == 1
    else:
        rng = _prop_int(props, "_ColorRange")
        full_flag = None if rng not in (0, 1) else rng == 0
    full = (layout.is_float or layout.family == vs.RGB) if full_flag is None else full_flag
    location = _prop_int(props, "_ChromaLocation")
    location = location if location in _SITINGS else 0
    transfer = _prop_int(props, "_Transfer")
    primaries = _prop_int(props, "_Primaries")
    if layout.family == vs.RGB:
        matrix = 0
        default_tp = (RGB_TRANSFER_DEFAULT, RGB_PRIMARIES_DEFAULT)
    else:
        matrix = _prop_int(props, "_Matrix")
        if matrix is None or matrix == UNSPECIFIED:
            matrix = 1 if layout.is_hd else 6
        if matrix not in _MATRIX_NAMES:
            label = _MATRIX_LABELS.get(matrix, "unknown")
            raise vs.Error(
                f"chromaflow.{func}: frame {n} has _Matrix={matrix} ({label}), which chromaflow cannot decode; "
                "use BT.601, BT.709 or BT.2020: convert with core.resize.Bicubic(clip, matrix_s='709', "
                "matrix_in_s=...) or, if the property is wrong, fix it with core.std.SetFrameProps(clip, _Matrix=1)"
            )
        default_tp = _DEFAULT_TRANSFER_PRIMARIES[matrix]
    if transfer in (None, UNSPECIFIED, 0):
        transfer = default_tp[0]
    if primaries in (None, UNSPECIFIED, 0):
        primaries = default_tp[1]
    assert transfer is not None and primaries is not None
    return ColourDescription(matrix, transfer, primaries, full, location)
