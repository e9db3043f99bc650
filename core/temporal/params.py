"""The smoothing filter's parameters and the low-pass of its correction (numpy and torch).

The formula they parametrise is in :mod:`chromaflow.core.temporal.smoother`.
"""

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from chromaflow.core.arrays import F32
from chromaflow.core.errors import UsageError
from chromaflow.core.flow import FB_ALPHA, FB_SIGMA


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
