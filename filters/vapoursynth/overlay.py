"""The deepfake overlay painted into a frame of any format: only the pixels the overlay drew change, each written
as a conversion of the whole drawn frame would write it, the rest of the frame stays bit for bit."""

import cv2
import numpy as np
import torch
import vapoursynth as vs
from torch import Tensor

from chromaflow.core.colour import downsample_chroma, rgb_to_ycbcr
from chromaflow.filters.vapoursynth.colour import ClipLayout, ColourDescription
from chromaflow.filters.vapoursynth.frames import read_plane

OVERLAY_TILE = 64  # overlay pixels are converted in tiles of this side (a multiple of every chroma factor)


def paint_overlay(
    fout: vs.VideoFrame, rgb8: np.ndarray, drawn: np.ndarray, layout: ClipLayout, desc: ColourDescription
) -> None:
    """Write the overlay's pixels (where ``drawn`` differs from ``rgb8``) into the frame; others stay bit for bit.

    Only tiles holding drawn pixels are converted, each with a margin wider than the chroma filter's reach (on the
    chroma grid), so the written values are those a conversion of the whole frame gives, at a fraction of its
    cost (boxes and labels cover little of a frame)."""
    r, g, b = cv2.split(cv2.absdiff(drawn, rgb8))
    changed = cv2.max(cv2.max(r, g), b) > 0
    t = OVERLAY_TILE
    h, w = changed.shape
    hits = torch.nn.functional.max_pool2d(
        torch.from_numpy(changed)[None, None].to(torch.float32), t, stride=t, ceil_mode=True
    )[0, 0]
    for ty, tx in hits.nonzero().tolist():
        _paint_tile(
            fout, drawn, changed, layout, desc, (ty * t, min(h, ty * t + t)), (tx * t, min(w, tx * t + t))
        )


def _paint_tile(
    fout: vs.VideoFrame,
    drawn: np.ndarray,
    changed: np.ndarray,
    layout: ClipLayout,
    desc: ColourDescription,
    rows: tuple[int, int],
    cols: tuple[int, int],
) -> None:
    """Convert the drawn pixels of one tile (``rows``, ``cols``: ``[start, stop)``, on the chroma grid)."""
    fh, fw = layout.factors
    y0, y1 = _widen(rows, fh, layout.height)
    x0, x1 = _widen(cols, fw, layout.width)
    hit = np.zeros((y1 - y0, x1 - x0), dtype=bool)  # the tile's drawn pixels, in the widened region
    hit[rows[0] - y0 : rows[1] - y0, cols[0] - x0 : cols[1] - x0] = changed[
        rows[0] : rows[1], cols[0] : cols[1]
    ]
    hit_t = torch.from_numpy(hit)
    rgb = (
        torch.from_numpy(np.ascontiguousarray(drawn[y0:y1, x0:x1])).permute(2, 0, 1).to(torch.float32) / 255.0
    )
    if layout.family == vs.RGB:
        scale = 1.0 if layout.is_float else float(layout.peak)
        for p in range(3):
            read_plane(fout, p)[y0:y1, x0:x1][hit] = _coded(rgb[p][hit_t] * scale, layout).numpy()
        return
    ycc = rgb_to_ycbcr(rgb, desc.ycbcr(layout))
    read_plane(fout, 0)[y0:y1, x0:x1][hit] = _coded(ycc[0][hit_t], layout).numpy()
    if layout.family == vs.GRAY:
        return
    chroma = ycc[1:3]
    mask = hit_t
    if layout.factors != (1, 1):
        chroma = downsample_chroma(chroma, layout.factors, desc.siting)
        pooled = torch.nn.functional.max_pool2d(
            hit_t[None, None].float(), (fh, fw), stride=(fh, fw), ceil_mode=True
        )[0, 0]
        mask = pooled[: chroma.shape[1], : chroma.shape[2]] > 0
    cy, cx = y0 // fh, x0 // fw
    mask_np = mask.numpy()
    for p in (1, 2):
        plane = read_plane(fout, p)[cy : cy + chroma.shape[1], cx : cx + chroma.shape[2]]
        plane[mask_np] = _coded(chroma[p - 1][mask], layout).numpy()


def _widen(span: tuple[int, int], factor: int, size: int) -> tuple[int, int]:
    """``span`` widened by more than the chroma filter's reach, on the chroma grid (``start`` a multiple of
    ``factor``; ``stop`` too, or the frame's end)."""
    margin = 2 * factor + 2
    start = max(0, span[0] - margin) // factor * factor
    stop = min(size, -(-(span[1] + margin) // factor) * factor)
    return start, stop


def _coded(values: Tensor, layout: ClipLayout) -> Tensor:
    if layout.is_float:
        return values.to(torch.float32)
    return values.round().clamp(0, layout.peak).to(torch.int32)
