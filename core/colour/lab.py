"""sRGB, linear RGB, CIE XYZ and CIE L*a*b* (D65) in torch: the colour space the colour nets predict in.

Constants: the sRGB transfer function and primaries of IEC 61966-2-1. The RGB->XYZ matrix is the 6-digit form used
by OpenCV and scikit-image; the D65 reference white is that matrix's row sums, so neutral greys get a* = b* = 0
exactly. CIE L*a*b* follows CIE 15:2004, with the exact constants epsilon = 216/24389 and kappa = 24389/27.
"""

import torch
from torch import Tensor

from chromaflow.core.colour.tensor_ops import apply_matrix, check_channels, float_op

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


def srgb_to_linear(x: Tensor) -> Tensor:
    """sRGB-encoded values (nominal range [0, 1]) to linear light."""

    def op(v: Tensor) -> Tensor:
        return torch.where(v <= 0.04045, v / 12.92, ((v.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4)

    return float_op(op, x)


def linear_to_srgb(x: Tensor) -> Tensor:
    """Linear light to sRGB-encoded values."""

    def op(v: Tensor) -> Tensor:
        return torch.where(v <= 0.0031308, v * 12.92, 1.055 * v.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)

    return float_op(op, x)


def linear_rgb_to_xyz(rgb: Tensor) -> Tensor:
    """Linear sRGB (BT.709 primaries) to CIE XYZ, D65."""
    check_channels(rgb)
    return float_op(lambda v: apply_matrix(_RGB_TO_XYZ, v), rgb)


def xyz_to_linear_rgb(xyz: Tensor) -> Tensor:
    """CIE XYZ, D65, to linear sRGB (unclipped)."""
    check_channels(xyz)
    return float_op(lambda v: apply_matrix(XYZ_TO_LINEAR_RGB, v), xyz)


def xyz_to_lab(xyz: Tensor) -> Tensor:
    """CIE XYZ to CIE L*a*b* relative to the D65 white (L in [0, 100])."""
    check_channels(xyz)

    def op(v: Tensor) -> Tensor:
        white = torch.tensor(D65_WHITE, device=v.device, dtype=v.dtype).view(3, 1, 1)
        t = v / white
        f = torch.where(t > LAB_EPSILON, t.clamp(min=LAB_EPSILON) ** (1 / 3), (LAB_KAPPA * t + 16) / 116)
        fx, fy, fz = f.unbind(dim=-3)
        return torch.stack((116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)), dim=-3)

    return float_op(op, xyz)


def lab_to_xyz(lab: Tensor) -> Tensor:
    """CIE L*a*b* (D65) to CIE XYZ."""
    check_channels(lab)

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

    return float_op(op, lab)


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
