"""Temporal processing of chroma: the motion-compensated smoother (parameters, numba/numpy/torch kernels, the
streaming and random-access driver) that colorize and deflicker share."""

from chromaflow.core.temporal.kernel_numba import kernel_numba
from chromaflow.core.temporal.kernel_reference import kernel_reference, kernel_torch
from chromaflow.core.temporal.params import SmoothingParams, lowpass_correction, lowpass_correction_torch
from chromaflow.core.temporal.smoother import (
    ABFrame,
    Backend,
    Loader,
    Smoothed,
    TemporalSmoother,
    smooth_sequence,
)

__all__ = [
    "ABFrame",
    "Backend",
    "Loader",
    "Smoothed",
    "SmoothingParams",
    "TemporalSmoother",
    "kernel_numba",
    "kernel_reference",
    "kernel_torch",
    "lowpass_correction",
    "lowpass_correction_torch",
    "smooth_sequence",
]
