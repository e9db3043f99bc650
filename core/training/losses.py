"""What training minimises beyond the Huber term: soft-encoded bin targets, their rebalancing weights, and the
PatchGAN critic."""

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chromaflow.core.colour import rgb_to_lab
from chromaflow.core.training.data import ImageBank

AB_NORM = 110.0


class PatchCritic(nn.Module):
    """PatchGAN critic (Isola et al. 2017) on (L', a', b') at the generator's output resolution."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.InstanceNorm2d(2 * width, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * width, 4 * width, 3, 1, 1),
            nn.InstanceNorm2d(4 * width, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * width, 1, 3, 1, 1),
        )

    def forward(self, l: Tensor, ab: Tensor) -> Tensor:
        return self.body(torch.cat(((l - 50) / 100, ab / AB_NORM), dim=1))


def soft_targets(ab: Tensor, centres: Tensor, sigma: float = 8.0) -> Tensor:
    """Gaussian soft-encoding of ab (N, 2, h, w) over bin centres (Q, 2): (N, Q, h, w) summing to one."""
    d2 = ((ab.unsqueeze(1) - centres.view(1, -1, 2, 1, 1)) ** 2).sum(dim=2)
    return torch.softmax(-d2 / (2 * sigma**2), dim=1)


def bin_weights(
    centres: Tensor, bank: ImageBank, seed: int, batch: int, lam: float, batches: int = 32
) -> Tensor:
    """Per-bin CE weights (Zhang et al. 2016, eq. 4): ((1 - lam) * prior + lam / Q)^-1, normalised so the
    prior-weighted mean is one. The prior is the Gaussian-smoothed bin histogram of ``batches`` batches drawn with
    their own seeds (independent of the training batches)."""
    centres = centres.float().cpu()
    hist = torch.zeros(centres.shape[0])
    for k in range(batches):
        rng = np.random.default_rng([seed, 1_000_000 + k])
        ab = rgb_to_lab(bank.sample(rng, batch))[:, 1:]
        ab = F.avg_pool2d(ab, 4).permute(0, 2, 3, 1).reshape(-1, 2)
        nearest = torch.cdist(ab, centres).argmin(dim=1)
        hist += torch.bincount(nearest, minlength=centres.shape[0]).float()
    prior = hist / hist.sum()
    side = round(math.sqrt(centres.shape[0]))
    prior = blur_grid(prior.view(1, 1, side, side), 1.0).flatten()
    prior = prior / prior.sum()
    weights = 1.0 / ((1 - lam) * prior + lam / centres.shape[0])
    return weights / (prior * weights).sum()


def blur_grid(grid: Tensor, sigma: float) -> Tensor:
    """A separable Gaussian blur of a (1, 1, H, W) grid with replicated edges."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=grid.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, 1, -1)
    grid = F.conv2d(F.pad(grid, (radius, radius, 0, 0), mode="replicate"), k)
    return F.conv2d(F.pad(grid, (0, 0, radius, radius), mode="replicate"), k.transpose(2, 3))
