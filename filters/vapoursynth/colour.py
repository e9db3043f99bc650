"""VapourSynth clip formats and colour-description frame properties, as the engine understands them.

Frame properties read (VapourSynth's reserved names, ITU-T H.273 code values), decided by the one colour-tag model
every host goes through (:mod:`chromaflow.core.colour.tags`: the rule for missing or "unspecified" values, and the
list of refused matrices, with the reasons):

- ``_Matrix``: 1 (BT.709), 5/6 (BT.601), 9 (BT.2020 non-constant luminance); missing: 709 for frames wider than
  1024 or taller than 576, else 601 (written as 6, SMPTE 170M). Other matrices are refused (GRAY tagged 0, as
  ``ShufflePlanes`` of an RGB clip leaves it, counts as missing).
- ``_Range`` (VapourSynth R81+, H.273 numbering: 0 = limited, 1 = full) or, on older cores, the deprecated
  ``_ColorRange`` (0 = full, 1 = limited); the output gets the one its core uses. Missing: limited for integer
  YUV and GRAY, full for RGB and for float samples.
- ``_ChromaLocation``: 0 left (default), 1 center, 2 top-left, 3 top, 4 bottom-left, 5 bottom.
- ``_Transfer`` / ``_Primaries``: passed through when H.273 defines the code; defaults follow the matrix and, for
  RGB, sRGB (13) with BT.709 primaries.

For range, siting, transfer and primaries, a value H.273 does not define counts as missing.

The output carries the description that was used, so a later ``core.resize`` converts it correctly.
"""

from dataclasses import dataclass
from typing import Any

import vapoursynth as vs

from chromaflow.core.colour import YCbCrFormat
from chromaflow.core.colour.tags import (
    ColourRange,
    ColourTags,
    Family,
    Matrix,
    UnsupportedMatrixError,
    coding_matrix,
    resolve_tags,
)

# R81 replaced _ColorRange (0 = full) with _Range (H.273: 1 = full) and aliases the old name to the new one.
HAS_RANGE_PROP = vs.core.core_version.release_major >= 81
_FAMILIES: dict[int, Family] = {vs.GRAY: "gray", vs.YUV: "yuv", vs.RGB: "rgb"}
_RETAG = (
    "convert with core.resize.Bicubic(clip, matrix_s='709', matrix_in_s=...) or, if the property is wrong, "
    "retag the clip with core.std.SetFrameProps(clip, _Matrix=1)"
)


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
class ColourDescription(ColourTags):
    """The colour description of one frame, after the untagged rule (:func:`describe`)."""

    def ycbcr(self, layout: ClipLayout) -> YCbCrFormat:
        """How the frame's Y'CbCr (or gray) samples are coded (RGB: how its colour would be coded as Y'CbCr)."""
        matrix = coding_matrix(self.matrix, layout.width, layout.height)
        return YCbCrFormat(matrix.coefficients, self.full_range, None if layout.is_float else layout.bits)

    def write(self, props: Any, family: int) -> None:
        """Set this description on an output frame of colour family ``family``."""
        props["_Matrix"] = int(Matrix.RGB if family == vs.RGB else self.matrix)
        props["_Transfer"] = int(self.transfer)
        props["_Primaries"] = int(self.primaries)
        rng = ColourRange.FULL if family == vs.RGB else self.range
        if HAS_RANGE_PROP:
            props["_Range"] = int(rng)
        else:
            props["_ColorRange"] = rng.vs_legacy
        if family == vs.YUV:
            props["_ChromaLocation"] = int(self.chroma_location)
        elif "_ChromaLocation" in props:
            del props["_ChromaLocation"]


def describe(props: Any, layout: ClipLayout, func: str, n: int) -> ColourDescription:
    """Read a frame's colour description through the colour-tag model (see the module docstring)."""
    if HAS_RANGE_PROP:
        rng = ColourRange.from_code(_prop_int(props, "_Range"))
    else:
        rng = ColourRange.from_vs_legacy(_prop_int(props, "_ColorRange"))
    try:
        tags = resolve_tags(
            _FAMILIES[layout.family],
            layout.width,
            layout.height,
            is_float=layout.is_float,
            matrix=_prop_int(props, "_Matrix"),
            transfer=_prop_int(props, "_Transfer"),
            primaries=_prop_int(props, "_Primaries"),
            full_range=None if rng is None else rng == ColourRange.FULL,
            chroma_location=_prop_int(props, "_ChromaLocation"),
        )
    except UnsupportedMatrixError as err:
        raise vs.Error(f"chromaflow.{func}: frame {n} has {err.explain('_Matrix', _RETAG)}") from err
    return ColourDescription(
        tags.matrix, tags.transfer, tags.primaries, tags.full_range, tags.chroma_location
    )
