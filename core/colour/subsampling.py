"""Chroma subsampling in torch: subsampled chroma planes brought to the luma grid and back, at the chroma sample
positions ITU-T H.273 names (``chroma_sample_loc_type``; :class:`chromaflow.core.colour.tags.ChromaLocation` maps
its codes to the :data:`Siting` names used here)."""

from functools import lru_cache
from typing import Literal

import torch
from torch import Tensor

from chromaflow.core.colour.subsampling_cpu import Taps, matrix_taps, resample_taps
from chromaflow.core.colour.tensor_ops import float_op
from chromaflow.core.errors import InputError, UsageError

# (horizontal, vertical) alignment of the first chroma sample relative to the luma grid. "left" is the MPEG-2/H.264
# default (type 0).
Siting = Literal["left", "center", "topleft", "top", "bottomleft", "bottom"]
_SITING: dict[str, tuple[str, str]] = {
    "left": ("start", "middle"),
    "center": ("middle", "middle"),
    "topleft": ("start", "start"),
    "top": ("middle", "start"),
    "bottomleft": ("start", "end"),
    "bottom": ("middle", "end"),
}


def _offset(alignment: str, factor: int) -> float:
    """Luma coordinate of chroma sample 0 for a subsampling factor."""
    return {"start": 0.0, "middle": (factor - 1) / 2.0, "end": float(factor - 1)}[alignment]


@lru_cache(maxsize=64)
def _resample_matrix(n_out: int, n_in: int, factor: int, offset: float, up: bool) -> Tensor:
    """Dense 1-D resampling matrix (float64, CPU): linear interpolation up, tent filter down."""
    if up:
        u = ((torch.arange(n_out, dtype=torch.float64) - offset) / factor).clamp(0, n_in - 1)
        i0 = u.floor().long()
        i1 = (i0 + 1).clamp(max=n_in - 1)
        w1 = u - i0
        m = torch.zeros(n_out, n_in, dtype=torch.float64)
        rows = torch.arange(n_out)
        m.index_put_((rows, i0), 1 - w1, accumulate=True)
        m.index_put_((rows, i1), w1, accumulate=True)
        return m
    centres = factor * torch.arange(n_out, dtype=torch.float64) + offset
    x = torch.arange(n_in, dtype=torch.float64)
    w = (1 - (x[None, :] - centres[:, None]).abs() / factor).clamp(min=0)
    return w / w.sum(dim=1, keepdim=True)


@lru_cache(maxsize=64)
def _down_taps(n_out: int, n_in: int, factor: int, offset: float) -> Taps:
    """The downsampling matrix's non-zero taps (:func:`~chromaflow.core.colour.subsampling_cpu.matrix_taps`)."""
    return matrix_taps(_resample_matrix(n_out, n_in, factor, offset, False))


def _resample(
    plane: Tensor, shape: tuple[int, int], factors: tuple[int, int], siting: str, up: bool
) -> Tensor:
    if siting not in _SITING:
        raise UsageError(f"unknown chroma siting {siting!r}: use one of {', '.join(_SITING)}")
    fh, fw = factors
    h_align, v_align = _SITING[siting]
    h_out, w_out = shape
    h_in, w_in = plane.shape[-2:]

    def op(v: Tensor) -> Tensor:
        if not up and v.device.type == "cpu" and v.dtype == torch.float32 and not v.requires_grad:
            rows = _down_taps(h_out, h_in, fh, _offset(v_align, fh))
            cols = _down_taps(w_out, w_in, fw, _offset(h_align, fw))
            return resample_taps(v, rows, cols)  # the tent's few taps: a tenth of the dense products' time
        mh = _resample_matrix(h_out, h_in, fh, _offset(v_align, fh), up).to(v.device, v.dtype)
        mw = _resample_matrix(w_out, w_in, fw, _offset(h_align, fw), up).to(v.device, v.dtype)
        return mh @ v @ mw.T

    return float_op(op, plane)


def upsample_chroma(
    chroma: Tensor, luma_shape: tuple[int, int], factors: tuple[int, int] = (2, 2), siting: Siting = "left"
) -> Tensor:
    """Bring subsampled chroma planes ``(..., h, w)`` to ``luma_shape`` by linear interpolation at their sites.

    ``factors`` is (vertical, horizontal): (2, 2) for 4:2:0, (1, 2) for 4:2:2, (1, 1) for 4:4:4.
    """
    expected = (-(-luma_shape[0] // factors[0]), -(-luma_shape[1] // factors[1]))
    if tuple(chroma.shape[-2:]) != expected:
        raise InputError(
            f"chroma planes are {tuple(chroma.shape[-2:])} but luma {luma_shape} with factors {factors} "
            f"needs {expected}"
        )
    return _resample(chroma, luma_shape, factors, siting, up=True)


def downsample_chroma(chroma: Tensor, factors: tuple[int, int] = (2, 2), siting: Siting = "left") -> Tensor:
    """Subsample full-resolution chroma planes ``(..., H, W)`` with a tent filter centred on each chroma site."""
    h, w = chroma.shape[-2:]
    shape = (-(-h // factors[0]), -(-w // factors[1]))
    return _resample(chroma, shape, factors, siting, up=False)
