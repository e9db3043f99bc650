"""A fused CPU kernel (numba) for the join every host ends with: L* + ab -> in-gamut R'G'B' -> Cb, Cr.

It computes, per pixel and in one pass, what :func:`chromaflow.core.colorizer.join_in_gamut` followed by
:func:`chromaflow.core.colour.rgb_to_ycbcr` compute with whole-frame tensor operations: CIE L*a*b* (D65) -> XYZ ->
linear sRGB -> sRGB-encoded R'G'B'; where a channel leaves [0, 1] (by more than the tolerance), the chroma is scaled
down by bisection (the same number of halvings) keeping L* and hue; then the chroma rows of the Y'CbCr matrix, scaled
and offset to code values (unrounded). On the CPU the tensor version makes some twenty full-frame temporaries; this
one makes none, and only bisects the pixels that need it.

The sRGB encoding is monotonic, so the gamut test runs on linear values against the encoded bounds carried back to
linear light: the bisection needs no power function, and each pixel pays for the three encodings of its final colour
only (``pow`` had been the largest single item of a CPU colorize's profile).

Maths in float64 per pixel, but for the final encoding's power, taken in float32 (the results are float32; glibc's
double ``pow`` costs several times more); results agree with the tensor version to float32 rounding (tested).
"""

import numba
import numpy as np
from numpy.typing import NDArray

_LIN_THRESHOLD = 0.0031308


@numba.njit(cache=True, inline="always")
def _channel(lin: float) -> float:
    if lin <= _LIN_THRESHOLD:
        return lin * 12.92
    return 1.055 * float(np.float32(lin) ** np.float32(1.0 / 2.4)) - 0.055


@numba.njit(cache=True, inline="always")
def _f_inverse(f: float, epsilon: float, kappa: float) -> float:
    cube = f * f * f
    return cube if cube > epsilon else (116.0 * f - 16.0) / kappa


def linear_bounds(tolerance: float) -> tuple[float, float]:
    """The linear-light values whose sRGB encodings are ``-tolerance`` and ``1 + tolerance``."""
    return -tolerance / 12.92, ((1.0 + tolerance + 0.055) / 1.055) ** 2.4


@numba.njit(cache=True)
def _linear_rgb(
    l_star: float,
    a: float,
    b: float,
    to_rgb: NDArray[np.float64],
    white: NDArray[np.float64],
    consts: NDArray[np.float64],
) -> tuple[float, float, float]:
    epsilon, kappa = consts[0], consts[1]
    fy = (l_star + 16.0) / 116.0
    x = _f_inverse(fy + a / 500.0, epsilon, kappa) * white[0]
    y = (fy * fy * fy if l_star > kappa * epsilon else l_star / kappa) * white[1]
    z = _f_inverse(fy - b / 200.0, epsilon, kappa) * white[2]
    r = to_rgb[0, 0] * x + to_rgb[0, 1] * y + to_rgb[0, 2] * z
    g = to_rgb[1, 0] * x + to_rgb[1, 1] * y + to_rgb[1, 2] * z
    bl = to_rgb[2, 0] * x + to_rgb[2, 1] * y + to_rgb[2, 2] * z
    return r, g, bl


@numba.njit(cache=True, inline="always")
def _inside(r: float, g: float, b: float, low: float, high: float) -> bool:
    return low <= r <= high and low <= g <= high and low <= b <= high


@numba.njit(cache=True, parallel=True)
def _join_kernel(
    l_star: NDArray[np.float32],
    ab: NDArray[np.float32],
    to_rgb: NDArray[np.float64],
    white: NDArray[np.float64],
    consts: NDArray[np.float64],
    chroma_rows: NDArray[np.float64],
    scale_offset: NDArray[np.float64],
    low: float,
    high: float,
    steps: int,
    out: NDArray[np.float32],
) -> None:
    n, h, w = l_star.shape
    for row in numba.prange(n * h):
        i, yy = row // h, row % h
        for xx in range(w):
            lv = float(l_star[i, yy, xx])
            a = float(ab[i, 0, yy, xx])
            b = float(ab[i, 1, yy, xx])
            r, g, bl = _linear_rgb(lv, a, b, to_rgb, white, consts)
            if not _inside(r, g, bl, low, high):
                lo, hi = 0.0, 1.0
                for _ in range(steps):
                    mid = (lo + hi) / 2.0
                    tr, tg, tb = _linear_rgb(lv, a * mid, b * mid, to_rgb, white, consts)
                    if _inside(tr, tg, tb, low, high):
                        lo = mid
                    else:
                        hi = mid
                r, g, bl = _linear_rgb(lv, a * lo, b * lo, to_rgb, white, consts)
            r = min(max(_channel(r), 0.0), 1.0)
            g = min(max(_channel(g), 0.0), 1.0)
            bl = min(max(_channel(bl), 0.0), 1.0)
            for c in range(2):
                e = chroma_rows[c, 0] * r + chroma_rows[c, 1] * g + chroma_rows[c, 2] * bl
                out[i, c, yy, xx] = e * scale_offset[0] + scale_offset[1]


def join_to_chroma(
    l_star: NDArray[np.float32],
    ab: NDArray[np.float32],
    to_rgb: NDArray[np.float64],
    white: NDArray[np.float64],
    lab_constants: tuple[float, float],
    chroma_rows: NDArray[np.float64],
    chroma_scale_offset: tuple[float, float],
    tolerance: float,
    steps: int,
) -> NDArray[np.float32]:
    """Unrounded Cb, Cr code values ``(N, 2, H, W)`` for L* ``(N, H, W)`` and ab ``(N, 2, H, W)`` (float32).

    ``to_rgb``: the XYZ -> linear sRGB matrix; ``white``: the D65 white; ``lab_constants``: CIE epsilon and kappa;
    ``chroma_rows``: the R'G'B' -> (Pb, Pr) rows of the Y'CbCr matrix; ``chroma_scale_offset``: code-value scale
    and offset; ``tolerance`` and ``steps``: the gamut test's slack and the number of bisection halvings.
    """
    out = np.empty(ab.shape, dtype=np.float32)
    low, high = linear_bounds(float(tolerance))
    _join_kernel(
        np.ascontiguousarray(l_star, dtype=np.float32),
        np.ascontiguousarray(ab, dtype=np.float32),
        np.ascontiguousarray(to_rgb, dtype=np.float64),
        np.ascontiguousarray(white, dtype=np.float64),
        np.array(lab_constants, dtype=np.float64),
        np.ascontiguousarray(chroma_rows, dtype=np.float64),
        np.array(chroma_scale_offset, dtype=np.float64),
        low,
        high,
        int(steps),
        out,
    )
    return out
