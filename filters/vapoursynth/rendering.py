"""Output frames of ``colorize`` and ``transfer``: the engine's colour written into the clip's own format."""

import torch
import vapoursynth as vs

from chromaflow.core.colorizer import join_in_gamut, ycbcr_chroma
from chromaflow.core.colour import ChromaLocation
from chromaflow.core.video import VideoColorizer
from chromaflow.filters.vapoursynth.colour import ClipLayout, ColourDescription, describe
from chromaflow.filters.vapoursynth.frames import read_plane, reported, store_plane
from chromaflow.filters.vapoursynth.luma import LumaSource
from chromaflow.filters.vapoursynth.properties import MODEL_PROP, write_colour_info


class ColorizeRenderer:
    """Renders one output frame of ``colorize`` / ``transfer`` (called from VapourSynth's worker threads).

    Colour (ab) comes from the core's :class:`VideoColorizer` (random access, thread-safe: model batches, keyframe
    transfer, smoothing); the host only reads L* and writes the result: chroma code values from
    :func:`ycbcr_chroma` (the luma of Y'CbCr output is the source's own plane) or in-gamut RGB. Frame properties
    come from ``engine.info(n)``.
    """

    def __init__(
        self,
        func: str,
        engine: VideoColorizer,
        luma: LumaSource,
        layout: ClipLayout,
        out: vs.VideoFormat,
        model_name: str,
    ) -> None:
        self.func = func
        self.engine = engine
        self.luma = luma
        self.layout = layout
        self.out = out
        self.model_name = model_name
        self.out_float = out.sample_type == vs.FLOAT
        self.factors = (1 << out.subsampling_h, 1 << out.subsampling_w)

    def __call__(self, n: int, f: vs.VideoFrame | list[vs.VideoFrame]) -> vs.VideoFrame:
        with reported(self.func, n):
            if isinstance(f, list):  # GRAY in: f = [blank output frame with the source's props, source frame]
                fout, src = f[0].copy(), f[1]
            else:
                fout, src = f.copy(), f
            desc = describe(src.props, self.layout, self.func, n)
            desc_out = desc if self.layout.family != vs.GRAY else gray_output_description(desc, self.out)
            l_np = self.luma.of_frame(n, src, desc)
            l_star = torch.from_numpy(l_np)[None, None]
            ab = torch.from_numpy(self.engine.ab(n, l_np))[None]
            if self.out.color_family == vs.RGB:
                rgb, _ = join_in_gamut(l_star, ab)
                scale = 1.0 if self.out_float else float((1 << self.out.bits_per_sample) - 1)
                for p in range(3):
                    store_plane(fout, p, rgb[0, p] * scale, self.out.bits_per_sample, self.out_float)
            else:
                if self.layout.family == vs.GRAY:
                    read_plane(fout, 0)[...] = read_plane(src, 0)  # the luma, bit for bit
                codes = ycbcr_chroma(l_star, ab, desc.ycbcr(self.layout), self.factors, desc_out.siting)[0]
                for p in (1, 2):
                    store_plane(fout, p, codes[p - 1], self.out.bits_per_sample, self.out_float)
            desc_out.write(fout.props, self.out.color_family)
            if self.model_name:
                fout.props[MODEL_PROP] = self.model_name
            write_colour_info(fout.props, self.engine.info(n))
            return fout


def gray_output_description(desc: ColourDescription, out: vs.VideoFormat) -> ColourDescription:
    """A GRAY clip's description applied to its colour output (chroma sited left, the MPEG-2 default)."""
    full = desc.full_range or out.sample_type == vs.FLOAT
    return ColourDescription(desc.matrix, desc.transfer, desc.primaries, full, ChromaLocation.LEFT)
