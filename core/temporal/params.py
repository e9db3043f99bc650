"""The smoothing filter's parameters and the low-pass of its correction (numpy and torch).

The formula they parametrise is in :mod:`chromaflow.core.temporal.smoother`.
"""

import functools
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
    confidence_lowpass: bool = (
        True  # low-pass the correction weighted by the weight behind it (fills flow failures)
    )

    def __post_init__(self) -> None:
        if not isinstance(self.radius, int) or self.radius < 0:
            raise UsageError(f"smoothing radius must be an integer >= 0, got {self.radius!r}")
        if not self.strength >= 0:
            raise UsageError(f"smoothing strength must be >= 0, got {self.strength}")
        if not (self.luma_sigma > 0 and self.fb_sigma > 0 and self.fb_alpha >= 0):
            raise UsageError("luma_sigma and fb_sigma must be > 0 and fb_alpha >= 0")
        if self.temporal_sigma is not None and not self.temporal_sigma > 0:
            raise UsageError(f"temporal_sigma must be > 0 or None, got {self.temporal_sigma}")
        if self.confidence_lowpass not in (True, False):
            raise UsageError(f"confidence_lowpass must be True or False, got {self.confidence_lowpass!r}")
        if not self.correction_scale >= 0:
            raise UsageError(f"correction_scale must be >= 0, got {self.correction_scale}")

    def neighbour_weight(self, distance: int) -> float:
        """The global weight of a neighbour ``distance`` frames away (before confidence and luma similarity)."""
        if self.temporal_sigma is None:
            return float(self.strength)
        return float(self.strength * np.exp(-(distance * distance) / (2.0 * self.temporal_sigma**2)))

    def correction_lowpass(self, shape: tuple[int, int]) -> "Lowpass | None":
        """The low-pass of the correction for ab planes of ``shape`` (a Gaussian of ``correction_scale`` times the
        longer side), or None when off."""
        sigma = self.correction_scale * max(shape)
        if sigma < 0.25:
            return None
        return _lowpass(shape, float(sigma))


@dataclass(frozen=True)
class Lowpass:
    """A Gaussian low-pass as area shrink + blur on the small grid + bilinear enlargement.

    The correction it filters is smooth by design, so it is computed on a grid about ``sigma / 2`` apart instead
    of by a 6-sigma-wide convolution at full size (which cost as much as the smoothing kernel). The blur on the
    small grid is narrowed so that shrink, blur and enlargement together have the variance of the Gaussian asked
    for. numpy runs it with OpenCV (area resize, separable blur with a mirror border); torch with ``rows`` and
    ``cols``, the same shrink-and-blur as one matrix per axis (the tests check they agree).
    """

    shape: tuple[int, int]  # (h, w) of the planes
    small: tuple[int, int]  # (h_small, w_small)
    taps: tuple[F32, F32]  # blur taps on the small grid, along y and along x
    rows: F32  # (h_small, h): area shrink then blur, along y
    cols: F32  # (w_small, w): the same along x


def _lowpass(shape: tuple[int, int], sigma: float) -> Lowpass:
    (m_h, taps_h, rows), (m_w, taps_w, cols) = _axis(shape[0], sigma), _axis(shape[1], sigma)
    return Lowpass(shape, (m_h, m_w), (taps_h, taps_w), rows, cols)


@functools.lru_cache(maxsize=32)
def _axis(n: int, sigma: float) -> tuple[int, F32, F32]:
    """One axis of :class:`Lowpass`: the small size ``m``, the blur taps and the ``(m, n)`` shrink-and-blur."""
    m = max(1, min(n, int(np.ceil(n / max(1.0, sigma / 2.0)))))
    step = n / m
    shrink = np.zeros((m, n), np.float64)
    for i in range(m):
        lo, hi = i * step, (i + 1) * step
        for j in range(int(np.floor(lo)), min(n, int(np.ceil(hi)))):
            shrink[i, j] = (min(hi, j + 1) - max(lo, j)) / step
    # variances add: area box (step^2 / 12) + blur + bilinear enlargement (step^2 / 6) = sigma^2
    sigma_small = np.sqrt(max(sigma * sigma - step * step / 4.0, 0.0)) / step
    taps = np.ones(1)
    if m > 1 and sigma_small > 0.05:
        radius = max(1, int(np.ceil(3.0 * sigma_small)))
        taps = np.exp(-(np.arange(-radius, radius + 1) ** 2) / (2.0 * sigma_small**2))
        taps /= taps.sum()
    radius = (len(taps) - 1) // 2
    blur = np.zeros((m, m))
    period = 2 * (m - 1)
    for i in range(m):
        for t, g in zip(range(-radius, radius + 1), taps, strict=True):
            j = (
                abs(i + t) % period if period else 0
            )  # mirror border without repeating the edge (OpenCV's 101)
            blur[i, j if j < m else period - j] += g
    return m, taps.astype(np.float32), np.ascontiguousarray(blur @ shrink, dtype=np.float32)


def lowpass_correction(ab_c: F32, avg: F32, lowpass: Lowpass | None, weight: F32 | None = None) -> F32:
    """``ab_c + G * (avg - ab_c)`` on numpy planes, ``G`` the :class:`Lowpass`.

    With ``weight`` (the total weight ``1 + sum_m w_m`` behind each average) the low-pass is a normalised
    convolution, ``G * (weight * (avg - ab_c)) / G * weight``: a pixel whose flow failed (weight 1, no correction
    of its own) takes the correction of the confident pixels around it, as flicker is low-frequency, while a
    region where the flow failed throughout keeps its own colour (its correction stays 0).
    """
    if lowpass is None:
        return avg
    corr = (avg - ab_c).astype(np.float32)
    planes = [corr[0], corr[1]] if weight is None else [weight * corr[0], weight * corr[1], weight]
    (h, w), (m_h, m_w), (taps_h, taps_w) = lowpass.shape, lowpass.small, lowpass.taps
    low = np.stack(
        [
            cv2.resize(
                cv2.sepFilter2D(
                    cv2.resize(p, (m_w, m_h), interpolation=cv2.INTER_AREA),
                    -1,
                    taps_w,
                    taps_h,
                    borderType=cv2.BORDER_REFLECT_101,
                ),
                (w, h),
                interpolation=cv2.INTER_LINEAR,
            )
            for p in planes
        ]
    )
    return (ab_c + (low if weight is None else low[:2] / low[2])).astype(np.float32)


def lowpass_correction_torch(
    ab_c: torch.Tensor, avg: torch.Tensor, lowpass: Lowpass | None, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """:func:`lowpass_correction` in torch on the tensors' device."""
    if lowpass is None:
        return avg
    rows = torch.from_numpy(lowpass.rows).to(device=avg.device, dtype=avg.dtype)
    cols = torch.from_numpy(lowpass.cols).to(device=avg.device, dtype=avg.dtype)
    corr = avg - ab_c
    planes = corr if weight is None else torch.cat((weight * corr, weight.unsqueeze(0)))
    small = rows @ planes @ cols.T
    low = torch.nn.functional.interpolate(
        small.unsqueeze(0), size=lowpass.shape, mode="bilinear", align_corners=False
    ).squeeze(0)
    return ab_c + (low if weight is None else low[:2] / low[2])
