"""The engine: colour science, devices, models, transfer, smoothing, faces, scoring, metrics, training.

Core imports torch, numpy, numba and OpenCV only; never a host library (vapoursynth, av, bpy, obspython).
"""

from chromaflow.core.errors import (
    ChromaflowError,
    DeviceError,
    InputError,
    ModelError,
    OutputError,
)

__all__ = ["ChromaflowError", "DeviceError", "InputError", "ModelError", "OutputError"]
