"""Guided filter (He, Sun and Tang, "Guided Image Filtering", ECCV 2010 / TPAMI 2013) on box filters.

Used to refine chroma so that it follows the edges of the luma: in every window the output is an affine function of
the guide, ``q = a * I + b``, with ``a = cov(I, p) / (var(I) + eps)`` and ``b = mean(p) - a * mean(I)``; the
coefficients are averaged over the windows covering a pixel. :func:`guided_upsample` is the "fast guided filter"
(He and Sun, arXiv 1505.00996, 2015): coefficients computed at a low resolution, upsampled bilinearly and applied to
the full-resolution guide, which gives edge-aware upsampling of ab to the full-resolution L*.

Written on ``cv2.boxFilter`` (normalised, reflected borders); ``cv2.ximgproc`` is not part of
opencv-python-headless.
"""

import cv2
import numpy as np
from numpy.typing import NDArray

from chromaflow.core.arrays import F32
from chromaflow.core.errors import InputError


def box(x: NDArray[np.floating], radius: int) -> F32:
    """Mean over a ``(2r+1) x (2r+1)`` window (reflected borders); works on ``(H, W)`` and ``(H, W, C)``."""
    k = 2 * int(radius) + 1
    arr = np.ascontiguousarray(x, dtype=np.float32)
    out = cv2.boxFilter(arr, -1, (k, k), normalize=True, borderType=cv2.BORDER_REFLECT)
    return np.asarray(out, dtype=np.float32).reshape(arr.shape)


def guided_coefficients(
    guide: NDArray[np.floating], src: NDArray[np.floating], radius: int, eps: float
) -> tuple[F32, F32]:
    """Window-averaged coefficients ``(mean_a, mean_b)`` with the shape of ``src`` (``(H, W)`` or ``(H, W, C)``)."""
    g = np.asarray(guide, dtype=np.float32)
    p = np.asarray(src, dtype=np.float32)
    if g.ndim != 2 or p.shape[:2] != g.shape:
        raise InputError(f"guide {g.shape} and source {p.shape} must share (H, W); the guide is one plane")
    if radius < 0 or not eps > 0:
        raise InputError(f"guided filter needs radius >= 0 and eps > 0, got {radius} and {eps}")
    gx = g[..., None] if p.ndim == 3 else g
    mean_i = box(gx, radius)
    mean_p = box(p, radius)
    var_i = box(gx * gx, radius) - mean_i * mean_i
    cov_ip = box(gx * p, radius) - mean_i * mean_p
    a = cov_ip / (np.maximum(var_i, 0.0) + np.float32(eps))
    b = mean_p - a * mean_i
    return box(a, radius), box(b, radius)


def guided_filter(guide: NDArray[np.floating], src: NDArray[np.floating], radius: int, eps: float) -> F32:
    """Edge-preserving smoothing of ``src`` guided by the single-plane ``guide`` (same ``(H, W)``)."""
    g = np.asarray(guide, dtype=np.float32)
    a, b = guided_coefficients(g, src, radius, eps)
    gx = g[..., None] if a.ndim == 3 else g
    return np.asarray(a * gx + b, dtype=np.float32)


def guided_upsample(
    guide_small: NDArray[np.floating],
    src_small: NDArray[np.floating],
    guide_full: NDArray[np.floating],
    radius: int,
    eps: float,
) -> F32:
    """Fast guided filter: ``src_small`` (at ``guide_small``'s size) filtered and upsampled to ``guide_full``'s size."""
    a, b = guided_coefficients(guide_small, src_small, radius, eps)
    g_full = np.asarray(guide_full, dtype=np.float32)
    h, w = g_full.shape
    if a.shape[:2] != (h, w):
        a = np.asarray(cv2.resize(a, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.float32).reshape(
            h, w, *a.shape[2:]
        )
        b = np.asarray(cv2.resize(b, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.float32).reshape(
            h, w, *b.shape[2:]
        )
    gx = g_full[..., None] if a.ndim == 3 else g_full
    return np.asarray(a * gx + b, dtype=np.float32)
