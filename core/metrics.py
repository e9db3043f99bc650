"""Quality metrics for colorization and scoring (numpy in, Python floats out).

- :func:`psnr`, :func:`ssim`: fidelity against ground truth. SSIM follows Wang et al., "Image quality assessment:
  from error visibility to structural similarity", IEEE TIP 2004: 11x11 Gaussian window (sigma 1.5), K1 = 0.01,
  K2 = 0.03, population covariances, mean over the window positions that lie fully inside the image (the same
  choices as ``skimage.metrics.structural_similarity(..., gaussian_weights=True, use_sample_covariance=False)``).
- :func:`colorfulness`: Hasler and Suesstrunk, "Measuring colourfulness in natural images", SPIE 5007, 2003.
- :func:`cdc`: colour distribution consistency, the temporal metric of Liu et al., "Temporally consistent video
  colorization with deep feature propagation and self-regularization learning" (TCVC, arXiv 2110.04562, 2021):
  Jensen-Shannon divergence of per-channel colour histograms of frames t and t+d, averaged over t, channels and
  d in {1, 2, 4}. Lower is more consistent.
- :func:`chroma_warp_error`: mean squared ab difference between consecutive frames after motion compensation, on
  non-occluded pixels (the flicker measure of the smoothing and keyframe-transfer issues). Lower is steadier.
- :func:`auc`: area under the ROC curve (Mann-Whitney statistic, ties counted one half).
"""

from collections.abc import Sequence

import cv2
import numpy as np
from numpy.typing import ArrayLike, NDArray

from chromaflow.core.errors import InputError
from chromaflow.core.flow import warp

_F64 = NDArray[np.float64]


def _pair(a: ArrayLike, b: ArrayLike) -> tuple[_F64, _F64]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise InputError(f"images to compare must have the same shape, got {x.shape} and {y.shape}")
    if x.size == 0:
        raise InputError("cannot compare empty images")
    return x, y


def mse(a: ArrayLike, b: ArrayLike) -> float:
    """Mean squared difference (in the images' units squared)."""
    x, y = _pair(a, b)
    return float(np.mean((x - y) ** 2))


def psnr(a: ArrayLike, b: ArrayLike, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB; ``data_range`` is the peak value (255 for 8-bit, 1 for [0, 1] floats).

    Identical images give ``inf``.
    """
    err = mse(a, b)
    if err == 0.0:
        return float("inf")
    return float(10.0 * np.log10(data_range * data_range / err))


def _gaussian_filter(img: _F64) -> _F64:
    return np.asarray(cv2.GaussianBlur(img, (11, 11), 1.5, borderType=cv2.BORDER_REFLECT), dtype=np.float64)


def ssim(a: ArrayLike, b: ArrayLike, data_range: float = 255.0, channel_axis: int | None = None) -> float:
    """Mean structural similarity (Wang et al. 2004, Gaussian window) in [-1, 1]; 1 for identical images.

    Images are ``(H, W)``, or have channels on ``channel_axis`` (the SSIM of each channel is averaged).
    Both sides need at least 11 pixels.
    """
    x, y = _pair(a, b)
    if channel_axis is not None:
        xs = np.moveaxis(x, channel_axis, 0)
        ys = np.moveaxis(y, channel_axis, 0)
        return float(np.mean([ssim(xc, yc, data_range) for xc, yc in zip(xs, ys, strict=True)]))
    if x.ndim != 2:
        raise InputError(f"ssim takes (H, W) images or a channel_axis, got shape {x.shape}")
    if min(x.shape) < 11:
        raise InputError(f"ssim needs images of at least 11x11 pixels, got {x.shape[1]}x{x.shape[0]}")
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mx, my = _gaussian_filter(x), _gaussian_filter(y)
    vx = _gaussian_filter(x * x) - mx * mx
    vy = _gaussian_filter(y * y) - my * my
    cxy = _gaussian_filter(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    pad = 5
    return float(s[pad:-pad, pad:-pad].mean())


def colorfulness(rgb: ArrayLike, channel_axis: int = -1) -> float:
    """Hasler-Suesstrunk colourfulness M of an sRGB image on the 0-255 scale (uint8, or floats in [0, 255]).

    ``rg = R - G``, ``yb = (R + G) / 2 - B``, ``M = sqrt(var_rg + var_yb) + 0.3 * sqrt(mean_rg^2 + mean_yb^2)``.
    A gray image scores 0; the paper's "extremely colourful" starts near 109.
    """
    img = np.moveaxis(np.asarray(rgb, dtype=np.float64), channel_axis, -1)
    if img.shape[-1] != 3:
        raise InputError(f"colorfulness needs 3 colour channels, got shape {np.shape(rgb)}")
    r, g, b = img[..., 0], img[..., 1], img[..., 2]
    rg = r - g
    yb = 0.5 * (r + g) - b
    spread = np.sqrt(rg.var() + yb.var())
    mean = np.sqrt(rg.mean() ** 2 + yb.mean() ** 2)
    return float(spread + 0.3 * mean)


def js_divergence(p: ArrayLike, q: ArrayLike) -> float:
    """Jensen-Shannon divergence (base-2 logarithms, so in [0, 1]) of two histograms (normalised here)."""
    pa = np.asarray(p, dtype=np.float64)
    qa = np.asarray(q, dtype=np.float64)
    if pa.shape != qa.shape or pa.sum() <= 0 or qa.sum() <= 0:
        raise InputError("js_divergence needs two non-empty histograms of the same shape")
    pa = pa / pa.sum()
    qa = qa / qa.sum()
    m = 0.5 * (pa + qa)

    def kl(u: _F64, v: _F64) -> float:
        nz = u > 0
        return float(np.sum(u[nz] * np.log2(u[nz] / v[nz])))

    return 0.5 * kl(pa, m) + 0.5 * kl(qa, m)


def _channel_histograms(frame: ArrayLike, bins: int, value_range: tuple[float, float]) -> list[_F64]:
    img = np.asarray(frame)
    if img.ndim != 3 or img.shape[-1] < 1:
        raise InputError(f"cdc takes frames of shape (H, W, C), got {img.shape}")
    return [
        np.histogram(img[..., c], bins=bins, range=value_range)[0].astype(np.float64)
        for c in range(img.shape[-1])
    ]


def cdc(
    frames: Sequence[ArrayLike],
    steps: Sequence[int] = (1, 2, 4),
    bins: int = 256,
    value_range: tuple[float, float] = (0.0, 256.0),
) -> float:
    """Colour distribution consistency (TCVC, Liu et al. 2021): lower means steadier colours.

    ``frames`` are ``(H, W, C)`` images (by default 8-bit RGB: 256 bins over [0, 256)). For each step ``d`` the
    JS divergence (base 2) of the per-channel histograms of frames ``t`` and ``t + d`` is averaged over channels
    and over t; the result is the mean over the steps that fit in the sequence.
    """
    if len(frames) < 2:
        raise InputError(f"cdc needs at least 2 frames, got {len(frames)}")
    hists = [_channel_histograms(f, bins, value_range) for f in frames]
    per_step: list[float] = []
    for d in steps:
        if d < 1:
            raise InputError(f"cdc steps must be >= 1, got {d}")
        if d >= len(frames):
            continue
        vals = [
            js_divergence(h0, h1)
            for t in range(len(frames) - d)
            for h0, h1 in zip(hists[t], hists[t + d], strict=True)
        ]
        per_step.append(float(np.mean(vals)))
    return float(np.mean(per_step))


def chroma_warp_error(
    ab_prev: ArrayLike,
    ab_next: ArrayLike,
    flow: ArrayLike,
    valid: ArrayLike | None = None,
) -> float:
    """Mean squared ab difference (Lab units squared) between a frame and its motion-compensated predecessor.

    ``ab_prev``, ``ab_next``: ``(H, W, 2)`` a*b* planes of frames t and t+1. ``flow``: ``(H, W, 2)`` flow mapping
    frame t+1's pixels to frame t (``compute_flow(src=L_t, dst=L_t1)``). ``valid``: ``(H, W)`` bool mask of the
    non-occluded pixels of frame t+1 (e.g. ``~occlusion_mask(...)``); all pixels when None.
    """
    prev = np.asarray(ab_prev, dtype=np.float32)
    nxt = np.asarray(ab_next, dtype=np.float32)
    if prev.shape != nxt.shape or prev.ndim != 3:
        raise InputError(f"ab planes must both be (H, W, 2), got {prev.shape} and {nxt.shape}")
    diff = np.sum((warp(prev, np.asarray(flow, dtype=np.float32)) - nxt).astype(np.float64) ** 2, axis=-1) / 2
    if valid is None:
        return float(diff.mean())
    mask = np.asarray(valid, dtype=bool)
    if mask.shape != diff.shape:
        raise InputError(f"valid mask of shape {mask.shape} does not match ab planes of shape {prev.shape}")
    if not mask.any():
        return float("nan")
    return float(diff[mask].mean())


def auc(labels: ArrayLike, scores: ArrayLike) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (1/True = positive).

    Computed as the Mann-Whitney U statistic with average ranks, so tied scores count one half. Needs both classes.
    """
    y = np.asarray(labels).astype(bool).ravel()
    s = np.asarray(scores, dtype=np.float64).ravel()
    if y.shape != s.shape:
        raise InputError(f"auc needs one score per label, got {y.size} labels and {s.size} scores")
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        raise InputError("auc needs at least one positive and one negative label")
    if not np.all(np.isfinite(s)):
        raise InputError("auc scores must be finite numbers")
    order = np.argsort(s, kind="mergesort")
    sorted_s = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    # average rank (1-based) for each run of equal scores
    starts = np.flatnonzero(np.r_[True, sorted_s[1:] != sorted_s[:-1]])
    ends = np.r_[starts[1:], s.size]
    for a, b in zip(starts, ends, strict=True):
        ranks[order[a:b]] = 0.5 * (a + 1 + b)
    u = ranks[y].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))
