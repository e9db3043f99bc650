"""The automatic colorizer as a colour source for frames keyframes do not reach (and for the model-only engine).

A colorizer is either an object with ``predict_ab(l: Tensor (N, 1, h, w)) -> Tensor (N, 2, h, w)``
(:class:`chromaflow.core.colorizer.Colorizer`) or a plain callable ``L* (h, w) -> ab``, which may answer
channels-first ``(2, h, w)`` or ``(h, w, 2)``.
"""

from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from chromaflow.core.arrays import F32
from chromaflow.core.errors import InputError
from chromaflow.core.hints import Hint


@runtime_checkable
class AbPredictor(Protocol):
    """A colour model: L* ``(N, 1, h, w)`` in, ab ``(N, 2, h, w)`` out, optionally steered by hints in pixels of a
    ``hint_size`` frame (:class:`chromaflow.core.colorizer.Colorizer` is one)."""

    def predict_ab(
        self, l: torch.Tensor, hints: Sequence[Hint] | None = None, hint_size: tuple[int, int] | None = None
    ) -> torch.Tensor: ...


# What the engines accept as automatic colour: a model, or a plain callable ``L* (h, w) -> ab``.
ColourSource = AbPredictor | Callable[[F32], Any]


def colorizer_ab(colorizer: ColourSource, l_work: F32) -> F32:
    """ab ``(2, h, w)`` float32 of the L* plane ``l_work`` ``(h, w)`` from a colorizer (either kind)."""
    if isinstance(colorizer, AbPredictor):
        with torch.inference_mode():
            out = colorizer.predict_ab(torch.from_numpy(np.ascontiguousarray(l_work))[None, None])
        return np.ascontiguousarray(out[0].float().cpu().numpy(), dtype=np.float32)
    ab = np.asarray(colorizer(l_work), dtype=np.float32)
    if ab.shape == (2, *l_work.shape):
        return np.ascontiguousarray(ab)
    if ab.shape == (*l_work.shape, 2):
        return np.ascontiguousarray(ab.transpose(2, 0, 1))
    raise InputError(f"the colorizer returned ab of shape {ab.shape} for L* of shape {l_work.shape}")
