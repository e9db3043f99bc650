"""VapourSynth ``deflicker``: remove colour flicker from a clip that is already in colour.

    import vapoursynth as vs
    from chromaflow.filters import vapoursynth as cf

    clip = cf.deflicker(clip, radius=3)               # YUV keeps its luma plane bit for bit; RGB stays RGB

The host of :class:`chromaflow.core.deflicker.Deflicker` (random access, thread-safe): a frame's L* and a*b* are
read from its own samples (:func:`~chromaflow.core.colorizer.ycbcr_lab` for Y'CbCr, the frame's R'G'B' for RGB),
the core returns the deflickered a*b*, and only the *change* of colour is added to the frame's chroma (or R'G'B')
samples, so a frame whose colour does not move comes back as it was.
"""

import numpy as np
import torch
import vapoursynth as vs

from chromaflow.core.colorizer import ycbcr_lab
from chromaflow.core.colour import rgb_to_lab
from chromaflow.core.deflicker import Deflicker, LabFrame, deflickered_chroma, deflickered_rgb
from chromaflow.core.lru import LRUCache
from chromaflow.core.options import DeflickerOptions
from chromaflow.filters.vapoursynth.colour import ClipLayout, ColourDescription, check_clip, describe
from chromaflow.filters.vapoursynth.frames import frame_rgb, read_plane, reported, rgb_unit, store_plane

core = vs.core


def frame_lab(frame: vs.VideoFrame, layout: ClipLayout, desc: ColourDescription) -> LabFrame:
    """Full-size L* ``(H, W)`` and ab ``(2, H, W)`` (float32) of a YUV or RGB frame, from its own samples."""
    if layout.family == vs.RGB:
        lab = rgb_to_lab(frame_rgb(frame, layout, desc)).numpy()
        return np.ascontiguousarray(lab[0]), np.ascontiguousarray(lab[1:])
    y = np.array(read_plane(frame, 0), dtype=np.float32)  # a copy: the frame's memory is read-only
    chroma = np.stack([read_plane(frame, 1), read_plane(frame, 2)])
    return ycbcr_lab(y, chroma, desc.ycbcr(layout), layout.factors, desc.siting)


class LabFrames:
    """``get_lab`` of the core engine: frame ``k``'s ``(L*, ab)``, converted once and kept in a bounded LRU.

    The renderer hands in the frame it is rendering; frames the engine needs that are not cached are fetched from
    the source clip (a nested ``get_frame``, as :class:`~chromaflow.filters.vapoursynth.luma.LumaSource` does). A
    frame being converted by one thread is waited for, not converted twice.
    """

    def __init__(self, clip: vs.VideoNode, layout: ClipLayout, func: str, capacity: int = 16) -> None:
        self.clip = clip
        self.layout = layout
        self.func = func
        self.cache = LRUCache(capacity)

    def get(
        self, k: int, frame: vs.VideoFrame | None = None, desc: ColourDescription | None = None
    ) -> LabFrame:
        """Frame ``k``'s ``(L*, ab)``; ``frame`` (and its ``desc``): the frame itself when the caller has it."""

        def convert() -> LabFrame:
            src = self.clip.get_frame(k) if frame is None else frame
            described = describe(src.props, self.layout, self.func, k) if desc is None else desc
            return frame_lab(src, self.layout, described)

        return self.cache.get_or_compute(k, convert)

    def __call__(self, k: int) -> LabFrame:
        return self.get(k)


class _DeflickerRenderer:
    """Renders one output frame, for frames requested in any order from VapourSynth's worker threads (R81 runs
    Python frame callbacks one at a time; the state is locked all the same)."""

    def __init__(self, func: str, engine: Deflicker, frames: LabFrames, layout: ClipLayout) -> None:
        self.func = func
        self.engine = engine
        self.frames = frames
        self.layout = layout

    def __call__(self, n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        layout = self.layout
        with reported(self.func, n):
            desc = describe(f.props, layout, self.func, n)
            l_star, ab_old = lab = self.frames.get(n, f, desc)
            ab_new = self.engine.ab(n, lab)
            fout = f.copy()  # a YUV frame's luma plane and every frame's properties stay as they are
            if layout.family == vs.RGB:
                raw = rgb_unit(
                    f, layout, torch.device("cpu")
                ).numpy()  # float samples outside [0, 1] are kept
                rgb = deflickered_rgb(raw, l_star, ab_old, ab_new, clip=not layout.is_float)
                scale = 1.0 if layout.is_float else float(layout.peak)
                for p in range(3):
                    store_plane(fout, p, torch.from_numpy(rgb[p] * scale), layout.bits, layout.is_float)
            else:
                chroma = np.stack([read_plane(f, 1), read_plane(f, 2)])
                codes = deflickered_chroma(
                    chroma, l_star, ab_old, ab_new, desc.ycbcr(layout), layout.factors, desc.siting
                )
                for p in (1, 2):
                    read_plane(fout, p)[...] = codes[p - 1]
            return fout


def deflicker(
    clip: vs.VideoNode,
    radius: int = DeflickerOptions.radius,
    strength: float = DeflickerOptions.strength,
    scene_cut_threshold: float | None = DeflickerOptions.scene_cut_threshold,
    max_side: int = DeflickerOptions.max_side,
) -> vs.VideoNode:
    """Remove colour flicker from a clip already in colour (from a per-frame colorizer, or any other source).

    YUV (any subsampling) and RGB; 8-16 bit integer, half or single float samples. The output has the input's
    format, length and frame properties; YUV keeps its luma plane bit for bit, and frames whose colour is steady
    come back unchanged. The parameters are those of :class:`~chromaflow.core.options.DeflickerOptions` (defaults
    and checks). ``radius``: frames ``n - radius .. n + radius`` are compared (motion-compensated) with
    frame ``n``; ``strength`` (>= 0) scales the neighbours' weight (0 = off, 1 = a confident neighbour counts as
    much as the frame); ``scene_cut_threshold``: no colour is taken across a cut (the core's default when
    ``None``); ``max_side``: the longer side of the working resolution the correction is computed at. Frames may
    be requested in any order from any number of threads: the result is that of a sequential render.
    """
    func = "deflicker"
    layout = check_clip(clip, func)
    if layout.family == vs.GRAY:
        assert clip.format is not None
        raise vs.Error(
            f"chromaflow.{func}: a {clip.format.name} clip has no colour to deflicker; colorize it first "
            "(chromaflow.colorize), which smooths its colour over time already"
        )
    frames = LabFrames(clip, layout, func)
    with reported(func):
        opts = DeflickerOptions(
            radius=radius, strength=strength, scene_cut_threshold=scene_cut_threshold, max_side=max_side
        )
        engine = Deflicker(clip.num_frames, frames, opts)
    # a frame fetched as a neighbour waits here until it is rendered itself (``radius`` frames later in order)
    frames.cache.capacity = 2 * opts.radius + 2 * core.num_threads + 2
    return core.std.ModifyFrame(clip, clip, _DeflickerRenderer(func, engine, frames, layout))
