"""The join L* + ab -> in-gamut R'G'B' -> Cb, Cr as one branch-free pointwise function, compiled for the GPU.

:func:`chromaflow.core.colorizer.join_in_gamut` bisects only the out-of-gamut pixels it finds with ``nonzero``:
right for eager tensors (little work), wrong for a GPU, where every one of its hundreds of operators is a kernel
launch over full-frame temporaries and ``nonzero`` waits for the device (the roofline section of
``benchmarks/README.md`` counts its operators and the bytes it moves per frame). Here every pixel runs the same
fixed bisection under ``torch.where``: no data-dependent shapes, so ``torch.compile`` fuses the whole join into
one kernel that reads L* and ab once and writes Cb, Cr once. The extra arithmetic is cheap on a GPU; eager, this
form would be slow, so it is only used compiled.

The maths are those of :mod:`chromaflow.core.gamut_join_cpu` (tested against each other).
"""

import logging
import os
from collections.abc import Callable

import torch
from torch import Tensor

from chromaflow.core.colour import D65_WHITE, LAB_EPSILON, LAB_KAPPA, XYZ_TO_LINEAR_RGB, rgb_to_ypbpr_matrix

log = logging.getLogger("chromaflow.join")

_TO_RGB: list[list[float]] = XYZ_TO_LINEAR_RGB.tolist()  # Python floats: constants inside the compiled kernel
ChromaFn = Callable[[Tensor, Tensor, Tensor, Tensor, float, int], Tensor]


def _encoded_rgb(l_star: Tensor, a: Tensor, b: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    fy = (l_star + 16.0) / 116.0
    out = []
    for f, w in ((fy + a / 500.0, D65_WHITE[0]), (fy - b / 200.0, D65_WHITE[2])):
        cube = f * f * f
        out.append(torch.where(cube > LAB_EPSILON, cube, (116.0 * f - 16.0) / LAB_KAPPA) * w)
    x, z = out
    y = torch.where(l_star > LAB_KAPPA * LAB_EPSILON, fy * fy * fy, l_star / LAB_KAPPA) * D65_WHITE[1]
    rgb = []
    for row in _TO_RGB:
        lin = row[0] * x + row[1] * y + row[2] * z
        rgb.append(
            torch.where(lin <= 0.0031308, lin * 12.92, 1.055 * lin.clamp(min=0.0031308) ** (1 / 2.4) - 0.055)
        )
    return rgb[0], rgb[1], rgb[2]


def _inside(r: Tensor, g: Tensor, b: Tensor, tol: float) -> Tensor:
    lo, hi = -tol, 1.0 + tol
    return (r >= lo) & (r <= hi) & (g >= lo) & (g <= hi) & (b >= lo) & (b <= hi)


def chroma_pointwise(
    l_star: Tensor, ab: Tensor, chroma_rows: Tensor, scale_offset: Tensor, tolerance: float, steps: int
) -> Tensor:
    """Unrounded Cb, Cr ``(N, 2, H, W)`` for L* ``(N, 1, H, W)`` and ab ``(N, 2, H, W)``, branch-free.

    ``chroma_rows``: ``(2, 3)`` R'G'B' -> (Pb, Pr) rows; ``scale_offset``: ``(2,)`` code-value scale and offset.
    """
    l0, a, b = l_star[:, 0], ab[:, 0], ab[:, 1]
    r, g, bl = _encoded_rgb(l0, a, b)
    inside = _inside(r, g, bl, tolerance)
    lo = torch.zeros_like(l0)
    hi = torch.ones_like(l0)
    for _ in range(steps):
        mid = (lo + hi) / 2
        ok = _inside(*_encoded_rgb(l0, a * mid, b * mid), tolerance)
        lo = torch.where(ok, mid, lo)
        hi = torch.where(ok, hi, mid)
    scale = torch.where(inside, torch.ones_like(lo), lo)
    r, g, bl = (c.clamp(0.0, 1.0) for c in _encoded_rgb(l0, a * scale, b * scale))
    rows = chroma_rows.to(l0.dtype)
    cb = rows[0, 0] * r + rows[0, 1] * g + rows[0, 2] * bl
    cr = rows[1, 0] * r + rows[1, 1] * g + rows[1, 2] * bl
    return torch.stack((cb, cr), dim=1) * scale_offset[0] + scale_offset[1]


_state: dict[str, ChromaFn | bool] = {}


def fused_chroma(
    l_star: Tensor, ab: Tensor, matrix: str, scale: float, offset: float, tolerance: float, steps: int
) -> Tensor | None:
    """:func:`chroma_pointwise` compiled by ``torch.compile``, on CUDA tensors; None where it does not apply (not
    CUDA, ``CHROMAFLOW_COMPILE=0``, or compiling failed once in this process: the caller keeps the eager join).
    The first call compiles (some seconds)."""
    if (
        l_star.device.type != "cuda"
        or os.environ.get("CHROMAFLOW_COMPILE", "1") == "0"
        or _state.get("failed")
    ):
        return None
    fn = _state.get("fn")
    if not callable(fn):
        fn = _state["fn"] = torch.compile(chroma_pointwise, dynamic=True)
    rows = rgb_to_ypbpr_matrix(matrix)[1:].to(device=l_star.device, dtype=torch.float32)
    scale_offset = torch.tensor((scale, offset), device=l_star.device, dtype=torch.float32)
    try:
        return fn(l_star, ab, rows, scale_offset, tolerance, steps)
    except Exception as err:  # any compiler failure (no Triton, unsupported GPU) means: keep the eager join
        log.warning("torch.compile of the colour join failed (%s); using the eager join", err)
        _state["failed"] = True
        return None
