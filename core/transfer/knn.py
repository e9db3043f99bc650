"""Welsh-style colour transfer: match lightness and local texture against reference samples, copy their ab.

Welsh, Ashikhmin and Mueller, "Transferring color to greyscale images", SIGGRAPH 2002: the reference is sampled on a
jittered grid; each sample is described by its (luminance-remapped) L* and the standard deviation of L* in a small
window; each target pixel takes the a*b* of the sample whose description is nearest.

Here the nearest-neighbour search is replaced by binning, which needs no KD-tree and costs O(1) per pixel: the
samples are accumulated into a 3-D grid over (L*, local standard deviation, local mean over a wider window); the grid
is blurred with a Gaussian (a soft nearest-neighbour: nearby samples vote by distance, so one noisy sample does not
decide) and normalised; empty regions of feature space take a much wider blur's value. A target pixel's ab is read
from the grid by trilinear interpolation, and the result is smoothed with a guided filter on the target's L* so it
follows the target's edges (the smoothing the original method lacks).
"""

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from chromaflow.core.arrays import F32
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.flow import working_size
from chromaflow.core.transfer.global_stats import match_moments
from chromaflow.core.transfer.guided import box, guided_filter
from chromaflow.core.transfer.lab_arrays import hwc, resize_plane, rgb_to_lab_planes

F64 = NDArray[np.float64]

# Grid ranges and sizes: L* and local mean over [0, 100]; local std on a square-root scale over [0, sqrt(40)].
_L_BINS, _S_BINS, _M_BINS = 40, 10, 20
_S_MAX = float(np.sqrt(40.0))


def texture_features(l_star: NDArray[np.floating], std_radius: int = 2, mean_radius: int = 6) -> F32:
    """Per-pixel features ``(H, W, 3)``: L*, sqrt of the local L* standard deviation, wider local mean of L*."""
    l = np.asarray(l_star, dtype=np.float32)
    if l.ndim != 2:
        raise InputError(f"texture features need an (H, W) L* plane, got shape {l.shape}")
    m = box(l, std_radius)
    var = np.maximum(box(l * l, std_radius) - m * m, 0.0)
    return np.stack((l, np.sqrt(np.sqrt(var)), box(l, mean_radius)), axis=-1)


def _grid_coords(features: NDArray[np.floating]) -> F64:
    f = np.asarray(features, dtype=np.float64).reshape(-1, 3)
    c = np.empty_like(f)
    c[:, 0] = np.clip(f[:, 0] / 100.0, 0.0, 1.0) * (_L_BINS - 1)
    c[:, 1] = np.clip(f[:, 1] / _S_MAX, 0.0, 1.0) * (_S_BINS - 1)
    c[:, 2] = np.clip(f[:, 2] / 100.0, 0.0, 1.0) * (_M_BINS - 1)
    return c


def _blur_axis(grid: F64, axis: int, sigma: float) -> F64:
    n = grid.shape[axis]
    d = np.arange(n)[:, None] - np.arange(n)[None, :]
    k = np.exp(-0.5 * (d / sigma) ** 2)
    return np.moveaxis(np.tensordot(k, np.moveaxis(grid, axis, 0), axes=(1, 0)), 0, axis)


def _blur(grid: F64, sigmas: tuple[float, float, float]) -> F64:
    for axis, s in enumerate(sigmas):
        grid = _blur_axis(grid, axis, s)
    return grid


def _corners(coords: F64) -> list[tuple[NDArray[np.intp], F64]]:
    """Flat grid indices and trilinear weights of the 8 corners around each coordinate."""
    shape = (_L_BINS, _S_BINS, _M_BINS)
    base = [np.minimum(np.floor(coords[:, i]).astype(np.intp), shape[i] - 2) for i in range(3)]
    frac = [coords[:, i] - base[i] for i in range(3)]
    out = []
    for dl in (0, 1):
        for ds in (0, 1):
            for dm in (0, 1):
                w = (
                    (frac[0] if dl else 1 - frac[0])
                    * (frac[1] if ds else 1 - frac[1])
                    * (frac[2] if dm else 1 - frac[2])
                )
                idx = np.ravel_multi_index((base[0] + dl, base[1] + ds, base[2] + dm), shape)
                out.append((idx, w))
    return out


@dataclass(frozen=True)
class KnnTable:
    """A reference's feature grid: expected ab per (L*, texture, context) cell, plus its L* moments."""

    table: F32  # (L_BINS * S_BINS * M_BINS, 2)
    ref_l: F64  # the reference L* samples (for luminance remapping of targets)

    @staticmethod
    def fit(
        reference: NDArray[np.generic],
        samples: int = 4096,
        fit_side: int = 480,
        sigma: float = 1.0,
        seed: int = 0,
    ) -> "KnnTable":
        """Sample the reference on a jittered grid (seeded) and build the blurred feature grid."""
        if samples < 16:
            raise UsageError(f"knn transfer needs at least 16 reference samples, got {samples}")
        l_ref, ab_ref = rgb_to_lab_planes(reference)
        size = working_size((int(l_ref.shape[0]), int(l_ref.shape[1])), fit_side)
        l_ref, ab_ref = resize_plane(l_ref, size), resize_plane(hwc(ab_ref), size)
        feats = texture_features(l_ref)
        h, w = l_ref.shape
        step = max(1.0, float(np.sqrt(h * w / samples)))
        rng = np.random.default_rng(seed)
        ys = np.arange(0.0, h, step)
        xs = np.arange(0.0, w, step)
        gy, gx = np.meshgrid(ys, xs, indexing="ij")
        sy = np.minimum((gy + rng.random(gy.shape) * step).astype(np.intp), h - 1).ravel()
        sx = np.minimum((gx + rng.random(gx.shape) * step).astype(np.intp), w - 1).ravel()
        coords = _grid_coords(feats[sy, sx])
        ab = ab_ref[sy, sx].astype(np.float64)
        shape = (_L_BINS, _S_BINS, _M_BINS)
        count = np.zeros(int(np.prod(shape)))
        sums = np.zeros((int(np.prod(shape)), 2))
        for idx, wt in _corners(coords):
            np.add.at(count, idx, wt)
            for c in range(2):
                np.add.at(sums[:, c], idx, wt * ab[:, c])
        count_g = count.reshape(shape)
        sums_g = sums.reshape(*shape, 2)
        near = (sigma, sigma, sigma)
        far = (sigma, 4.0 * sigma, 8.0 * sigma)  # empty texture cells: same L*, any texture
        num = np.stack([_blur(sums_g[..., c], near) for c in range(2)], axis=-1)
        den = _blur(count_g, near)
        num_far = np.stack([_blur(sums_g[..., c], far) for c in range(2)], axis=-1)
        den_far = _blur(count_g, far)
        mean_ab = ab.mean(axis=0)
        table = (num + 1e-3 * num_far + 1e-9 * mean_ab) / (den + 1e-3 * den_far + 1e-9)[..., None]
        return KnnTable(table.reshape(-1, 2).astype(np.float32), l_ref.reshape(-1).astype(np.float64))

    def lookup(self, target_l: NDArray[np.floating]) -> F32:
        """Raw ab ``(H, W, 2)`` for a target L* plane (luminance-remapped to the reference first)."""
        l_t = np.asarray(target_l, dtype=np.float32)
        if l_t.ndim != 2 or l_t.size == 0:
            raise InputError(f"target luma must be an (H, W) L* plane, got shape {l_t.shape}")
        coords = _grid_coords(texture_features(match_moments(l_t, self.ref_l)))
        out = np.zeros((coords.shape[0], 2), dtype=np.float64)
        for idx, wt in _corners(coords):
            out += wt[:, None] * self.table[idx]
        return out.reshape(*l_t.shape, 2).astype(np.float32)

    def transfer(self, target_l: NDArray[np.floating], radius: int = 4, eps: float = 25.0) -> F32:
        """ab ``(H, W, 2)`` for a target L*, smoothed edge-aware (guided filter on the target L*)."""
        raw = self.lookup(target_l)
        if radius <= 0:
            return raw
        return guided_filter(np.asarray(target_l, dtype=np.float32), raw, radius, eps)


def knn(
    reference: NDArray[np.generic],
    target_l: NDArray[np.generic],
    samples: int = 4096,
    radius: int = 4,
    eps: float = 25.0,
    seed: int = 0,
) -> F32:
    """Welsh-style transfer of ``reference``'s colours onto the L* plane ``target_l``: ab ``(H, W, 2)``."""
    l_t = np.asarray(target_l, dtype=np.float32)
    fit_side = max(16, int(max(l_t.shape[:2]))) if l_t.ndim == 2 else 480
    return KnnTable.fit(reference, samples=samples, fit_side=fit_side, seed=seed).transfer(l_t, radius, eps)
