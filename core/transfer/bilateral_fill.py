"""Luma-guided fill of unreliable chroma with a confidence-weighted bilateral grid.

Where propagation is not confident (occlusions, disocclusions, long chains), colour is taken from confident pixels
that are *near in space and similar in lightness* (a colour usually belongs to one surface, and a surface has a
limited range of lightness). The bilateral grid (Chen, Paris and Durand, "Real-time edge-aware image processing with
the bilateral grid", SIGGRAPH 2007) makes this cheap: pixels are splatted by (y / sigma_s, x / sigma_s, L* / sigma_l)
into a small 3-D grid of confidence-weighted sums, the grid is blurred, and each pixel reads its value back by
trilinear interpolation (slicing). Slicing can be done at any resolution of the same frame, which makes the fill an
edge-aware upsampler too.

The fill is a cascade: a fine grid where it has enough support, a coarse grid where it does not, and a global
fallback (e.g. a transfer from the keyframe) where even the coarse grid is empty.
"""

from dataclasses import dataclass

import cv2
import numba
import numpy as np

from chromaflow.core.arrays import F32
from chromaflow.core.errors import InputError


@dataclass(frozen=True)
class Grid:
    """A blurred bilateral grid: per cell, the weight sum (channel 0) and weighted value sums (channels 1..)."""

    data: F32  # (gl, gh, gw, 1 + C)
    sigma_s: float  # pixels of the frame it was built on
    sigma_l: float  # L* units
    size: tuple[int, int]  # (h, w) of that frame


def _blur_axis(data: F32, axis: int) -> F32:
    """[1, 2, 1] / 4 along one axis with zero borders (weights and sums blur alike, so normalising is exact)."""
    pad = [(0, 0)] * data.ndim
    pad[axis] = (1, 1)
    p = np.pad(data, pad)
    n = data.shape[axis]
    lo = np.take(p, range(0, n), axis=axis)
    mid = np.take(p, range(1, n + 1), axis=axis)
    hi = np.take(p, range(2, n + 2), axis=axis)
    return np.asarray(0.25 * lo + 0.5 * mid + 0.25 * hi, dtype=np.float32)


def build(l_star: F32, values: F32, weights: F32, sigma_s: float, sigma_l: float) -> Grid:
    """Splat ``values (h, w, C)`` with ``weights (h, w)`` by position and lightness ``l_star (h, w)``; blur once."""
    h, w = l_star.shape
    if values.shape[:2] != (h, w) or weights.shape != (h, w):
        raise InputError(
            f"grid inputs disagree: L* {l_star.shape}, values {values.shape}, weights {weights.shape}"
        )
    gh, gw = int(np.ceil((h - 1) / sigma_s)) + 3, int(np.ceil((w - 1) / sigma_s)) + 3
    gl = int(np.ceil(100.0 / sigma_l)) + 3
    ys = (np.arange(h, dtype=np.float32) / sigma_s + 1.5).astype(np.int64)
    xs = (np.arange(w, dtype=np.float32) / sigma_s + 1.5).astype(np.int64)
    zs = (np.clip(l_star, 0.0, 100.0) / sigma_l + 1.5).astype(np.int64)
    idx = ((zs * gh + ys[:, None]) * gw + xs[None, :]).ravel()
    cells = gl * gh * gw
    wt = weights.astype(np.float32).ravel()
    chans = [np.bincount(idx, weights=wt, minlength=cells)]
    vals = values.reshape(h * w, -1)
    for c in range(vals.shape[1]):
        chans.append(np.bincount(idx, weights=wt * vals[:, c], minlength=cells))
    data = np.stack(chans, axis=-1).astype(np.float32).reshape(gl, gh, gw, -1)
    for axis in range(3):
        data = _blur_axis(data, axis)
    return Grid(data, float(sigma_s), float(sigma_l), (h, w))


@numba.njit(cache=True, nogil=True)
def _slice_kernel(
    data: F32, yf: F32, xf: F32, zf: F32, prior: F32, k: float, out: F32
) -> None:  # pragma: no cover - compiled
    """Trilinear read-out; with ``k > 0`` writes ``(sums + k * prior) / (weight + k)`` instead of the raw cell."""
    gl, gh, gw, ch = data.shape
    vals = np.empty(ch, dtype=np.float32)
    for i in range(zf.shape[0]):
        y = yf[i]
        y0 = min(int(y), gh - 2)
        fy = y - y0
        for j in range(zf.shape[1]):
            x = xf[j]
            x0 = min(int(x), gw - 2)
            fx = x - x0
            z = zf[i, j]
            z0 = min(int(z), gl - 2)
            fz = z - z0
            for c in range(ch):
                v00 = data[z0, y0, x0, c] * (1 - fx) + data[z0, y0, x0 + 1, c] * fx
                v01 = data[z0, y0 + 1, x0, c] * (1 - fx) + data[z0, y0 + 1, x0 + 1, c] * fx
                v10 = data[z0 + 1, y0, x0, c] * (1 - fx) + data[z0 + 1, y0, x0 + 1, c] * fx
                v11 = data[z0 + 1, y0 + 1, x0, c] * (1 - fx) + data[z0 + 1, y0 + 1, x0 + 1, c] * fx
                lo = v00 * (1 - fy) + v01 * fy
                hi = v10 * (1 - fy) + v11 * fy
                vals[c] = lo * (1 - fz) + hi * fz
            if k > 0:
                den = vals[0] + k
                for c in range(1, ch):
                    out[i, j, c - 1] = (vals[c] + k * prior[i, j, c - 1]) / den
            else:
                for c in range(ch):
                    out[i, j, c] = vals[c]


def _query_coords(grid: "Grid", l_star: F32) -> tuple[F32, F32, F32]:
    big_h, big_w = l_star.shape
    h, w = grid.size
    # pixel centres of the query frame in the grid frame's pixel units, then grid units
    yf = ((np.arange(big_h, dtype=np.float32) + 0.5) * (h / big_h) - 0.5).clip(0, h - 1) / grid.sigma_s + 1.0
    xf = ((np.arange(big_w, dtype=np.float32) + 0.5) * (w / big_w) - 0.5).clip(0, w - 1) / grid.sigma_s + 1.0
    zf = np.clip(l_star, 0.0, 100.0).astype(np.float32) / np.float32(grid.sigma_l) + np.float32(1.0)
    return yf.astype(np.float32), xf.astype(np.float32), np.ascontiguousarray(zf)


def slice_normalised(grid: "Grid", l_star: F32, prior: F32, k: float) -> F32:
    """``(sums + k * prior) / (weight + k)`` read out at every pixel of ``l_star`` (``prior`` at that size)."""
    yf, xf, zf = _query_coords(grid, l_star)
    out = np.empty((*l_star.shape, grid.data.shape[3] - 1), dtype=np.float32)
    pr = np.ascontiguousarray(prior, dtype=np.float32)
    _slice_kernel(np.ascontiguousarray(grid.data), yf, xf, zf, pr, float(k), out)
    return out


def cascade_fill(
    l_work: F32,
    values: F32,
    weights: F32,
    l_out: F32,
    scales: tuple[tuple[float, float], ...],
    prior: F32 | None,
    prior_weight: float,
) -> F32:
    """Values ``(H, W, C)`` at ``l_out``'s resolution filled from confident pixels, fine scales first.

    ``scales``: ``(sigma_s, sigma_l)`` from fine to coarse (sigma_s in pixels of ``l_work``). Each scale's
    normalised estimate is ``(sum_w * v + k * coarser) / (sum_w + k)`` with ``k = prior_weight``: where a fine
    cell holds less confident weight than about ``k`` pixels, the coarser estimate takes over. The coarsest scale
    falls back to ``prior`` (``(h, w, C)`` at ``l_work``'s size), or to zero. Only the finest scale is read out at
    ``l_out``'s resolution (edge-aware upsampling); the coarser ones are smooth and are read at the working size.
    """
    if not scales:
        raise InputError("the fill needs at least one grid scale")
    if not prior_weight > 0:
        raise InputError(f"the fill's prior weight must be > 0, got {prior_weight}")
    est = prior if prior is not None else np.zeros((*l_work.shape, values.shape[2]), dtype=np.float32)
    for sigma_s, sigma_l in reversed(scales[1:]):
        est = slice_normalised(build(l_work, values, weights, sigma_s, sigma_l), l_work, est, prior_weight)
    big_h, big_w = l_out.shape
    if est.shape[:2] != (big_h, big_w):
        est = np.asarray(cv2.resize(est, (big_w, big_h), interpolation=cv2.INTER_LINEAR), dtype=np.float32)
        est = est.reshape(big_h, big_w, values.shape[2])
    return slice_normalised(build(l_work, values, weights, *scales[0]), l_out, est, prior_weight)
