"""Simulated user hints drawn from the ground truth, as in SIGGRAPH17, so that hint-following is learned and
measured."""

import numpy as np
import torch
from torch import Tensor


def sample_hints(
    ab: Tensor, rng: np.random.Generator, free_fraction: float = 0.5, mean_points: float = 8.0
) -> tuple[Tensor, Tensor]:
    """Simulated user hints from ground-truth ab (N, 2, S, S): (ab_hint, mask).

    A fraction ``free_fraction`` of the images get none; the others a geometric number of points (mean
    ``mean_points``), each a square of 1 to 5 pixels carrying the mean ab of the ground truth under it.
    """
    n, _, h, w = ab.shape
    hint = torch.zeros_like(ab)
    mask = torch.zeros((n, 1, h, w), dtype=ab.dtype, device=ab.device)
    for i in range(n):
        if rng.random() < free_fraction:
            continue
        count = min(int(rng.geometric(1.0 / mean_points)), 64)
        for _ in range(count):
            p = int(rng.integers(1, 6))
            y, x = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
            hint[i, :, y : y + p, x : x + p] = ab[i, :, y : y + p, x : x + p].mean(dim=(1, 2), keepdim=True)
            mask[i, :, y : y + p, x : x + p] = 1.0
    return hint, mask


def points_hints(ab: Tensor, points: int, rng: np.random.Generator, patch: int = 3) -> tuple[Tensor, Tensor]:
    """Exactly ``points`` hints per image, each a ``patch`` x ``patch`` square of the ground truth's mean ab."""
    n, _, h, w = ab.shape
    hint = torch.zeros_like(ab)
    mask = torch.zeros((n, 1, h, w), dtype=ab.dtype, device=ab.device)
    for i in range(n):
        for _ in range(points):
            y, x = int(rng.integers(h - patch + 1)), int(rng.integers(w - patch + 1))
            hint[i, :, y : y + patch, x : x + patch] = ab[i, :, y : y + patch, x : x + patch].mean(
                dim=(1, 2), keepdim=True
            )
            mask[i, :, y : y + patch, x : x + patch] = 1.0
    return hint, mask
