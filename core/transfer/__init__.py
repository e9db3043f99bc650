"""Keyframe transfer: colours of reference keyframes carried to the other frames of a sequence.

One module per job:

- :mod:`~chromaflow.core.transfer.keyframes`: :class:`KeyframeTransfer`, the driver hosts and the video engine use;
- :mod:`~chromaflow.core.transfer.modes`: the transfer modes and their check;
- :mod:`~chromaflow.core.transfer.references`: ``N=IMAGE`` specs, references made ready as keyframes;
- :mod:`~chromaflow.core.transfer.frames`, :mod:`~chromaflow.core.transfer.chains`: a sequence's frames, flows and
  chain states, kept for random access from several threads;
- :mod:`~chromaflow.core.transfer.propagate`: flow chains, their confidence, blend, fill and composition;
- :mod:`~chromaflow.core.transfer.bilateral_fill`, :mod:`~chromaflow.core.transfer.guided`: luma-guided fill and
  edge-aware filtering / upsampling;
- :mod:`~chromaflow.core.transfer.global_stats`, :mod:`~chromaflow.core.transfer.knn`: global transfers (Reinhard,
  histogram) and the Welsh-style texture-matched transfer;
- :mod:`~chromaflow.core.transfer.model_fallback`: the automatic colorizer as a colour source;
- :mod:`~chromaflow.core.transfer.lab_arrays`: numpy images in, L* / ab planes out, and back.

**Array layout.** What crosses the package's edge is channels-first, as everywhere in core: ab is ``(2, h, w)``
(:meth:`KeyframeTransfer.ab`, :meth:`KeyframeTransfer.ab_work`, :func:`upsample_ab`, :func:`colorizer_ab`,
:func:`rgb_to_lab_planes`, :func:`lab_planes_to_rgb`, :func:`resize_chw`); L* is ``(h, w)``; RGB images are
``(H, W, 3)`` only where they are image input or output (references, :meth:`KeyframeTransfer.rgb`). The transfer
maths inside (flow positions, OpenCV remaps and filters, bilateral grids) works on ab as ``(h, w, 2)``, OpenCV's
layout, and converts at the edge (:func:`~chromaflow.core.transfer.lab_arrays.hwc` /
:func:`~chromaflow.core.transfer.lab_arrays.chw`); the submodules' own functions use that internal layout.
"""

from chromaflow.core.transfer.keyframes import CACHE_EVERY, FrameInfo, KeyframeTransfer
from chromaflow.core.transfer.lab_arrays import (
    as_rgb_float,
    lab_planes_to_rgb,
    load_rgb,
    resize_chw,
    resize_plane,
    rgb_to_lab_planes,
    to_lightness,
)
from chromaflow.core.transfer.model_fallback import AbPredictor, ColourSource, colorizer_ab
from chromaflow.core.transfer.modes import MODES, PROPAGATING, Mode, check_transfer_mode
from chromaflow.core.transfer.propagate import PropagationParams, upsample_ab
from chromaflow.core.transfer.references import load_references, reference_rgb

__all__ = [
    "CACHE_EVERY",
    "MODES",
    "PROPAGATING",
    "AbPredictor",
    "ColourSource",
    "FrameInfo",
    "KeyframeTransfer",
    "Mode",
    "PropagationParams",
    "as_rgb_float",
    "check_transfer_mode",
    "colorizer_ab",
    "lab_planes_to_rgb",
    "load_references",
    "load_rgb",
    "reference_rgb",
    "resize_chw",
    "resize_plane",
    "rgb_to_lab_planes",
    "to_lightness",
    "upsample_ab",
]
