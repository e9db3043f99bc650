"""The tensor conventions every colour conversion shares: channels at dimension -3, float math in float32 or
float64 (half precision in, half precision out), and one 3x3 matrix product over the channels."""

from collections.abc import Callable

import torch
from torch import Tensor

from chromaflow.core.errors import InputError


def float_op(fn: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """Run ``fn`` in float32 (or float64) and return the input's float dtype."""
    if not x.is_floating_point():
        raise InputError(f"expected a floating-point tensor, got {x.dtype}; convert samples to float first")
    if x.dtype in (torch.float16, torch.bfloat16):
        return fn(x.float()).to(x.dtype)
    return fn(x)


def check_channels(x: Tensor) -> None:
    if x.dim() < 3 or x.shape[-3] != 3:
        raise InputError(
            f"expected 3 colour channels at dimension -3, got a tensor of shape {tuple(x.shape)}"
        )


def apply_matrix(m: Tensor, x: Tensor) -> Tensor:
    """``m @ x`` over the channel dimension -3 (a flat matmul: faster than einsum on the CPU)."""
    shape = x.shape
    flat = x.reshape(*shape[:-3], 3, shape[-2] * shape[-1])
    return (m.to(device=x.device, dtype=x.dtype) @ flat).reshape(shape)
