"""The numba kernel of the smoothing filter: the weighted neighbour average on the CPU, rows in parallel."""

from collections.abc import Sequence
from typing import Any, Literal, overload

import numba
import numpy as np

from chromaflow.core.arrays import F32
from chromaflow.core.temporal.params import SmoothingParams

# ---------------------------------------------------------------------------------------------- kernels
# Shapes: centre luma (h, w), centre ab (2, h, w), neighbour luma (K, h, w), neighbour ab (K, 2, h, w),
# flows (K, h, w, 2) (the neighbour inputs either stacked or as sequences of K planes: the numba kernel takes them
# as tuples, so the smoother hands over its cached planes without copying them into stacks): fwd maps centre pixels into neighbour k, bwd maps neighbour k's pixels into the centre,
# weights (K,): the neighbours' global weights (0 = unused).


# The numba kernel works row by row (rows in parallel) and, for each neighbour, runs a few short passes over the
# row held in small per-thread buffers, so that every pass but the one that gathers the bilinear taps is a plain
# contiguous loop LLVM vectorises (AVX2/AVX-512). ``error_model="numpy"`` drops Python's zero-division checks,
# which would otherwise keep any loop with a division scalar. Arithmetic is float64 like the reference (float32
# weights would move outputs beyond the 1e-5 agreement the tests require).

_ROWS_PER_TASK = 8  # rows per parallel task: buffers are allocated once per task
_LOG2E = 1.4426950408889634
_LN2_HI = 6.93147180369123816490e-01  # ln 2 split in two (Cody and Waite) so n * _LN2_HI is exact
_LN2_LO = 1.90821492927058770002e-10
_EXP_MIN = -700.0  # exp(-700) ~ 1e-304: still a normal double after the 2^n scaling below
_NUMBA_OPTIONS: dict[str, Any] = {
    "cache": True,
    "error_model": "numpy",
    "fastmath": {
        "contract",
        "arcp",
        "nsz",
        "afn",
        "reassoc",
    },  # no nnan/ninf: NaN and inf keep IEEE semantics
}


@numba.njit(**_NUMBA_OPTIONS)
def _row_positions(
    fwd_row: F32, y: int, h: int, weight: float, idx: Any, tx: Any, ty: Any, ok: Any
) -> None:  # pragma: no cover - compiled
    """Sample positions of one row in a neighbour: flat index of the top-left tap, fractions, weight or 0."""
    w = fwd_row.shape[0]
    for x in range(w):
        sx = x + float(fwd_row[x, 0])
        sy = y + float(fwd_row[x, 1])
        inside = (sx >= 0.0) & (sx <= w - 1.0) & (sy >= 0.0) & (sy <= h - 1.0)
        # clamp so that even a NaN position reads inside the planes (its weight is 0 through ``inside``)
        sx = min(sx if sx >= 0.0 else 0.0, w - 1.0)
        sy = min(sy if sy >= 0.0 else 0.0, h - 1.0)
        x0 = min(np.floor(sx), w - 2.0)
        y0 = min(np.floor(sy), h - 2.0)
        tx[x] = sx - x0
        ty[x] = sy - y0
        idx[x] = np.uint64(y0 * w + x0)  # unsigned: numba then skips negative-index handling in the gathers
        ok[x] = weight if inside else 0.0


@numba.njit(**_NUMBA_OPTIONS)
def _row_gather(
    bwd_k: Any, l_k: Any, a_k: Any, b_k: Any, w: int, idx: Any, tx: Any, ty: Any, out: Any
) -> None:  # pragma: no cover - compiled
    """Bilinear samples of backward flow x/y, luma, a and b (flat planes; bwd interleaved) into out[0..4]."""
    uw = np.uint64(w)
    one = np.uint64(1)
    two = np.uint64(2)
    for x in range(idx.shape[0]):
        i = idx[x]
        fx = tx[x]
        fy = ty[x]
        w00 = (1.0 - fx) * (1.0 - fy)
        w01 = fx * (1.0 - fy)
        w10 = (1.0 - fx) * fy
        w11 = fx * fy
        i1 = i + one
        iw = i + uw
        iw1 = iw + one
        out[2, x] = w00 * l_k[i] + w01 * l_k[i1] + w10 * l_k[iw] + w11 * l_k[iw1]
        out[3, x] = w00 * a_k[i] + w01 * a_k[i1] + w10 * a_k[iw] + w11 * a_k[iw1]
        out[4, x] = w00 * b_k[i] + w01 * b_k[i1] + w10 * b_k[iw] + w11 * b_k[iw1]
        j, j1, jw, jw1 = two * i, two * i1, two * iw, two * iw1
        out[0, x] = w00 * bwd_k[j] + w01 * bwd_k[j1] + w10 * bwd_k[jw] + w11 * bwd_k[jw1]
        j, j1, jw, jw1 = j + one, j1 + one, jw + one, jw1 + one
        out[1, x] = w00 * bwd_k[j] + w01 * bwd_k[j1] + w10 * bwd_k[jw] + w11 * bwd_k[jw1]


@numba.njit(**_NUMBA_OPTIONS)
def _row_log_weight(
    fwd_row: F32, l_row: F32, s: Any, fs2: float, fb_alpha: float, inv_2ls2: float, arg: Any
) -> None:  # pragma: no cover - compiled
    """The exponent of the weight: -fb_error / (fb_sigma^2 + fb_alpha * |flows|^2) - dL^2 / (2 luma_sigma^2)."""
    for x in range(arg.shape[0]):
        fx = float(fwd_row[x, 0])
        fy = float(fwd_row[x, 1])
        bx = s[0, x]
        by = s[1, x]
        err = (fx + bx) * (fx + bx) + (fy + by) * (fy + by)
        mag = fx * fx + fy * fy + bx * bx + by * by
        d = float(l_row[x]) - s[2, x]
        arg[x] = -err / (fs2 + fb_alpha * mag) - d * d * inv_2ls2


@numba.njit(**_NUMBA_OPTIONS)
def _row_exp(arg: Any, scale: Any) -> None:  # pragma: no cover - compiled
    """``arg = exp(arg)`` in place for ``arg <= 0``, vectorisable (libm's exp is a scalar call).

    exp(v) = 2^n * exp(r) with n = round(v / ln 2) and |r| <= ln 2 / 2; exp(r) by its Taylor series to degree 11
    (truncation error < 1e-14 relative), 2^n by adding n to the result's exponent field. Below ``_EXP_MIN`` the
    value is exp(_EXP_MIN) ~ 1e-304 instead of a denormal or 0: the same weight for any practical purpose.
    """
    for x in range(arg.shape[0]):
        v = max(arg[x], _EXP_MIN)
        n = np.floor(v * _LOG2E + 0.5)
        r = (v - n * _LN2_HI) - n * _LN2_LO
        p = 1.0 / 39916800.0
        p = 1.0 / 3628800.0 + r * p
        p = 1.0 / 362880.0 + r * p
        p = 1.0 / 40320.0 + r * p
        p = 1.0 / 5040.0 + r * p
        p = 1.0 / 720.0 + r * p
        p = 1.0 / 120.0 + r * p
        p = 1.0 / 24.0 + r * p
        p = 1.0 / 6.0 + r * p
        p = 0.5 + r * p
        p = 1.0 + r * p
        arg[x] = 1.0 + r * p
        scale[x] = np.int64(n) << 52
    bits = arg.view(np.int64)
    for x in range(arg.shape[0]):
        bits[x] += scale[x]


@numba.njit(parallel=True, **_NUMBA_OPTIONS)
def _kernel_numba(
    l_c: F32,
    ab_c: F32,
    l_n: F32,
    ab_n: F32,
    fwd: F32,
    bwd: F32,
    weights: F32,
    luma_sigma: float,
    fb_sigma: float,
    fb_alpha: float,
    out: F32,
) -> None:  # pragma: no cover - compiled
    h, w = l_c.shape
    k_count = len(l_n)
    inv_2ls2 = 1.0 / (2.0 * luma_sigma * luma_sigma)
    fs2 = fb_sigma * fb_sigma
    tasks = (h + _ROWS_PER_TASK - 1) // _ROWS_PER_TASK
    for task in numba.prange(tasks):
        acc = np.empty((3, w))  # sum of w * a, sum of w * b, sum of w
        idx = np.empty(w, np.uint64)
        tx = np.empty(w)
        ty = np.empty(w)
        ok = np.empty(w)
        samples = np.empty((5, w))  # bwd x, bwd y, luma, a, b at the sample positions
        arg = np.empty(w)
        scale = np.empty(w, np.int64)
        for y in range(task * _ROWS_PER_TASK, min(h, (task + 1) * _ROWS_PER_TASK)):
            for x in range(w):
                acc[0, x] = ab_c[0, y, x]
                acc[1, x] = ab_c[1, y, x]
                acc[2, x] = 1.0
            for k in range(k_count):
                wk = float(weights[k])
                if wk <= 0.0:
                    continue
                fwd_k = fwd[k]
                ab_k = ab_n[k]
                _row_positions(fwd_k[y], y, h, wk, idx, tx, ty, ok)
                _row_gather(
                    bwd[k].ravel(),
                    l_n[k].ravel(),
                    ab_k[0].ravel(),
                    ab_k[1].ravel(),
                    w,
                    idx,
                    tx,
                    ty,
                    samples,
                )
                _row_log_weight(fwd_k[y], l_c[y], samples, fs2, fb_alpha, inv_2ls2, arg)
                _row_exp(arg, scale)
                for x in range(w):
                    wt = ok[x] * arg[x] if ok[x] > 0.0 else 0.0  # 0, not 0 * NaN, out of frame
                    acc[0, x] += wt * samples[3, x]
                    acc[1, x] += wt * samples[4, x]
                    acc[2, x] += wt
            for x in range(w):
                out[0, y, x] = acc[0, x] / acc[2, x]
                out[1, y, x] = acc[1, x] / acc[2, x]
                out[2, y, x] = acc[2, x]


Planes = F32 | Sequence[F32]  # K planes, stacked or one by one


@overload
def kernel_numba(
    l_c: F32,
    ab_c: F32,
    l_n: Planes,
    ab_n: Planes,
    fwd: Planes,
    bwd: Planes,
    weights: F32,
    params: SmoothingParams,
    *,
    return_weight: Literal[False] = False,
) -> F32: ...


@overload
def kernel_numba(
    l_c: F32,
    ab_c: F32,
    l_n: Planes,
    ab_n: Planes,
    fwd: Planes,
    bwd: Planes,
    weights: F32,
    params: SmoothingParams,
    *,
    return_weight: Literal[True],
) -> tuple[F32, F32]: ...


def kernel_numba(
    l_c: F32,
    ab_c: F32,
    l_n: Planes,
    ab_n: Planes,
    fwd: Planes,
    bwd: Planes,
    weights: F32,
    params: SmoothingParams,
    *,
    return_weight: bool = False,
) -> F32 | tuple[F32, F32]:
    """The numba kernel (see the shapes above): ``avg_n``, the weighted ``(2, h, w)`` ab before the low-pass, and
    with ``return_weight`` also ``1 + sum_m w_m`` ``(h, w)``, the total weight behind each pixel's average."""
    c = np.ascontiguousarray
    if len(l_n) == 0:
        avg = c(ab_c, dtype=np.float32).copy()
        return (avg, np.ones(avg.shape[1:], np.float32)) if return_weight else avg
    out = np.empty((3, *ab_c.shape[1:]), dtype=np.float32)

    def planes(stack: Planes) -> tuple[F32, ...]:
        return tuple(c(p, dtype=np.float32) for p in stack)

    _kernel_numba(
        c(l_c, dtype=np.float32),
        c(ab_c, dtype=np.float32),
        planes(l_n),
        planes(ab_n),
        planes(fwd),
        planes(bwd),
        c(weights, dtype=np.float32),
        float(params.luma_sigma),
        float(params.fb_sigma),
        float(params.fb_alpha),
        out,
    )
    return (out[:2], out[2]) if return_weight else out[:2]
