"""Colour science in torch: sRGB, linear RGB, CIE XYZ, CIE L*a*b* (D65) and Y'CbCr.

All functions take tensors with the colour channels at dimension -3 (``(3, H, W)`` or ``(N, 3, H, W)``), on any
device. float16/bfloat16 inputs are computed in float32 and returned in their own dtype.

Constants:
- sRGB transfer function and primaries: IEC 61966-2-1. The RGB->XYZ matrix is the 6-digit form used by OpenCV and
  scikit-image; the D65 reference white is that matrix's row sums, so neutral greys get a* = b* = 0 exactly.
- CIE L*a*b*: CIE 15:2004, with the exact constants epsilon = 216/24389 and kappa = 24389/27.
- Y'CbCr: Kr/Kb of ITU-R BT.601, BT.709 and BT.2020 (non-constant luminance); integer coding of ITU-T H.273
  (limited range: 219/224 steps scaled by 2^(bits-8); full range: (2^bits - 1) steps, chroma offset 2^(bits-1)).
  Float samples follow VapourSynth: Y in [0, 1], Cb/Cr in [-0.5, 0.5].
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import torch
from torch import Tensor

from chromaflow.core.errors import InputError, UsageError

_RGB_TO_XYZ = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=torch.float64,
)
XYZ_TO_LINEAR_RGB = torch.linalg.inv(_RGB_TO_XYZ)
D65_WHITE = tuple(float(v) for v in _RGB_TO_XYZ.sum(dim=1))
LAB_EPSILON = 216.0 / 24389.0
LAB_KAPPA = 24389.0 / 27.0


def _float_op(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Run ``fn`` in float32 (or float64) and return the input's float dtype."""
    if not x.is_floating_point():
        raise InputError(f"expected a floating-point tensor, got {x.dtype}; convert samples to float first")
    if x.dtype in (torch.float16, torch.bfloat16):
        return fn(x.float()).to(x.dtype)
    return fn(x)


def _check_channels(x: Tensor) -> None:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise InputError(
            f"expected 3 colour channels at dimension -3, got a tensor of shape {tuple(x.shape)}"
        )


def _apply_matrix(m: Tensor, x: Tensor) -> Tensor:
    """``m @ x`` over the channel dimension -3 (a flat matmul: several times faster than einsum on the CPU)."""
    shape = x.shape
    flat = x.reshape(*shape[:-3], 3, shape[-2] * shape[-1])
    return (m.to(device=x.device, dtype=x.dtype) @ flat).reshape(shape)


def srgb_to_linear(x: Tensor) -> Tensor:
    """sRGB-encoded values (nominal range [0, 1]) to linear light."""

    def op(v: Tensor) -> Tensor:
        return torch.where(v <= 0.04045, v / 12.92, ((v.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)

    return _float_op(op, x)


def linear_to_srgb(x: Tensor) -> Tensor:
    """Linear light to sRGB-encoded values."""

    def op(v: Tensor) -> Tensor:
        return torch.where(v <= 0.0031308, v * 12.92, 1.055 * v.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)

    return _float_op(op, x)


def linear_rgb_to_xyz(rgb: Tensor) -> Tensor:
    """Linear sRGB (BT.709 primaries) to CIE XYZ, D65."""
    _check_channels(rgb)
    return _float_op(lambda v: _apply_matrix(_RGB_TO_XYZ, v), rgb)


def xyz_to_linear_rgb(xyz: Tensor) -> Tensor:
    """CIE XYZ, D65, to linear sRGB (unclipped)."""
    _check_channels(xyz)
    return _float_op(lambda v: _apply_matrix(XYZ_TO_LINEAR_RGB, v), xyz)


def xyz_to_lab(xyz: Tensor) -> Tensor:
    """CIE XYZ to CIE L*a*b* relative to the D65 white (L in [0, 100])."""
    _check_channels(xyz)

    def op(v: Tensor) -> Tensor:
        white = torch.tensor(D65_WHITE, device=v.device, dtype=v.dtype).view(3, 1, 1)
        t = v / white
        f = torch.where(t > LAB_EPSILON, t.clamp(min=LAB_EPSILON) ** (1 / 3), (LAB_KAPPA * t + 16) / 116)
        fx, fy, fz = f.unbind(dim=-3)
        return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=-3)

    return _float_op(op, xyz)


def lab_to_xyz(lab: Tensor) -> Tensor:
    """CIE L*a*b* (D65) to CIE XYZ."""
    _check_channels(lab)

    def op(v: Tensor) -> Tensor:
        L, a, b = v.unbind(dim=-3)
        fy = (L + 16) / 116
        f = torch.stack((fy + a / 500, fy, fy - b / 200), dim=-3)
        cube = f**3
        t = torch.where(cube > LAB_EPSILON, cube, (116 * f - 16) / LAB_KAPPA)
        # L below kappa * epsilon (= 8) is on the linear segment for Y regardless of f.
        y_lin = (L / LAB_KAPPA).unsqueeze(-3)
        t_y = torch.where(L.unsqueeze(-3) > LAB_KAPPA * LAB_EPSILON, cube[..., 1:2, :, :], y_lin)
        t = torch.cat((t[..., 0:1, :, :], t_y, t[..., 2:3, :, :]), dim=-3)
        white = torch.tensor(D65_WHITE, device=v.device, dtype=v.dtype).view(3, 1, 1)
        return t * white

    return _float_op(op, lab)


def rgb_to_lab(rgb: Tensor) -> Tensor:
    """sRGB-encoded R'G'B' in [0, 1] to CIE L*a*b* (D65)."""
    return xyz_to_lab(linear_rgb_to_xyz(srgb_to_linear(rgb)))


def lab_to_rgb(lab: Tensor, clip: bool = True) -> Tensor:
    """CIE L*a*b* (D65) to sRGB-encoded R'G'B'; clipped to [0, 1] unless ``clip`` is false."""
    rgb = linear_to_srgb(xyz_to_linear_rgb(lab_to_xyz(lab)))
    return rgb.clamp(0.0, 1.0) if clip else rgb


def lightness(rgb: Tensor) -> Tensor:
    """L* of sRGB-encoded R'G'B', shape ``(..., 1, H, W)``."""
    return rgb_to_lab(rgb)[..., 0:1, :, :]


def gray_to_rgb(l_star: Tensor) -> Tensor:
    """The neutral sRGB image (a* = b* = 0) with lightness ``l_star`` (shape ``(..., 1, H, W)``)."""
    ab = torch.zeros_like(l_star).expand(*l_star.shape[:-3], 2, *l_star.shape[-2:])
    return lab_to_rgb(torch.cat((l_star, ab), dim=-3))


# ---------------------------------------------------------------------------------------------- Y'CbCr

Matrix = Literal["601", "709", "2020"]
_KR_KB: dict[str, tuple[float, float]] = {
    "601": (0.299, 0.114),
    "709": (0.2126, 0.0722),
    "2020": (0.2627, 0.0593),
}


@dataclass(frozen=True)
class YCbCrFormat:
    """How Y'CbCr samples are coded: matrix, range and bit depth (``bits=None`` for float samples)."""

    matrix: Matrix = "709"
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
    _check_channels(rgb)
    ys, yo, cs, co = fmt.scale_offset()

    def op(v: Tensor) -> Tensor:
        ypp = _apply_matrix(rgb_to_ypbpr_matrix(fmt.matrix), v)
        scale = torch.tensor((ys, cs, cs), device=v.device, dtype=v.dtype).view(3, 1, 1)
        offset = torch.tensor((yo, co, co), device=v.device, dtype=v.dtype).view(3, 1, 1)
        return ypp * scale + offset

    return _float_op(op, rgb)


def ycbcr_to_rgb(ycc: Tensor, fmt: YCbCrFormat, clip: bool = False) -> Tensor:
    """Y'CbCr code values (integer or float tensor) to R'G'B' (nominal [0, 1]; clipped if ``clip``)."""
    _check_channels(ycc)
    ys, yo, cs, co = fmt.scale_offset()
    x = ycc if ycc.is_floating_point() else ycc.to(torch.float32)

    def op(v: Tensor) -> Tensor:
        scale = torch.tensor((ys, cs, cs), device=v.device, dtype=v.dtype).view(3, 1, 1)
        offset = torch.tensor((yo, co, co), device=v.device, dtype=v.dtype).view(3, 1, 1)
        inverse = torch.linalg.inv(rgb_to_ypbpr_matrix(fmt.matrix))
        rgb = _apply_matrix(inverse, (v - offset) / scale)
        return rgb.clamp(0.0, 1.0) if clip else rgb

    return _float_op(op, x)


def quantize(x: Tensor, bits: int) -> Tensor:
    """Round code values to integers in ``[0, 2^bits - 1]`` (returned as int32)."""
    return x.round().clamp(0, (1 << bits) - 1).to(torch.int32)


# -------------------------------------------------------------------------------- chroma subsampling

# Chroma sample positions, as ITU-T H.273 chroma_sample_loc_type names them: (horizontal, vertical) alignment
# of the first chroma sample relative to the luma grid. "left" is the MPEG-2/H.264 default (type 0).
Siting = Literal["left", "center", "topleft", "top", "bottomleft", "bottom"]
_SITING: dict[str, tuple[str, str]] = {
    "left": ("start", "middle"),
    "center": ("middle", "middle"),
    "topleft": ("start", "start"),
    "top": ("middle", "start"),
    "bottomleft": ("start", "end"),
    "bottom": ("middle", "end"),
}


def _offset(alignment: str, factor: int) -> float:
    """Luma coordinate of chroma sample 0 for a subsampling factor."""
    return {"start": 0.0, "middle": (factor - 1) / 2.0, "end": float(factor - 1)}[alignment]


@lru_cache(maxsize=64)
def _resample_matrix(n_out: int, n_in: int, factor: int, offset: float, up: bool) -> Tensor:
    """Dense 1-D resampling matrix (float64, CPU): linear interpolation up, tent filter down."""
    if up:
        u = ((torch.arange(n_out, dtype=torch.float64) - offset) / factor).clamp(0, n_in - 1)
        i0 = u.floor().long()
        i1 = (i0 + 1).clamp(max=n_in - 1)
        w1 = u - i0
        m = torch.zeros(n_out, n_in, dtype=torch.float64)
        rows = torch.arange(n_out)
        m.index_put_((rows, i0), 1 - w1, accumulate=True)
        m.index_put_((rows, i1), w1, accumulate=True)
        return m
    centres = factor * torch.arange(n_out, dtype=torch.float64) + offset
    x = torch.arange(n_in, dtype=torch.float64)
    w = (1 - (x[None, :] - centres[:, None]).abs() / factor).clamp(min=0)
    return w / w.sum(dim=1, keepdim=True)


def _resample(
    plane: Tensor, shape: tuple[int, int], factors: tuple[int, int], siting: str, up: bool
) -> Tensor:
    if siting not in _SITING:
        raise UsageError(f"unknown chroma siting {siting!r}: use one of {', '.join(_SITING)}")
    fh, fw = factors
    h_align, v_align = _SITING[siting]
    h_out, w_out = shape
    h_in, w_in = plane.shape[-2:]

    def op(v: Tensor) -> Tensor:
        mh = _resample_matrix(h_out, h_in, fh, _offset(v_align, fh), up).to(v.device, v.dtype)
        mw = _resample_matrix(w_out, w_in, fw, _offset(h_align, fw), up).to(v.device, v.dtype)
        return mh @ v @ mw.T

    return _float_op(op, plane)


def upsample_chroma(
    chroma: Tensor, luma_shape: tuple[int, int], factors: tuple[int, int] = (2, 2), siting: Siting = "left"
) -> Tensor:
    """Bring subsampled chroma planes ``(..., h, w)`` to ``luma_shape`` by linear interpolation at their sites.

    ``factors`` is (vertical, horizontal): (2, 2) for 4:2:0, (1, 2) for 4:2:2, (1, 1) for 4:4:4.
    """
    expected = (-(-luma_shape[0] // factors[0]), -(-luma_shape[1] // factors[1]))
    if tuple(chroma.shape[-2:]) != expected:
        raise InputError(
            f"chroma planes are {tuple(chroma.shape[-2:])} but luma {luma_shape} with factors {factors} "
            f"needs {expected}"
        )
    return _resample(chroma, luma_shape, factors, siting, up=True)


def downsample_chroma(chroma: Tensor, factors: tuple[int, int] = (2, 2), siting: Siting = "left") -> Tensor:
    """Subsample full-resolution chroma planes ``(..., H, W)`` with a tent filter centred on each chroma site."""
    h, w = chroma.shape[-2:]
    shape = (-(-h // factors[0]), -(-w // factors[1]))
    return _resample(chroma, shape, factors, siting, up=False)
