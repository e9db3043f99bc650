"""Frame access shared by the VapourSynth filters: planes as arrays, writing code values back, any frame as
R'G'B', and the engine's errors as ``vs.Error`` naming the filter (and the frame)."""

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch
import vapoursynth as vs
from torch import Tensor

from chromaflow.core.colour import YCbCrFormat, upsample_chroma, ycbcr_to_rgb
from chromaflow.core.errors import ChromaflowError
from chromaflow.filters.vapoursynth.colour import ClipLayout, ColourDescription


@contextmanager
def reported(func: str, n: int | None = None) -> Iterator[None]:
    """Turn the engine's errors into ``vs.Error`` naming the function (and the frame, while rendering)."""
    try:
        yield
    except vs.Error:
        raise
    except ChromaflowError as err:
        where = f"chromaflow.{func}" + (f" (frame {n})" if n is not None else "")
        raise vs.Error(f"{where}: {err}") from err


def read_plane(frame: vs.VideoFrame, p: int) -> np.ndarray:
    return np.asarray(frame[p])


def store_plane(frame: vs.VideoFrame, p: int, codes: Tensor, layout_bits: int, is_float: bool) -> None:
    """Write code values into plane ``p`` of a writable frame: float values rounded and clamped for integer planes,
    integer values (already in range) as they are."""
    out = read_plane(frame, p)
    if is_float:
        out[...] = codes.to(torch.float32).cpu().numpy()
    elif not codes.is_floating_point():  # already rounded and clamped (ycbcr_chroma's integer codes)
        out[...] = codes.cpu().numpy()
    else:
        peak = (1 << layout_bits) - 1
        out[...] = codes.round().clamp_(0, peak).to(torch.int32).cpu().numpy()


def luma_unit(y: np.ndarray, fmt: YCbCrFormat, device: torch.device) -> Tensor:
    """Y' code values as E'Y (float32, nominally [0, 1]) on ``device``."""
    ys, yo, _, _ = fmt.scale_offset()
    t = torch.from_numpy(y.astype(np.float32)).to(device)  # astype copies: the frame's memory is read-only
    return (t - yo) / ys if (ys, yo) != (1.0, 0.0) else t


def rgb_unit(frame: vs.VideoFrame, layout: ClipLayout, device: torch.device) -> Tensor:
    """R'G'B' planes of a frame as a float32 (3, H, W) tensor in [0, 1] on ``device``."""
    planes = np.stack([read_plane(frame, p) for p in range(3)])
    t = torch.from_numpy(planes).to(device=device, dtype=torch.float32)
    return t if layout.is_float else t / layout.peak


def frame_rgb(frame: vs.VideoFrame, layout: ClipLayout, desc: ColourDescription) -> Tensor:
    """Any GRAY/YUV/RGB frame as sRGB-encoded R'G'B' (3, H, W) float32 in [0, 1] on the CPU.

    Y'CbCr is decoded with the frame's own matrix, range and chroma siting; gray becomes R' = G' = B' = E'Y.
    """
    cpu = torch.device("cpu")
    if layout.family == vs.RGB:
        return rgb_unit(frame, layout, cpu).clamp(0.0, 1.0)
    fmt = desc.ycbcr(layout)
    y = torch.from_numpy(read_plane(frame, 0).astype(np.float32))
    if layout.family == vs.GRAY:
        return luma_unit(read_plane(frame, 0), fmt, cpu).clamp(0.0, 1.0).expand(3, -1, -1)
    chroma = torch.from_numpy(np.stack([read_plane(frame, 1), read_plane(frame, 2)]).astype(np.float32))
    if layout.factors != (1, 1):
        chroma = upsample_chroma(chroma, (layout.height, layout.width), layout.factors, desc.siting)
    return ycbcr_to_rgb(torch.cat((y[None], chroma)), fmt, clip=True)
