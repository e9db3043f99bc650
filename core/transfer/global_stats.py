"""Global colour transfer in CIE Lab from a reference RGB image to a target luma.

Two methods, both conditioned on lightness so that a dark road and a bright sky of the reference keep their own
colours:

- :func:`reinhard` (Reinhard et al., "Color transfer between images", IEEE CG&A 2001, done in CIE Lab): the target
  L* is first remapped to the reference's L* mean and standard deviation (the luminance remapping of Welsh et al.
  2002); then, per luminance band, the a*/b* mean (and, when the target already has ab, the standard deviation) is
  matched. Band statistics are interpolated linearly between band centres, so there are no steps in the output.
- :func:`histogram`: the target L* is histogram-matched to the reference's (full CDF, not just two moments); a gray
  target then receives the reference's conditional mean ab at its matched lightness on fine bins (the MSE-optimal
  colour given L* alone); a target with ab (e.g. a colorizer's output) has each of a*, b* histogram-matched to the
  reference within luminance bands.

Inputs: ``reference`` an RGB image (see :func:`chromaflow.core.transfer.lab_arrays.as_rgb_float`), ``target_l`` an ``(H, W)``
L* plane; output ``(H, W, 2)`` float32 ab. Statistics are taken from the reference shrunk to ``stats_side``.
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from chromaflow.core.arrays import F32
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.flow import working_size
from chromaflow.core.transfer.lab_arrays import hwc, resize_plane, rgb_to_lab_planes

STATS_SIDE = 320


@dataclass(frozen=True)
class LabSamples:
    """A reference's pixels as flat L* and ab samples (shrunk for statistics)."""

    l: NDArray[np.float64]  # (N,)
    ab: NDArray[np.float64]  # (N, 2)

    @staticmethod
    def of(reference: NDArray[np.generic], stats_side: int = STATS_SIDE) -> "LabSamples":
        l_ref, ab_ref = rgb_to_lab_planes(reference)
        size = working_size((int(l_ref.shape[0]), int(l_ref.shape[1])), stats_side)
        l_small = resize_plane(l_ref, size)
        ab_small = resize_plane(hwc(ab_ref), size)
        return LabSamples(l_small.reshape(-1).astype(np.float64), ab_small.reshape(-1, 2).astype(np.float64))


def _as_samples(reference: "NDArray[np.generic] | LabSamples") -> LabSamples:
    return reference if isinstance(reference, LabSamples) else LabSamples.of(reference)


def _check_target(
    target_l: NDArray[np.generic], target_ab: NDArray[np.generic] | None
) -> tuple[F32, F32 | None]:
    l_t = np.asarray(target_l, dtype=np.float32)
    if l_t.ndim != 2 or l_t.size == 0:
        raise InputError(f"target luma must be an (H, W) L* plane, got shape {l_t.shape}")
    if target_ab is None:
        return l_t, None
    ab_t = np.asarray(target_ab, dtype=np.float32)
    if ab_t.shape != (*l_t.shape, 2):
        raise InputError(f"target ab of shape {ab_t.shape} does not match target L* {l_t.shape}")
    return l_t, ab_t


def match_moments(l_target: NDArray[np.floating], l_reference: NDArray[np.floating]) -> F32:
    """Target L* shifted and scaled to the reference's mean and standard deviation."""
    mu_t, sd_t = float(np.mean(l_target)), float(np.std(l_target))
    mu_r, sd_r = float(np.mean(l_reference)), float(np.std(l_reference))
    scale = sd_r / sd_t if sd_t > 1e-3 else 1.0
    return np.asarray((np.asarray(l_target) - mu_t) * scale + mu_r, dtype=np.float32)


def match_histogram(
    l_target: NDArray[np.floating], l_reference: NDArray[np.floating], levels: int = 256
) -> F32:
    """Target L* mapped through its CDF onto the reference's quantiles (monotone; ties keep their order)."""
    q = np.linspace(0.0, 1.0, levels)
    t_q = np.quantile(np.asarray(l_target, dtype=np.float64), q)
    r_q = np.quantile(np.asarray(l_reference, dtype=np.float64), q)
    t_q = np.maximum.accumulate(t_q + np.arange(levels) * 1e-9)  # strictly increasing for interp
    return np.asarray(np.interp(l_target, t_q, r_q), dtype=np.float32)


def _band_centres(l_ref: NDArray[np.float64], bands: int) -> NDArray[np.float64]:
    centres = np.quantile(l_ref, (np.arange(bands) + 0.5) / bands)
    return np.maximum.accumulate(centres + np.arange(bands) * 1e-6)


def _band_weights(l: NDArray[np.float64], centres: NDArray[np.float64]) -> NDArray[np.float64]:
    """Triangular (linear-interpolation) membership of each value in each band, shape (N, bands)."""
    eye = np.eye(len(centres))
    return np.stack([np.interp(l, centres, eye[j]) for j in range(len(centres))], axis=1)


def _band_moments(
    l: NDArray[np.float64], ab: NDArray[np.float64], centres: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Per-band weighted mean and standard deviation of ab, shapes (bands, 2)."""
    w = _band_weights(l, centres)
    mass = w.sum(axis=0)[:, None] + 1e-9
    mean = (w.T @ ab) / mass
    var = (w.T @ (ab * ab)) / mass - mean * mean
    return mean, np.sqrt(np.maximum(var, 0.0))


def _per_pixel(l: NDArray[np.floating], centres: NDArray[np.float64], values: NDArray[np.float64]) -> F32:
    """Band values (bands, 2) interpolated at each pixel's L*: (..., 2)."""
    flat = np.asarray(l, dtype=np.float64).reshape(-1)
    out = np.stack([np.interp(flat, centres, values[:, c]) for c in range(values.shape[1])], axis=1)
    return out.reshape(*np.shape(l), values.shape[1]).astype(np.float32)


def reinhard(
    reference: "NDArray[np.generic] | LabSamples",
    target_l: NDArray[np.generic],
    target_ab: NDArray[np.generic] | None = None,
    bands: int = 4,
) -> F32:
    """Reinhard-style transfer: per-luminance-band a*/b* moments of the reference (see the module docstring)."""
    if bands < 1:
        raise UsageError(f"reinhard needs at least one luminance band, got {bands}")
    ref = _as_samples(reference)
    l_t, ab_t = _check_target(target_l, target_ab)
    l_m = match_moments(l_t, ref.l)
    centres = _band_centres(ref.l, bands)
    mean_r, sd_r = _band_moments(ref.l, ref.ab, centres)
    mu_r = _per_pixel(l_m, centres, mean_r)
    if ab_t is None:
        return mu_r
    flat_l = l_m.reshape(-1).astype(np.float64)
    mean_t, sd_t = _band_moments(flat_l, ab_t.reshape(-1, 2).astype(np.float64), centres)
    scale = np.where(sd_t > 1e-3, sd_r / np.maximum(sd_t, 1e-3), 1.0)
    mu_t = _per_pixel(l_m, centres, mean_t)
    s = _per_pixel(l_m, centres, scale)
    return np.asarray((ab_t - mu_t) * s + mu_r, dtype=np.float32)


def conditional_mean_ab(
    l_ref: NDArray[np.float64], ab_ref: NDArray[np.float64], bins: int = 64, smooth: float = 1.0
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(centres, mean_ab (bins, 2))``: the reference's mean ab per L* bin over [0, 100], Gaussian-smoothed over
    ``smooth`` bins; bins without samples take the smoothed neighbours' value (or the global mean)."""
    edges = np.linspace(0.0, 100.0, bins + 1)
    centres = 0.5 * (edges[:-1] + edges[1:])
    idx = np.clip(np.searchsorted(edges, l_ref, side="right") - 1, 0, bins - 1)
    count = np.bincount(idx, minlength=bins).astype(np.float64)
    sums = np.stack([np.bincount(idx, weights=ab_ref[:, c], minlength=bins) for c in range(2)], axis=1)
    d = np.arange(bins)[:, None] - np.arange(bins)[None, :]
    kernel = np.exp(-0.5 * (d / max(smooth, 1e-3)) ** 2)
    wide = np.exp(-0.5 * (d / (bins / 4.0)) ** 2)
    num, den = kernel @ sums, kernel @ count
    num_w, den_w = wide @ sums, wide @ count
    fallback = ab_ref.mean(axis=0) if len(ab_ref) else np.zeros(2)
    mean = (num + 1e-3 * num_w + 1e-9 * fallback) / (den + 1e-3 * den_w + 1e-9)[:, None]
    return centres, mean


def histogram(
    reference: "NDArray[np.generic] | LabSamples",
    target_l: NDArray[np.generic],
    target_ab: NDArray[np.generic] | None = None,
    bands: int = 4,
    bins: int = 64,
) -> F32:
    """Histogram-based transfer conditioned on L* (see the module docstring)."""
    if bands < 1 or bins < 2:
        raise UsageError(f"histogram transfer needs bands >= 1 and bins >= 2, got {bands} and {bins}")
    ref = _as_samples(reference)
    l_t, ab_t = _check_target(target_l, target_ab)
    l_m = match_histogram(l_t, ref.l)
    if ab_t is None:
        centres, mean = conditional_mean_ab(ref.l, ref.ab, bins)
        return _per_pixel(l_m, centres, mean)
    # per band, quantile-map each of a*, b* of the target onto the reference's; blend bands linearly in L*
    centres = _band_centres(ref.l, bands)
    w_ref = _band_weights(ref.l, centres)
    flat_l = l_m.reshape(-1).astype(np.float64)
    w_t = _band_weights(flat_l, centres)
    flat_ab = ab_t.reshape(-1, 2).astype(np.float64)
    out = np.zeros_like(flat_ab)
    q = np.linspace(0.0, 1.0, 65)
    for j in range(bands):
        in_ref = w_ref[:, j] > 0.5
        in_t = w_t[:, j] > 0.5
        if not in_ref.any() or not in_t.any():
            in_ref = w_ref[:, j] > 0
            in_t = w_t[:, j] > 0
        for c in range(2):
            if not in_ref.any() or not in_t.any():
                mapped = flat_ab[:, c]
            else:
                t_q = np.quantile(flat_ab[in_t, c], q) + np.arange(len(q)) * 1e-9
                r_q = np.quantile(ref.ab[in_ref, c], q)
                mapped = np.interp(flat_ab[:, c], np.maximum.accumulate(t_q), r_q)
            out[:, c] += w_t[:, j] * mapped
    return out.reshape(ab_t.shape).astype(np.float32)
