"""VapourSynth functions: clip in, clip out.

    import vapoursynth as vs
    from chromaflow.filters import vapoursynth as cf

    clip = cf.colorize(clip)                          # GRAY/YUV/RGB in; YUV keeps its luma plane bit for bit
    clip = cf.deflicker(clip)                         # colour flicker of a colour clip removed, luma untouched
    clip = cf.deepfake(clip)                          # scores faces; ChromaflowDeepfakeScore etc. per frame

Every function checks its clip when called and raises ``vs.Error("chromaflow.<function>: ...")`` saying what to do;
errors while rendering a frame name the function and the frame. Engines are built when the function is called (so
absent weights are reported at once). Colour-description properties are read and written as
:mod:`~chromaflow.filters.vapoursynth.colour` documents; per-frame results go into properties prefixed
``Chromaflow`` (:mod:`~chromaflow.filters.vapoursynth.properties`).

The modules, one job each: ``colorization`` (``colorize``, ``transfer``), ``deflickering`` (``deflicker``),
``deepfake_scoring`` (``deepfake``); ``colour`` (clip formats, colour tags), ``frames`` (planes in and out),
``luma`` (the colorize engine's frame source), ``guides`` (hints, reference keyframes), ``formats`` (output
formats), ``rendering`` (colorize output frames), ``overlay`` (deepfake overlay pixels), ``properties``
(``Chromaflow*`` names), ``streams`` (engine copies shared by worker threads). The modules are not named after
the functions, so ``cf.colorize`` is always the function.
"""

from chromaflow.filters.vapoursynth.colorization import colorize, transfer
from chromaflow.filters.vapoursynth.deepfake_scoring import deepfake
from chromaflow.filters.vapoursynth.deflickering import deflicker
from chromaflow.filters.vapoursynth.properties import PROP_PREFIX

__all__ = ["PROP_PREFIX", "colorize", "deepfake", "deflicker", "transfer"]
