"""Colour science in torch and the colour tags every host reads frames with.

Conversions take tensors with the colour channels at dimension -3 (``(3, H, W)`` or ``(N, 3, H, W)``), on any
device; float16/bfloat16 inputs are computed in float32 and returned in their own dtype. One module per job:

- :mod:`~chromaflow.core.colour.lab`: sRGB, linear RGB, CIE XYZ and CIE L*a*b* (D65);
- :mod:`~chromaflow.core.colour.ycbcr`: R'G'B' <-> Y'CbCr (BT.601/709/2020, limited/full range, any depth);
- :mod:`~chromaflow.core.colour.subsampling`: chroma planes to the luma grid and back, at their siting;
- :mod:`~chromaflow.core.colour.tags`: matrix, transfer, primaries, range and chroma siting as H.273 codes, the
  rule for untagged frames and what is refused.

Everything public is importable from ``chromaflow.core.colour`` itself.
"""

from chromaflow.core.colour.lab import (
    D65_WHITE,
    LAB_EPSILON,
    LAB_KAPPA,
    XYZ_TO_LINEAR_RGB,
    gray_to_rgb,
    lab_to_rgb,
    lab_to_xyz,
    lightness,
    linear_rgb_to_xyz,
    linear_to_srgb,
    rgb_to_lab,
    srgb_to_linear,
    xyz_to_lab,
    xyz_to_linear_rgb,
)
from chromaflow.core.colour.subsampling import Siting, downsample_chroma, upsample_chroma
from chromaflow.core.colour.tags import (
    ChromaLocation,
    ColourRange,
    ColourTags,
    Matrix,
    Primaries,
    Transfer,
    UnsupportedMatrixError,
    resolve_tags,
    untagged_matrix,
    untagged_range,
)
from chromaflow.core.colour.ycbcr import (
    MatrixName,
    YCbCrFormat,
    quantize,
    rgb_to_ycbcr,
    rgb_to_ypbpr_matrix,
    ycbcr_to_rgb,
)

__all__ = [
    "D65_WHITE",
    "LAB_EPSILON",
    "LAB_KAPPA",
    "XYZ_TO_LINEAR_RGB",
    "ChromaLocation",
    "ColourRange",
    "ColourTags",
    "Matrix",
    "MatrixName",
    "Primaries",
    "Siting",
    "Transfer",
    "UnsupportedMatrixError",
    "YCbCrFormat",
    "downsample_chroma",
    "gray_to_rgb",
    "lab_to_rgb",
    "lab_to_xyz",
    "lightness",
    "linear_rgb_to_xyz",
    "linear_to_srgb",
    "quantize",
    "resolve_tags",
    "rgb_to_lab",
    "rgb_to_ycbcr",
    "rgb_to_ypbpr_matrix",
    "srgb_to_linear",
    "untagged_matrix",
    "untagged_range",
    "upsample_chroma",
    "xyz_to_lab",
    "xyz_to_linear_rgb",
    "ycbcr_to_rgb",
]
