"""R'G'B' <-> Y'CbCr in torch: the Kr/Kb matrices of BT.601, BT.709 and BT.2020 (non-constant luminance) and the
integer coding of ITU-T H.273 (limited range: 219/224 steps scaled by 2^(bits-8); full range: (2^bits - 1)
steps, chroma offset 2^(bits-1)). Float samples follow VapourSynth: Y in [0, 1], Cb/Cr in [-0.5, 0.5].

Which matrix and range a frame uses is decided by its colour tags (:mod:`chromaflow.core.colour.tags`), whose
``Matrix.coefficients`` gives the names used here.
"""

from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from chromaflow.core.colour.tensor_ops import apply_matrix, check_channels, float_op
from chromaflow.core.errors import UsageError

MatrixName = Literal["601", "709", "2020"]
_KR_KB: dict[str, tuple[float, float]] = {
    "601": (0.299, 0.114),
    "709": (0.2126, 0.0722),
    "2020": (0.2627, 0.0593),
}


@dataclass(frozen=True)
class YCbCrFormat:
    """How Y'CbCr samples are coded: matrix, range and bit depth (``bits=None`` for float samples)."""

    matrix: MatrixName = "709"
    full_range: bool = False
    bits: int | None = 8

    def __post_init__(self) -> None:
        if self.matrix not in _KR_KB:
            raise UsageError(f"unknown Y'CbCr matrix {self.matrix!r}: use 601, 709 or 2020")
        if self.bits is not None and not 8 <= self.bits <= 16:
            raise UsageError(f"unsupported bit depth {self.bits}: integer samples must be 8 to 16 bits")

    @property
    def peak(self) -> int:
        """The largest integer code value."""
        return (1 << (self.bits or 0)) - 1

    def scale_offset(self) -> tuple[float, float, float, float]:
        """(luma scale, luma offset, chroma scale, chroma offset) mapping E'Y/E'P to code values."""
        if self.bits is None:
            return 1.0, 0.0, 1.0, 0.0
        if self.full_range:
            return float(self.peak), 0.0, float(self.peak), float(1 << (self.bits - 1))
        step = float(1 << (self.bits - 8))
        return 219.0 * step, 16.0 * step, 224.0 * step, 128.0 * step


def rgb_to_ypbpr_matrix(matrix: str) -> Tensor:
    """The R'G'B' -> (E'Y, E'Pb, E'Pr) matrix of a Kr/Kb definition (float64)."""
    kr, kb = _KR_KB[matrix]
    kg = 1.0 - kr - kb
    return torch.tensor(
        [
            [kr, kg, kb],
            [-kr / (2 * (1 - kb)), -kg / (2 * (1 - kb)), 0.5],
            [0.5, -kg / (2 * (1 - kr)), -kb / (2 * (1 - kr))],
        ],
        dtype=torch.float64,
    )


def rgb_to_ycbcr(rgb: Tensor, fmt: YCbCrFormat) -> Tensor:
    """R'G'B' in [0, 1] to Y'CbCr code values (float, unrounded; see :func:`quantize`)."""
    check_channels(rgb)
    ys, yo, cs, co = fmt.scale_offset()

    def op(v: Tensor) -> Tensor:
        ypp = apply_matrix(rgb_to_ypbpr_matrix(fmt.matrix), v)
        scale = torch.tensor((ys, cs, cs), device=v.device, dtype=v.dtype).view(3, 1, 1)
        offset = torch.tensor((yo, co, co), device=v.device, dtype=v.dtype).view(3, 1, 1)
        return ypp * scale + offset

    return float_op(op, rgb)


def ycbcr_to_rgb(ycc: Tensor, fmt: YCbCrFormat, clip: bool = False) -> Tensor:
    """Y'CbCr code values (integer or float tensor) to R'G'B' (nominal [0, 1]; clipped if ``clip``)."""
    check_channels(ycc)
    ys, yo, cs, co = fmt.scale_offset()
    x = ycc if ycc.is_floating_point() else ycc.to(torch.float32)

    def op(v: Tensor) -> Tensor:
        scale = torch.tensor((ys, cs, cs), device=v.device, dtype=v.dtype).view(3, 1, 1)
        offset = torch.tensor((yo, co, co), device=v.device, dtype=v.dtype).view(3, 1, 1)
        inverse = torch.linalg.inv(rgb_to_ypbpr_matrix(fmt.matrix))
        rgb = apply_matrix(inverse, (v - offset) / scale)
        return rgb.clamp(0.0, 1.0) if clip else rgb

    return float_op(op, x)


def quantize(x: Tensor, bits: int) -> Tensor:
    """Round code values to integers in ``[0, 2^bits - 1]`` (returned as int32)."""
    return x.round().clamp(0, (1 << bits) - 1).to(torch.int32)
