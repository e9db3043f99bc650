"""L* of a clip's frames, read as the colorize renderer reads them, for the core engine that asks for frames by
index (the frame being rendered, its neighbours for smoothing, the previous one for chains and scene cuts)."""

import numpy as np
import vapoursynth as vs

from chromaflow.core.colorizer import ycbcr_lightness
from chromaflow.core.colour import lightness
from chromaflow.core.lru import LRUCache
from chromaflow.filters.vapoursynth.colour import ClipLayout, ColourDescription, describe
from chromaflow.filters.vapoursynth.frames import frame_rgb, read_plane


def frame_lightness(frame: vs.VideoFrame, layout: ClipLayout, desc: ColourDescription) -> np.ndarray:
    """L* ``(H, W)`` float32 of a frame, as the engine reads it: Y' through the core's table, RGB through Lab."""
    if layout.family == vs.RGB:
        return lightness(frame_rgb(frame, layout, desc))[0].numpy()
    return ycbcr_lightness(read_plane(frame, 0), desc.ycbcr(layout)).numpy()


class LumaSource:
    """The engine's frame source: ``luma(k)`` is frame ``k``'s L* ``(H, W)`` float32.

    Each frame is converted once and kept in a bounded LRU: the renderer converts the frame it holds
    (:meth:`of_frame`), so the engine asking for a frame just rendered (its own, or the previous one for a chain or
    a scene cut) gets it without a nested ``get_frame``; only frames not seen lately are fetched from the clip, and
    a frame one thread converts is waited for by the others.
    """

    def __init__(self, clip: vs.VideoNode, layout: ClipLayout, func: str, capacity: int = 32) -> None:
        self.clip = clip
        self.layout = layout
        self.func = func
        self._cache = LRUCache(capacity)

    def of_frame(self, k: int, frame: vs.VideoFrame, desc: ColourDescription) -> np.ndarray:
        """Frame ``k``'s L*, converted from ``frame`` (frame ``k`` of the clip, described by ``desc``) if not kept."""
        return self._cache.get_or_compute(k, lambda: frame_lightness(frame, self.layout, desc))

    def __call__(self, k: int) -> np.ndarray:
        return self._cache.get_or_compute(k, lambda: self._fetch(k))

    def _fetch(self, k: int) -> np.ndarray:
        frame = self.clip.get_frame(k)
        return frame_lightness(frame, self.layout, describe(frame.props, self.layout, self.func, k))
