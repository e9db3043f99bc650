"""Y'CbCr in and out of the colorizer, the steps every host shares: a luma plane read as CIE L*, and predicted
L* + ab joined in gamut and written as chroma code values.

The luma plane itself is never rewritten: colorization never touches brightness, so the hosts pair their own Y'
plane with the chroma planes made here. Where the join falls outside sRGB, its chroma is reduced (hue and L* kept)
instead of clipping the RGB channels.
"""

from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

from chromaflow.core.colour.lab import (
    D65_WHITE,
    LAB_EPSILON,
    LAB_KAPPA,
    XYZ_TO_LINEAR_RGB,
    lab_to_rgb,
    lightness,
    rgb_to_lab,
)
from chromaflow.core.colour.subsampling import Siting, downsample_chroma, upsample_chroma
from chromaflow.core.colour.ycbcr import (
    YCbCrFormat,
    quantize,
    rgb_to_ycbcr,
    rgb_to_ypbpr_matrix,
    ycbcr_to_rgb,
)
from chromaflow.core.errors import InputError
from chromaflow.core.gamut_join_cpu import join_to_chroma
from chromaflow.core.gamut_join_gpu import fused_chroma

GAMUT_TOLERANCE = 1e-5
GAMUT_STEPS = 14


def join_in_gamut(l: Tensor, ab: Tensor) -> tuple[Tensor, Tensor]:
    """sRGB for L* ``l`` ``(N, 1, H, W)`` and ``ab`` ``(N, 2, H, W)``, with out-of-gamut chroma scaled down.

    Returns ``(rgb, ab_used)``; each pixel keeps its L* and hue, its chroma is the largest fraction of the
    requested one (to 1/2^14) that sRGB can show.
    """
    rgb = lab_to_rgb(torch.cat((l, ab), dim=1), clip=False)
    outside = ((rgb < -GAMUT_TOLERANCE) | (rgb > 1 + GAMUT_TOLERANCE)).any(dim=1)  # (N, H, W)
    if not bool(outside.any()):
        return rgb.clamp(0.0, 1.0), ab
    idx = outside.nonzero(as_tuple=True)
    l_out = l[:, 0][idx]  # (K,)
    ab_out = torch.stack((ab[:, 0][idx], ab[:, 1][idx]))  # (2, K)
    lo = torch.zeros_like(l_out)
    hi = torch.ones_like(l_out)
    for _ in range(GAMUT_STEPS):
        mid = (lo + hi) / 2
        trial = lab_to_rgb(torch.cat((l_out[None], ab_out * mid), dim=0)[:, None, :], clip=False)[:, 0, :]
        inside = ((trial >= -GAMUT_TOLERANCE) & (trial <= 1 + GAMUT_TOLERANCE)).all(dim=0)
        lo = torch.where(inside, mid, lo)
        hi = torch.where(inside, hi, mid)
    fitted = ab_out * lo
    ab = ab.clone()
    ab[:, 0][idx] = fitted[0]
    ab[:, 1][idx] = fitted[1]
    rgb = rgb.clone()
    fixed = lab_to_rgb(torch.cat((l_out[None], fitted), dim=0)[:, None, :], clip=False)[:, 0, :]
    for c in range(3):
        rgb[:, c][idx] = fixed[c]
    return rgb.clamp(0.0, 1.0), ab


@lru_cache(maxsize=16)
def _lightness_table(fmt: YCbCrFormat) -> Tensor:
    """L* of the gray picture R' = G' = B' = E'Y for every integer Y' code value of ``fmt`` (float32, CPU)."""
    ys, yo, _, _ = fmt.scale_offset()
    codes = torch.arange(fmt.peak + 1, dtype=torch.float64)
    gray = ((codes - yo) / ys).clamp(0.0, 1.0).view(1, 1, -1).expand(3, 1, -1)
    return lightness(gray).flatten().to(torch.float32)


def ycbcr_lightness(y: Tensor | np.ndarray, fmt: YCbCrFormat) -> Tensor:
    """CIE L* (float32, same shape) of Y' code values: how every host reads a luma plane.

    L* is that of the gray picture R' = G' = B' = E'Y. Integer planes go through a table of ``fmt``'s code values
    (exact and fast); float planes (float formats, or float code values) are converted directly. The result is on
    the input's device (numpy input: on the CPU).
    """
    integer = not (
        np.issubdtype(y.dtype, np.floating) if isinstance(y, np.ndarray) else y.is_floating_point()
    )
    if integer and fmt.bits is None:
        raise InputError("a float Y'CbCr format needs float Y' samples in [0, 1]")
    if isinstance(y, np.ndarray):
        if integer:
            return torch.from_numpy(_lightness_table(fmt).numpy()[np.clip(y, 0, fmt.peak)])
        t = torch.from_numpy(y.astype(np.float32))  # a copy: frames handed in may be read-only
    else:
        t = y
    if integer:
        return _lightness_table(fmt).to(t.device)[t.to(torch.int64).clamp(0, fmt.peak)]
    ys, yo, _, _ = fmt.scale_offset()
    gray = ((t.to(torch.float32) - yo) / ys).clamp(0.0, 1.0)
    return lightness(gray.unsqueeze(-3).expand(*gray.shape[:-2], 3, *gray.shape[-2:])).squeeze(-3)


def ycbcr_chroma(
    l: Tensor, ab: Tensor, fmt: YCbCrFormat, factors: tuple[int, int] = (1, 1), siting: Siting = "left"
) -> Tensor:
    """Chroma code values ``(N, 2, h, w)`` of ``fmt`` for full-resolution L* ``(N, 1, H, W)`` and ab ``(N, 2, H, W)``.

    The one place where colour becomes Y'CbCr for every host: L* and ab are joined in gamut (:func:`join_in_gamut`:
    L* and hue kept, chroma reduced where sRGB cannot show it), converted with ``fmt``'s matrix and range,
    subsampled by ``factors`` (vertical, horizontal) at ``siting``, and, for integer formats, rounded to int32 code
    values; float formats give float32 in [-0.5, 0.5]. The caller keeps its own Y' plane. The join and the
    conversion run fused: a numba kernel on the CPU (:mod:`chromaflow.core.gamut_join_cpu`), a compiled pointwise
    kernel on CUDA (:mod:`chromaflow.core.gamut_join_gpu`; the eager tensor join where compiling fails).
    """
    l, ab = l.to(torch.float32), ab.to(device=l.device, dtype=torch.float32)
    _, _, scale, offset = fmt.scale_offset()
    if l.device.type == "cpu":
        chroma = torch.from_numpy(_cpu_chroma(l[:, 0].numpy(), ab.numpy(), fmt))
    else:
        fused = fused_chroma(l, ab, fmt.matrix, scale, offset, GAMUT_TOLERANCE, GAMUT_STEPS)
        chroma = eager_join_chroma(l, ab, fmt) if fused is None else fused
    if tuple(factors) != (1, 1):
        chroma = downsample_chroma(chroma, factors, siting)
    return chroma.to(torch.float32) if fmt.bits is None else quantize(chroma, fmt.bits)


def ycbcr_lab(
    y: np.ndarray,
    chroma: np.ndarray,
    fmt: YCbCrFormat,
    factors: tuple[int, int] = (1, 1),
    siting: Siting = "left",
) -> tuple[np.ndarray, np.ndarray]:
    """CIE L* ``(H, W)`` and ab ``(2, H, W)`` (float32) of a Y'CbCr picture: the inverse of :func:`ycbcr_chroma`.

    ``y``: the luma plane ``(H, W)``; ``chroma``: the Cb, Cr planes ``(2, h, w)``, subsampled by ``factors`` at
    ``siting`` (brought to full size by linear interpolation at their sites), as code values of ``fmt`` (or
    float, luma in [0, 1] and chroma in [-0.5, 0.5], for float formats). R'G'B' outside [0, 1] is clipped.
    """
    y_t = torch.from_numpy(np.asarray(y, dtype=np.float32))
    c_t = torch.from_numpy(np.asarray(chroma, dtype=np.float32))
    if tuple(factors) != (1, 1):
        c_t = upsample_chroma(c_t, (int(y_t.shape[0]), int(y_t.shape[1])), factors, siting)
    lab = rgb_to_lab(ycbcr_to_rgb(torch.cat((y_t[None], c_t)), fmt, clip=True))
    return lab[0].numpy(), np.ascontiguousarray(lab[1:].numpy())


def eager_join_chroma(l: Tensor, ab: Tensor, fmt: YCbCrFormat) -> Tensor:
    """Unsubsampled, unrounded Cb, Cr of the in-gamut join as whole-frame tensor operations: the form before the
    join was fused, and the fallback where compiling is not possible."""
    rgb, _ = join_in_gamut(l, ab)
    return rgb_to_ycbcr(rgb, fmt)[:, 1:3]


def _cpu_chroma(l_star: np.ndarray, ab: np.ndarray, fmt: YCbCrFormat) -> np.ndarray:
    _, _, scale, offset = fmt.scale_offset()
    return join_to_chroma(
        l_star,
        ab,
        XYZ_TO_LINEAR_RGB.numpy(),
        np.array(D65_WHITE),
        (LAB_EPSILON, LAB_KAPPA),
        rgb_to_ypbpr_matrix(fmt.matrix)[1:].numpy(),
        (scale, offset),
        GAMUT_TOLERANCE,
        GAMUT_STEPS,
    )
