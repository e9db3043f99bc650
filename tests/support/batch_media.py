"""Clips with scene cuts for the batch tests: shots of different synthetic content joined in one stream."""

import os
from collections.abc import Sequence
from fractions import Fraction

import av
import numpy as np

from support.pyav_synth import _write_subtitle, _write_tone, synth_rgb


def shot_rgb(width: int, height: int, index: int, shot: int) -> np.ndarray:
    """Frame ``index`` of shot number ``shot``: each shot its own colour field (odd shots inverted), so every
    shot boundary is a clear cut."""
    rgb = synth_rgb(width, height, index, seed=7 * shot)
    return 255 - rgb if shot % 2 else rgb


def write_shots(
    path: str | os.PathLike[str],
    shots: Sequence[int],
    *,
    width: int = 64,
    height: int = 48,
    codec: str = "ffv1",
    gop: int | None = None,
    audio: bool = False,
    subtitles: bool = False,
) -> list[np.ndarray]:
    """Write shots of the given lengths one after the other (25 fps); returns the RGB frames written."""
    frames: list[np.ndarray] = []
    options = {"g": str(gop), "bf": "2"} if gop else {}
    with av.open(os.fspath(path), "w") as out:
        stream = out.add_stream(codec, rate=25, options=options)
        assert isinstance(stream, av.VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        a_stream = out.add_stream("aac", rate=48000) if audio else None
        s_stream = out.add_mux_stream("subrip") if subtitles else None
        if s_stream is not None:
            s_stream.time_base = Fraction(1, 1000)
        for shot, length in enumerate(shots):
            for i in range(length):
                rgb = shot_rgb(width, height, i, shot)
                frames.append(rgb)
                frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
                frame.pts, frame.time_base = len(frames) - 1, Fraction(1, 25)
                out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        seconds = len(frames) / 25
        if a_stream is not None:
            _write_tone(out, a_stream, seconds)
        if s_stream is not None:
            _write_subtitle(out, s_stream, seconds)
    return frames


def decoded_planes(path: str | os.PathLike[str]) -> list[np.ndarray]:
    """Every video frame of ``path`` as its raw planes (``to_ndarray`` of the decoded format)."""
    with av.open(os.fspath(path)) as container:
        return [frame.to_ndarray().copy() for frame in container.decode(video=0)]


def stream_kinds(path: str | os.PathLike[str]) -> list[str]:
    with av.open(os.fspath(path)) as container:
        return sorted(s.type for s in container.streams)
