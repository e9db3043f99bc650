"""Temporal smoothing of chroma: a motion-compensated filter that removes colour flicker without smearing motion.

For a centre frame ``n`` and each neighbour ``m`` in ``n - r .. n + r`` of the same shot, the neighbour's ab is
warped onto frame ``n`` with dense flow (:mod:`chromaflow.core.flow`, computed at the ab planes' resolution, the
model's: cheap) and blended in with the weight

    w_m = strength * c_m(x) * exp(-(L_n(x) - L_m(x + f(x)))^2 / (2 * luma_sigma^2))

where ``c_m`` is the forward-backward consistency confidence (0 for occluded or out-of-frame pixels) and the second
factor the luma similarity of the matched pixels (both in :func:`kernel_reference`). The centre frame has weight 1:

    avg_n(x) = (ab_n(x) + sum_m w_m(x) * ab_m(x + f(x))) / (1 + sum_m w_m(x))
    out_n    = ab_n + G_s * (avg_n - ab_n)

The temporal correction ``avg_n - ab_n`` is low-passed by a Gaussian ``G_s`` (``s = correction_scale`` times the
longer side of the ab planes; 0 turns it off) before it is applied. Flicker of colourizers is low-frequency (a region
or the whole frame changes hue), so it passes; what the correction holds at high frequencies is mostly registration
error of the warped neighbours at moving edges and the blur of their bilinear resampling, which would otherwise
smear chroma detail. The centre frame's own chroma detail is therefore kept as it is. On DAVIS this cuts the
fidelity loss on clean frames several-fold at the same flicker reduction (``benchmarks/smoothing.py``).

Neighbours across a scene cut (:mod:`chromaflow.core.scenecut`) are not used, so no colour crosses a cut.

One core (:meth:`TemporalSmoother._smooth`) serves both access patterns, so they give identical frames:

- streaming (PyAV-style nodes): :meth:`TemporalSmoother.push` returns what is ready (a delay of ``radius`` frames),
  :meth:`TemporalSmoother.flush` the rest at the end;
- random access (VapourSynth-style): :meth:`TemporalSmoother.smooth_at` ``(n, loader)`` loads frames
  ``n - r .. n + r`` through ``loader`` and caches prepared frames, per-pair flows and cut flags, so neighbouring
  requests do not recompute them; safe to call from several threads.

Kernels: ``numba`` (CPU, ``parallel=True`` over blocks of rows; per row and neighbour a few vectorised passes
around one gather pass, with a vectorisable exp; 10-17x the numpy reference in CPU time at 854x480, see
``benchmarks/results/smoothing.json``), ``numpy`` (the vectorised reference of the same maths, for tests and the
speed benchmark) and ``torch`` (keeps ab on the tensor's device, e.g. CUDA; flow is
still computed by OpenCV on the CPU from the small luma planes).
"""

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import cv2
import numba
import numpy as np
import torch
from numpy.typing import NDArray

from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.flow import (
    DEFAULT_PRESET,
    FB_ALPHA,
    FB_SIGMA,
    FlowPreset,
    compute_flow,
    resize_flow,
    resize_luma,
    to_flow_luma,
    working_size,
)
from chromaflow.core.lru import LRUCache
from chromaflow.core.scenecut import LumaStats, SceneCutDetector

Backend = Literal["auto", "numba", "numpy", "torch"]
F32 = NDArray[np.float32]
ABFrame = Any  # numpy (2, h, w) float32 or torch.Tensor (2, h, w)
Loader = Callable[[int], "tuple[Any, Any] | None"]


@dataclass(frozen=True)
class SmoothingParams:
    """Parameters of the filter (see the module docstring for the formula)."""

    radius: int = 2  # neighbours on each side
    strength: float = 1.0  # 0 = off, 1 = a confident neighbour counts as much as the centre
    luma_sigma: float = 2.0  # L* units
    fb_sigma: float = FB_SIGMA  # pixels
    fb_alpha: float = FB_ALPHA
    temporal_sigma: float | None = None  # frames; None = uniform weights over the window
    correction_scale: float = (
        1.0 / 32.0
    )  # low-pass of the correction, as a fraction of the longer side; 0 = off

    def __post_init__(self) -> None:
        if not isinstance(self.radius, int) or self.radius < 0:
            raise UsageError(f"smoothing radius must be an integer >= 0, got {self.radius!r}")
        if not self.strength >= 0:
            raise UsageError(f"smoothing strength must be >= 0, got {self.strength}")
        if not (self.luma_sigma > 0 and self.fb_sigma > 0 and self.fb_alpha >= 0):
            raise UsageError("luma_sigma and fb_sigma must be > 0 and fb_alpha >= 0")
        if self.temporal_sigma is not None and not self.temporal_sigma > 0:
            raise UsageError(f"temporal_sigma must be > 0 or None, got {self.temporal_sigma}")
        if not self.correction_scale >= 0:
            raise UsageError(f"correction_scale must be >= 0, got {self.correction_scale}")

    def neighbour_weight(self, distance: int) -> float:
        """The global weight of a neighbour ``distance`` frames away (before confidence and luma similarity)."""
        if self.temporal_sigma is None:
            return float(self.strength)
        return float(self.strength * np.exp(-(distance * distance) / (2.0 * self.temporal_sigma**2)))

    def correction_kernel(self, shape: tuple[int, int]) -> F32 | None:
        """The 1-D Gaussian that low-passes the correction for ab planes of ``shape``, or None when off."""
        sigma = self.correction_scale * max(shape)
        if sigma < 0.25:
            return None
        radius = max(1, min(int(np.ceil(3.0 * sigma)), min(shape) - 1))
        return np.asarray(cv2.getGaussianKernel(2 * radius + 1, sigma), dtype=np.float32).ravel()


def lowpass_correction(ab_c: F32, avg: F32, kernel: F32 | None) -> F32:
    """``ab_c + G * (avg - ab_c)`` on numpy planes (mirror border, as OpenCV's default)."""
    if kernel is None:
        return avg
    corr = (avg - ab_c).astype(np.float32)
    out = np.empty_like(corr)
    for c in range(corr.shape[0]):
        out[c] = cv2.sepFilter2D(corr[c], -1, kernel, kernel, borderType=cv2.BORDER_REFLECT_101)
    return (ab_c + out).astype(np.float32)


def lowpass_correction_torch(ab_c: torch.Tensor, avg: torch.Tensor, kernel: F32 | None) -> torch.Tensor:
    """:func:`lowpass_correction` in torch on the tensors' device."""
    if kernel is None:
        return avg
    k = torch.from_numpy(kernel).to(device=avg.device, dtype=avg.dtype)
    r = (k.numel() - 1) // 2
    corr = (avg - ab_c).unsqueeze(1)  # (2, 1, h, w)
    corr = torch.nn.functional.pad(corr, (r, r, 0, 0), mode="reflect")
    corr = torch.nn.functional.conv2d(corr, k.view(1, 1, 1, -1))
    corr = torch.nn.functional.pad(corr, (0, 0, r, r), mode="reflect")
    corr = torch.nn.functional.conv2d(corr, k.view(1, 1, -1, 1))
    return ab_c + corr.squeeze(1)


# ---------------------------------------------------------------------------------------------- kernels
# Shapes: centre luma (h, w), centre ab (2, h, w), neighbour luma (K, h, w), neighbour ab (K, 2, h, w),
# flows (K, h, w, 2): fwd maps centre pixels into neighbour k, bwd maps neighbour k's pixels into the centre,
# weights (K,): the neighbours' global weights (0 = unused).


# The numba kernel works row by row (rows in parallel) and, for each neighbour, runs a few short passes over the
# row held in small per-thread buffers, so that every pass but the one that gathers the bilinear taps is a plain
# contiguous loop LLVM vectorises (AVX2/AVX-512). ``error_model="numpy"`` drops Python's zero-division checks,
# which would otherwise keep any loop with a division scalar. Arithmetic is float64 like the reference (float32
# weights would move outputs by ~1.5e-5, beyond the 1e-5 agreement the tests require).

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
    k_count = l_n.shape[0]
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
                _row_positions(fwd[k, y], y, h, wk, idx, tx, ty, ok)
                _row_gather(
                    bwd[k].ravel(),
                    l_n[k].ravel(),
                    ab_n[k, 0].ravel(),
                    ab_n[k, 1].ravel(),
                    w,
                    idx,
                    tx,
                    ty,
                    samples,
                )
                _row_log_weight(fwd[k, y], l_c[y], samples, fs2, fb_alpha, inv_2ls2, arg)
                _row_exp(arg, scale)
                for x in range(w):
                    wt = ok[x] * arg[x] if ok[x] > 0.0 else 0.0  # 0, not 0 * NaN, out of frame
                    acc[0, x] += wt * samples[3, x]
                    acc[1, x] += wt * samples[4, x]
                    acc[2, x] += wt
            for x in range(w):
                out[0, y, x] = acc[0, x] / acc[2, x]
                out[1, y, x] = acc[1, x] / acc[2, x]


def kernel_numba(
    l_c: F32,
    ab_c: F32,
    l_n: F32,
    ab_n: F32,
    fwd: F32,
    bwd: F32,
    weights: F32,
    params: SmoothingParams,
) -> F32:
    """The numba kernel (see the shapes above): ``avg_n``, the weighted ``(2, h, w)`` ab before the low-pass."""
    out = np.empty(ab_c.shape, dtype=np.float32)
    c = np.ascontiguousarray
    _kernel_numba(
        c(l_c, dtype=np.float32),
        c(ab_c, dtype=np.float32),
        c(l_n, dtype=np.float32),
        c(ab_n, dtype=np.float32),
        c(fwd, dtype=np.float32),
        c(bwd, dtype=np.float32),
        c(weights, dtype=np.float32),
        float(params.luma_sigma),
        float(params.fb_sigma),
        float(params.fb_alpha),
        out,
    )
    return out


def _bilinear_np(
    plane: NDArray[np.floating[Any]],
    y0: NDArray[np.intp],
    x0: NDArray[np.intp],
    ty: NDArray[Any],
    tx: NDArray[Any],
) -> NDArray[np.float64]:
    p = plane.astype(np.float64, copy=False)
    return (
        (1 - tx) * (1 - ty) * p[y0, x0]
        + tx * (1 - ty) * p[y0, x0 + 1]
        + (1 - tx) * ty * p[y0 + 1, x0]
        + tx * ty * p[y0 + 1, x0 + 1]
    )


def kernel_reference(
    l_c: F32,
    ab_c: F32,
    l_n: F32,
    ab_n: F32,
    fwd: F32,
    bwd: F32,
    weights: F32,
    params: SmoothingParams,
) -> F32:
    """Plain numpy implementation of the same maths as the numba kernel (float64 inside, float32 out)."""
    h, w = l_c.shape
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    acc = ab_c.astype(np.float64).copy()
    wsum = np.ones((h, w), dtype=np.float64)
    for k in range(l_n.shape[0]):
        if weights[k] <= 0:
            continue
        fx = fwd[k, ..., 0].astype(np.float64)
        fy = fwd[k, ..., 1].astype(np.float64)
        sx, sy = gx + fx, gy + fy
        inside = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
        sxc, syc = np.clip(sx, 0, w - 1), np.clip(sy, 0, h - 1)
        x0 = np.minimum(sxc.astype(np.intp), w - 2)
        y0 = np.minimum(syc.astype(np.intp), h - 2)
        tx, ty = sxc - x0, syc - y0
        bx = _bilinear_np(bwd[k, ..., 0], y0, x0, ty, tx)
        by = _bilinear_np(bwd[k, ..., 1], y0, x0, ty, tx)
        err = (fx + bx) ** 2 + (fy + by) ** 2
        mag = fx**2 + fy**2 + bx**2 + by**2
        conf = np.exp(-err / (params.fb_sigma**2 + params.fb_alpha * mag))
        d = l_c.astype(np.float64) - _bilinear_np(l_n[k], y0, x0, ty, tx)
        wt = float(weights[k]) * conf * np.exp(-d * d / (2.0 * params.luma_sigma**2))
        wt = np.where(inside, wt, 0.0)
        for c in range(2):
            acc[c] += wt * _bilinear_np(ab_n[k, c], y0, x0, ty, tx)
        wsum += wt
    return (acc / wsum).astype(np.float32)


def kernel_torch(
    l_c: torch.Tensor,
    ab_c: torch.Tensor,
    l_n: torch.Tensor,
    ab_n: torch.Tensor,
    fwd: torch.Tensor,
    bwd: torch.Tensor,
    weights: torch.Tensor,
    params: SmoothingParams,
) -> torch.Tensor:
    """The same maths in torch on the tensors' device (float32; bilinear sampling by gathering the 4 taps)."""
    k_count = l_n.shape[0]
    h, w = l_c.shape
    if k_count == 0:
        return ab_c.clone()
    dev = l_c.device
    # sample positions in float64, as the numba kernel, so in/out-of-frame and tap choices agree exactly
    f64 = torch.float64
    gy, gx = torch.meshgrid(
        torch.arange(h, device=dev, dtype=f64), torch.arange(w, device=dev, dtype=f64), indexing="ij"
    )
    sx = gx + fwd[..., 0].to(f64)
    sy = gy + fwd[..., 1].to(f64)
    inside = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
    sx = sx.clamp(0, w - 1)
    sy = sy.clamp(0, h - 1)
    x0 = sx.floor().clamp(max=w - 2)
    y0 = sy.floor().clamp(max=h - 2)
    tx = (sx - x0).to(l_c.dtype).unsqueeze(1)
    ty = (sy - y0).to(l_c.dtype).unsqueeze(1)
    planes = torch.cat((bwd.permute(0, 3, 1, 2), l_n.unsqueeze(1), ab_n), dim=1).flatten(2)  # (K, 5, h*w)
    base = (y0.long() * w + x0.long()).flatten(1).unsqueeze(1).expand(-1, planes.shape[1], -1)

    def tap(offset: int) -> torch.Tensor:
        return planes.gather(2, base + offset).view(k_count, -1, h, w)

    sampled = (
        (1 - tx) * (1 - ty) * tap(0) + tx * (1 - ty) * tap(1) + (1 - tx) * ty * tap(w) + tx * ty * tap(w + 1)
    )
    bx, by, lw = sampled[:, 0], sampled[:, 1], sampled[:, 2]
    fx, fy = fwd[..., 0], fwd[..., 1]
    err = (fx + bx) ** 2 + (fy + by) ** 2
    mag = fx**2 + fy**2 + bx**2 + by**2
    conf = torch.exp(-err / (params.fb_sigma**2 + params.fb_alpha * mag))
    d = l_c.unsqueeze(0) - lw
    wt = weights.view(-1, 1, 1) * conf * torch.exp(-d * d / (2.0 * params.luma_sigma**2))
    wt = torch.where(inside & (weights.view(-1, 1, 1) > 0), wt, torch.zeros_like(wt))
    acc = ab_c + (wt.unsqueeze(1) * sampled[:, 3:5]).sum(dim=0)
    return acc / (1.0 + wt.sum(dim=0)).unsqueeze(0)


# ---------------------------------------------------------------------------------------------- frames and caches


@dataclass(frozen=True)
class _Frame:
    luma: F32  # L* at the ab resolution
    luma_u8: NDArray[np.uint8]  # what flow and cut detection see
    flow_luma: NDArray[np.uint8]  # luma at the flow's working resolution
    stats: LumaStats
    ab: ABFrame  # numpy (2, h, w) float32, or a torch tensor on the smoother's device
    luma_dev: torch.Tensor | None  # luma on the device (torch backend)


class Smoothed(NamedTuple):
    """One output frame: its index in the sequence and its smoothed ab planes ``(2, h, w)``."""

    frame_index: int
    ab: ABFrame


def _index_at_least(low: int) -> Callable[[Hashable], bool]:
    def keep(key: Hashable) -> bool:
        return isinstance(key, int) and key >= low

    return keep


def _pair_at_least(low: int) -> Callable[[Hashable], bool]:
    def keep(key: Hashable) -> bool:
        return isinstance(key, tuple) and min(key) >= low

    return keep


class _State:
    """Per-sequence caches: prepared frames, flows keyed by (dst, src), cut flags keyed by frame index."""

    def __init__(self, frame_cap: int | None, flow_cap: int | None) -> None:
        self.frames = LRUCache(frame_cap)
        self.flows = LRUCache(flow_cap)
        self.cuts = LRUCache(None if frame_cap is None else 4 * frame_cap)

    def clear(self) -> None:
        self.frames.clear()
        self.flows.clear()
        self.cuts.clear()


# ---------------------------------------------------------------------------------------------- the smoother


class TemporalSmoother:
    """Motion-compensated temporal smoothing of ab planes; one instance per sequence (see the module docstring).

    Frames are given as ``(luma, ab)``: ``luma`` an ``(H, W)`` plane at any resolution (float L* in [0, 100] or
    uint8), ``ab`` the ``(2, h, w)`` a*b* planes at the model's resolution (numpy float32 or a torch tensor).
    The luma is resized to the ab planes' size. Outputs have the ab planes' shape: numpy for the ``numba`` and
    ``numpy`` backends, a tensor on ``device`` for ``torch``.

    ``backend="auto"`` picks ``torch`` when ``device`` is a CUDA device, else ``numba``. ``scene_cut`` sets the cut
    detector (default: :class:`SceneCutDetector()`); ``detect_cuts=False``
    disables cut detection. ``flow_max_side`` bounds the resolution flow is computed at (vectors are rescaled).
    ``cache_frames`` bounds how many prepared frames random access keeps (flows: ``2 * radius`` per frame).
    Typical use::

        smoother = TemporalSmoother(radius=2, strength=1.0)
        for luma, ab in frames:                       # streaming
            for out in smoother.push(luma, ab):
                write(out.frame_index, out.ab)
        for out in smoother.flush():
            write(out.frame_index, out.ab)

        ab_n = smoother.smooth_at(n, lambda k: frame_or_none(k))   # random access
    """

    def __init__(
        self,
        radius: int = 2,
        strength: float = 1.0,
        *,
        luma_sigma: float = SmoothingParams.luma_sigma,
        fb_sigma: float = FB_SIGMA,
        fb_alpha: float = FB_ALPHA,
        temporal_sigma: float | None = None,
        correction_scale: float = SmoothingParams.correction_scale,
        backend: Backend = "auto",
        device: str | torch.device | None = None,
        scene_cut: SceneCutDetector | None = None,
        detect_cuts: bool = True,
        flow_preset: FlowPreset = DEFAULT_PRESET,
        flow_max_side: int | None = 512,
        cache_frames: int | None = None,
    ) -> None:
        self.params = SmoothingParams(
            radius, strength, luma_sigma, fb_sigma, fb_alpha, temporal_sigma, correction_scale
        )
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if backend == "auto":
            backend = "torch" if self.device.type != "cpu" else "numba"
        if backend not in ("numba", "numpy", "torch"):
            raise UsageError(f"unknown smoothing backend {backend!r}; use auto, numba, numpy or torch")
        if backend != "torch" and self.device.type != "cpu":
            raise UsageError(
                f"the {backend} backend runs on the CPU; use backend='torch' for device {self.device}"
            )
        self.backend: str = backend
        self.scene_cut = (scene_cut or SceneCutDetector()) if detect_cuts else None
        self.flow_preset = flow_preset
        if flow_max_side is not None and flow_max_side < 8:
            raise UsageError(f"flow_max_side must be >= 8, got {flow_max_side}")
        self.flow_max_side = flow_max_side
        r = self.params.radius
        # random access keeps a few windows' worth: each frame needs 2r flows into it and 2r out of it,
        # and half of those are shared with the next frame
        frame_cap = cache_frames if cache_frames is not None else 4 * r + 8
        self._random = _State(frame_cap, 2 * r * frame_cap)
        self._stream = _State(None, None)
        self._next = 0  # index of the next pushed frame
        self._emitted = 0  # index of the next frame to emit
        self._shape: tuple[int, int] | None = None

    @property
    def radius(self) -> int:
        return self.params.radius

    # ------------------------------------------------------------------ preparation

    def _prepare(self, frame_l: Any, frame_ab: Any) -> _Frame:
        if isinstance(frame_ab, torch.Tensor):
            if frame_ab.dim() != 3 or frame_ab.shape[0] != 2:
                raise InputError(f"ab planes must have shape (2, h, w), got {tuple(frame_ab.shape)}")
            ab_t = frame_ab.detach().to(torch.float32)
            shape = (int(ab_t.shape[1]), int(ab_t.shape[2]))
        else:
            ab_np = np.asarray(frame_ab, dtype=np.float32)
            if ab_np.ndim != 3 or ab_np.shape[0] != 2:
                raise InputError(f"ab planes must have shape (2, h, w), got {ab_np.shape}")
            shape = (int(ab_np.shape[1]), int(ab_np.shape[2]))
        if min(shape) < 8:
            raise InputError(f"ab planes of {shape[1]}x{shape[0]} are too small to smooth (min 8x8)")
        if self._shape is None:
            self._shape = shape
        elif shape != self._shape:
            raise InputError(
                f"all frames of a sequence need ab planes of one size: got {shape}, expected {self._shape}"
            )
        luma_in = frame_l.detach().cpu().numpy() if isinstance(frame_l, torch.Tensor) else np.asarray(frame_l)
        if luma_in.ndim == 3 and luma_in.shape[0] == 1:
            luma_in = luma_in[0]
        if luma_in.ndim != 2:
            raise InputError(f"luma must be one plane (H, W), got shape {luma_in.shape}")
        if luma_in.dtype == np.uint8:
            luma_f = luma_in.astype(np.float32) * np.float32(100.0 / 255.0)
        elif np.issubdtype(luma_in.dtype, np.floating):
            luma_f = luma_in.astype(np.float32)
        else:
            raise InputError(f"luma must be float L* in [0, 100] or uint8, got dtype {luma_in.dtype}")
        luma = np.ascontiguousarray(resize_luma(luma_f, shape), dtype=np.float32)
        luma_u8 = to_flow_luma(luma)
        work = shape if self.flow_max_side is None else working_size(shape, self.flow_max_side)
        flow_luma = luma_u8 if work == shape else np.asarray(resize_luma(luma_u8, work))
        stats = (
            self.scene_cut.stats(luma_u8) if self.scene_cut is not None else SceneCutDetector().stats(luma_u8)
        )
        if self.backend == "torch":
            ab: ABFrame = (ab_t if isinstance(frame_ab, torch.Tensor) else torch.from_numpy(ab_np)).to(
                self.device
            )
            luma_dev: torch.Tensor | None = torch.from_numpy(luma).to(self.device)
        else:
            ab = ab_t.cpu().numpy() if isinstance(frame_ab, torch.Tensor) else np.ascontiguousarray(ab_np)
            luma_dev = None
        return _Frame(luma, luma_u8, flow_luma, stats, ab, luma_dev)

    # ------------------------------------------------------------------ the shared core

    def _flow(self, state: _State, dst: int, src: int, frames: dict[int, _Frame]) -> F32:
        """Flow mapping frame ``dst``'s pixels into frame ``src`` at the ab resolution (cached per ordered pair)."""
        cached = state.flows.get((dst, src))
        if cached is not None:
            return np.asarray(cached, dtype=np.float32)
        a, b = frames[dst], frames[src]
        flow = compute_flow(b.flow_luma, a.flow_luma, self.flow_preset)
        if flow.shape[:2] != a.luma.shape:
            flow = resize_flow(flow, a.luma.shape)
        state.flows.put((dst, src), flow)
        return flow

    def _cut_before(self, state: _State, k: int, frames: dict[int, _Frame]) -> bool:
        """True when frame ``k`` starts a new shot (compares frames ``k - 1`` and ``k``)."""
        if self.scene_cut is None:
            return False
        cached = state.cuts.get(k)
        if cached is None:
            cached = self.scene_cut.is_cut(frames[k - 1].stats, frames[k].stats)
            state.cuts.put(k, cached)
        return bool(cached)

    def _window(self, state: _State, n: int, frames: dict[int, _Frame]) -> list[int]:
        """Neighbours of ``n`` that exist and lie in the same shot, nearest first on each side."""
        out: list[int] = []
        for step in (-1, 1):
            for d in range(1, self.radius + 1):
                m = n + step * d
                if m not in frames:
                    break
                boundary = max(m, m - step)  # the later frame of the pair (m, m - step)
                if self._cut_before(state, boundary, frames):
                    break
                out.append(m)
        return out

    def _smooth(self, state: _State, n: int, frames: dict[int, _Frame]) -> ABFrame:
        """Smoothed ab of frame ``n`` from the prepared frames available in ``frames`` (its whole window)."""
        centre = frames[n]
        neighbours = self._window(state, n, frames) if self.params.strength > 0 else []
        if not neighbours:
            return centre.ab.clone() if isinstance(centre.ab, torch.Tensor) else centre.ab.copy()
        fwd = np.stack([self._flow(state, n, m, frames) for m in neighbours])
        bwd = np.stack([self._flow(state, m, n, frames) for m in neighbours])
        weights = np.array([self.params.neighbour_weight(abs(m - n)) for m in neighbours], dtype=np.float32)
        lowpass = self.params.correction_kernel(centre.luma.shape)
        if self.backend == "torch":
            dev = self.device
            avg_t = kernel_torch(
                centre.luma_dev,  # type: ignore[arg-type]
                centre.ab,
                torch.stack([frames[m].luma_dev for m in neighbours]),  # type: ignore[misc]
                torch.stack([frames[m].ab for m in neighbours]),
                torch.from_numpy(fwd).to(dev),
                torch.from_numpy(bwd).to(dev),
                torch.from_numpy(weights).to(dev),
                self.params,
            )
            return lowpass_correction_torch(centre.ab, avg_t, lowpass)
        l_n = np.stack([frames[m].luma for m in neighbours])
        ab_n = np.stack([frames[m].ab for m in neighbours])
        kernel = kernel_numba if self.backend == "numba" else kernel_reference
        avg = kernel(centre.luma, centre.ab, l_n, ab_n, fwd, bwd, weights, self.params)
        return lowpass_correction(centre.ab, avg, lowpass)

    # ------------------------------------------------------------------ streaming

    def push(self, frame_l: Any, frame_ab: Any) -> list[Smoothed]:
        """Add the next frame; returns the frames that became ready (frame ``i - radius`` after frame ``i``)."""
        frame = self._prepare(frame_l, frame_ab)
        state = self._stream
        state.frames.put(self._next, frame)
        self._next += 1
        return self._emit(upto=self._next - 1 - self.radius)

    def flush(self) -> list[Smoothed]:
        """Emit every frame still held (their windows end at the last pushed frame); the stream then restarts."""
        out = self._emit(upto=self._next - 1)
        self._stream.clear()
        self._next = self._emitted = 0
        self._shape = None
        return out

    def _emit(self, upto: int) -> list[Smoothed]:
        state = self._stream
        out: list[Smoothed] = []
        frames: dict[int, _Frame] = {
            k: state.frames.get(k) for k in range(max(0, self._emitted - self.radius), self._next)
        }
        while self._emitted <= upto:
            n = self._emitted
            out.append(Smoothed(n, self._smooth(state, n, frames)))
            self._emitted += 1
            low = self._emitted - self.radius  # frames below this are no longer anyone's neighbour
            state.frames.keep_only(_index_at_least(low))
            state.flows.keep_only(_pair_at_least(low))
            state.cuts.keep_only(_index_at_least(low))
        return out

    # ------------------------------------------------------------------ random access

    def smooth_at(self, n: int, loader: Loader) -> ABFrame:
        """Smoothed ab of frame ``n``; ``loader(k)`` returns frame ``k`` as ``(luma, ab)``, or None past the end.

        Prepared frames, flows and cut flags are cached, so requests for nearby frames reuse them. Thread-safe.
        """
        if n < 0:
            raise InputError(f"frame index must be >= 0, got {n}")
        state = self._random
        frames: dict[int, _Frame] = {}
        for k in range(max(0, n - self.radius), n + self.radius + 1):
            frame = state.frames.get(k)
            if frame is None:
                item = loader(k)
                if item is None:
                    if k == n:
                        raise InputError(f"frame {n} is past the end of the sequence")
                    if k > n:
                        break
                    continue
                frame = self._prepare(*item)
                state.frames.put(k, frame)
            frames[k] = frame
        return self._smooth(state, n, frames)

    def reset(self) -> None:
        """Forget every cached frame, flow and cut flag (start a new sequence)."""
        self._random.clear()
        self._stream.clear()
        self._next = self._emitted = 0
        self._shape = None


def smooth_sequence(
    lumas: list[Any], abs_: list[Any], radius: int = 2, strength: float = 1.0, **options: Any
) -> list[ABFrame]:
    """Smooth a whole in-memory sequence (streaming under the hood); returns the ab planes in order."""
    if len(lumas) != len(abs_):
        raise InputError(f"got {len(lumas)} luma planes for {len(abs_)} ab frames")
    smoother = TemporalSmoother(radius, strength, **options)
    out: list[Smoothed] = []
    for luma, ab in zip(lumas, abs_, strict=True):
        out.extend(smoother.push(luma, ab))
    out.extend(smoother.flush())
    return [s.ab for s in out]
