"""The smoothing filter's maths in plain numpy (the reference the numba kernel is tested against) and in torch
(for ab planes that stay on a CUDA device)."""

from collections.abc import Sequence
from typing import Any, Literal, overload

import numpy as np
import torch
from numpy.typing import NDArray

from chromaflow.core.arrays import F32
from chromaflow.core.temporal.params import SmoothingParams

# ---------------------------------------------------------------------------------------------- kernels
# Shapes: centre luma (h, w), centre ab (2, h, w), neighbour luma (K, h, w), neighbour ab (K, 2, h, w),
# flows (K, h, w, 2): fwd maps centre pixels into neighbour k, bwd maps neighbour k's pixels into the centre,
# weights (K,): the neighbours' global weights (0 = unused).


def _bilinear_np(
    plane: NDArray[np.floating[Any]],
    y0: NDArray[np.intp],
    x0: NDArray[np.intp],
    ty: NDArray[Any],
    tx: NDArray[Any],
) -> NDArray[np.float64]:
    p = plane.astype(np.float64, copy=False)
    return (
        (1 - tx) * (1 - ty) * p[y0, x0]
        + tx * (1 - ty) * p[y0, x0 + 1]
        + (1 - tx) * ty * p[y0 + 1, x0]
        + tx * ty * p[y0 + 1, x0 + 1]
    )


@overload
def kernel_reference(
    l_c: F32,
    ab_c: F32,
    l_n: F32 | Sequence[F32],
    ab_n: F32 | Sequence[F32],
    fwd: F32 | Sequence[F32],
    bwd: F32 | Sequence[F32],
    weights: F32,
    params: SmoothingParams,
    *,
    return_weight: Literal[False] = False,
) -> F32: ...


@overload
def kernel_reference(
    l_c: F32,
    ab_c: F32,
    l_n: F32 | Sequence[F32],
    ab_n: F32 | Sequence[F32],
    fwd: F32 | Sequence[F32],
    bwd: F32 | Sequence[F32],
    weights: F32,
    params: SmoothingParams,
    *,
    return_weight: Literal[True],
) -> tuple[F32, F32]: ...


def kernel_reference(
    l_c: F32,
    ab_c: F32,
    l_n: F32 | Sequence[F32],
    ab_n: F32 | Sequence[F32],
    fwd: F32 | Sequence[F32],
    bwd: F32 | Sequence[F32],
    weights: F32,
    params: SmoothingParams,
    *,
    return_weight: bool = False,
) -> F32 | tuple[F32, F32]:
    """Plain numpy implementation of the same maths as the numba kernel (float64 inside, float32 out; with
    ``return_weight`` also the total weight ``1 + sum_m w_m``)."""
    h, w = l_c.shape
    l_n, ab_n = (
        np.asarray(l_n, np.float32).reshape(-1, h, w),
        np.asarray(ab_n, np.float32).reshape(-1, 2, h, w),
    )
    fwd, bwd = (
        np.asarray(fwd, np.float32).reshape(-1, h, w, 2),
        np.asarray(bwd, np.float32).reshape(-1, h, w, 2),
    )
    gy, gx = np.mgrid[0:h, 0:w].astype(np.float64)
    acc = ab_c.astype(np.float64).copy()
    wsum = np.ones((h, w), dtype=np.float64)
    for k in range(l_n.shape[0]):
        if weights[k] <= 0:
            continue
        fx = fwd[k, ..., 0].astype(np.float64)
        fy = fwd[k, ..., 1].astype(np.float64)
        sx, sy = gx + fx, gy + fy
        inside = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
        sxc, syc = np.clip(sx, 0, w - 1), np.clip(sy, 0, h - 1)
        x0 = np.minimum(sxc.astype(np.intp), w - 2)
        y0 = np.minimum(syc.astype(np.intp), h - 2)
        tx, ty = sxc - x0, syc - y0
        bx = _bilinear_np(bwd[k, ..., 0], y0, x0, ty, tx)
        by = _bilinear_np(bwd[k, ..., 1], y0, x0, ty, tx)
        err = (fx + bx) ** 2 + (fy + by) ** 2
        mag = fx**2 + fy**2 + bx**2 + by**2
        conf = np.exp(-err / (params.fb_sigma**2 + params.fb_alpha * mag))
        d = l_c.astype(np.float64) - _bilinear_np(l_n[k], y0, x0, ty, tx)
        wt = float(weights[k]) * conf * np.exp(-d * d / (2.0 * params.luma_sigma**2))
        wt = np.where(inside, wt, 0.0)
        for c in range(2):
            acc[c] += wt * _bilinear_np(ab_n[k, c], y0, x0, ty, tx)
        wsum += wt
    avg = (acc / wsum).astype(np.float32)
    return (avg, wsum.astype(np.float32)) if return_weight else avg


@overload
def kernel_torch(
    l_c: torch.Tensor,
    ab_c: torch.Tensor,
    l_n: torch.Tensor,
    ab_n: torch.Tensor,
    fwd: torch.Tensor,
    bwd: torch.Tensor,
    weights: torch.Tensor,
    params: SmoothingParams,
    *,
    return_weight: Literal[False] = False,
) -> torch.Tensor: ...


@overload
def kernel_torch(
    l_c: torch.Tensor,
    ab_c: torch.Tensor,
    l_n: torch.Tensor,
    ab_n: torch.Tensor,
    fwd: torch.Tensor,
    bwd: torch.Tensor,
    weights: torch.Tensor,
    params: SmoothingParams,
    *,
    return_weight: Literal[True],
) -> tuple[torch.Tensor, torch.Tensor]: ...


def kernel_torch(
    l_c: torch.Tensor,
    ab_c: torch.Tensor,
    l_n: torch.Tensor,
    ab_n: torch.Tensor,
    fwd: torch.Tensor,
    bwd: torch.Tensor,
    weights: torch.Tensor,
    params: SmoothingParams,
    *,
    return_weight: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """The same maths in torch on the tensors' device (float32; bilinear sampling by gathering the 4 taps; with
    ``return_weight`` also the total weight ``1 + sum_m w_m``)."""
    k_count = l_n.shape[0]
    h, w = l_c.shape
    if k_count == 0:
        ones = torch.ones((h, w), dtype=ab_c.dtype, device=ab_c.device)
        return (ab_c.clone(), ones) if return_weight else ab_c.clone()
    dev = l_c.device
    # sample positions in float64, as the numba kernel, so in/out-of-frame and tap choices agree exactly
    f64 = torch.float64
    gy, gx = torch.meshgrid(
        torch.arange(h, device=dev, dtype=f64), torch.arange(w, device=dev, dtype=f64), indexing="ij"
    )
    sx = gx + fwd[..., 0].to(f64)
    sy = gy + fwd[..., 1].to(f64)
    inside = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
    sx = sx.clamp(0, w - 1)
    sy = sy.clamp(0, h - 1)
    x0 = sx.floor().clamp(max=w - 2)
    y0 = sy.floor().clamp(max=h - 2)
    tx = (sx - x0).to(l_c.dtype).unsqueeze(1)
    ty = (sy - y0).to(l_c.dtype).unsqueeze(1)
    planes = torch.cat((bwd.permute(0, 3, 1, 2), l_n.unsqueeze(1), ab_n), dim=1).flatten(2)  # (K, 5, h*w)
    base = (y0.long() * w + x0.long()).flatten(1).unsqueeze(1).expand(-1, planes.shape[1], -1)

    def tap(offset: int) -> torch.Tensor:
        return planes.gather(2, base + offset).view(k_count, -1, h, w)

    sampled = (
        (1 - tx) * (1 - ty) * tap(0) + tx * (1 - ty) * tap(1) + (1 - tx) * ty * tap(w) + tx * ty * tap(w + 1)
    )
    bx, by, lw = sampled[:, 0], sampled[:, 1], sampled[:, 2]
    fx, fy = fwd[..., 0], fwd[..., 1]
    err = (fx + bx) ** 2 + (fy + by) ** 2
    mag = fx**2 + fy**2 + bx**2 + by**2
    conf = torch.exp(-err / (params.fb_sigma**2 + params.fb_alpha * mag))
    d = l_c.unsqueeze(0) - lw
    wt = weights.view(-1, 1, 1) * conf * torch.exp(-d * d / (2.0 * params.luma_sigma**2))
    wt = torch.where(inside & (weights.view(-1, 1, 1) > 0), wt, torch.zeros_like(wt))
    acc = ab_c + (wt.unsqueeze(1) * sampled[:, 3:5]).sum(dim=0)
    total = 1.0 + wt.sum(dim=0)
    avg = acc / total.unsqueeze(0)
    return (avg, total) if return_weight else avg
