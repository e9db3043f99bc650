"""VapourSynth clips from numpy frames, for tests, benchmarks and scripts that build clips in memory."""

import numpy as np
import vapoursynth as vs


def clip_from_rgb(frames: list[np.ndarray], fmt: int = vs.YUV420P8) -> vs.VideoNode:
    """A clip of ``(H, W, 3)`` RGB uint8 frames in ``fmt`` (converted with the BT.709 matrix, limited range for
    YUV); the frames are copied into each requested VapourSynth frame."""
    core = vs.core
    h, w = frames[0].shape[:2]
    blank = core.std.BlankClip(format=vs.RGB24, width=w, height=h, length=len(frames))

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        g = f.copy()
        for p in range(3):
            np.asarray(g[p])[...] = frames[n][:, :, p]
        return g

    clip = core.std.ModifyFrame(blank, blank, fill)
    return clip if fmt == vs.RGB24 else core.resize.Bicubic(clip, format=fmt, matrix_s="709")
