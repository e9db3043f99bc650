"""Small synthetic clips written with PyAV, for tests, benchmarks and demos (seeded, no external data).

The picture is a smooth colour field with a moving square, so colour, motion and luma detail all exist; an optional
sine-tone audio stream and SubRip subtitle stream let stream copying be checked.
"""

import os
from collections.abc import Sequence
from fractions import Fraction

import av
import numpy as np


def synth_rgb(width: int, height: int, index: int, seed: int = 0) -> np.ndarray:
    """One ``(H, W, 3)`` uint8 frame: a colour gradient with a square moving one step per frame."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 2 * np.pi, 3)
    r = 127 + 100 * np.sin(xx / max(width, 1) * 3.0 + phase[0] + index * 0.05)
    g = 127 + 100 * np.sin(yy / max(height, 1) * 3.0 + phase[1])
    b = 127 + 100 * np.cos((xx + yy) / max(width + height, 1) * 4.0 + phase[2])
    img = np.stack([r, g, b], axis=-1)
    side = max(4, min(width, height) // 4)
    x0 = (index * 3) % max(1, width - side)
    y0 = (index * 2) % max(1, height - side)
    img[y0 : y0 + side, x0 : x0 + side] = (230, 40, 40)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_clip(
    path: str | os.PathLike[str],
    *,
    width: int = 64,
    height: int = 48,
    frames: int = 12,
    fps: int = 25,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    gray: bool = False,
    audio: bool = False,
    subtitles: bool = False,
    pts: Sequence[int] | None = None,
    time_base: Fraction | None = None,
    colorspace: int | None = None,
    color_range: int | None = None,
    color_primaries: int | None = None,
    color_trc: int | None = None,
    codec_options: dict[str, str] | None = None,
    seed: int = 0,
) -> None:
    """Encode a synthetic clip. ``pts`` (in ``time_base``) gives variable frame timing; tags are written as given."""
    path = os.fspath(path)
    fmt = "yuv4mpegpipe" if path.endswith(".y4m") else None
    opts = {"strict": "-1"} if fmt else {}
    with av.open(path, "w", format=fmt, container_options=opts) as out:
        stream = out.add_stream(codec, rate=fps, options=dict(codec_options or {}))
        if not isinstance(stream, av.VideoStream):
            raise ValueError(f"{codec!r} is not a video encoder")
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        tb = time_base or Fraction(1, fps)
        stream.codec_context.time_base = tb
        ctx = stream.codec_context
        for attr, value in (
            ("colorspace", colorspace),
            ("color_range", color_range),
            ("color_primaries", color_primaries),
            ("color_trc", color_trc),
        ):
            if value is not None:
                setattr(ctx, attr, value)
        a_stream = out.add_stream("aac", rate=48000) if audio else None
        s_stream = out.add_mux_stream("subrip") if subtitles else None
        if s_stream is not None:
            s_stream.time_base = Fraction(1, 1000)
        for i in range(frames):
            rgb = synth_rgb(width, height, i, seed)
            if gray:
                rgb = np.repeat(rgb.mean(axis=2, keepdims=True).astype(np.uint8), 3, axis=2)
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            space = colorspace if colorspace in (1, 5, 6, 9) else 5
            full = color_range == 2
            frame = frame.reformat(
                format=pix_fmt,
                dst_colorspace={6: 5}.get(space, space),
                dst_color_range=2 if full else 1,
            )
            frame.pts = pts[i] if pts is not None else i
            frame.time_base = tb
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
        if a_stream is not None:
            _write_tone(out, a_stream, frames / fps)
        if s_stream is not None:
            _write_subtitle(out, s_stream, frames / fps)


def _write_tone(
    out: av.container.OutputContainer, stream: av.audio.stream.AudioStream, seconds: float
) -> None:
    rate = 48000
    n = int(seconds * rate)
    t = np.arange(n, dtype=np.float32) / rate
    samples = (0.2 * np.sin(2 * np.pi * 440.0 * t)).astype(np.float32)
    step = 1024
    for start in range(0, n, step):
        chunk = samples[start : start + step]
        frame = av.AudioFrame.from_ndarray(chunk[None, :], format="flt", layout="mono")
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        out.mux(stream.encode(frame))
    out.mux(stream.encode(None))


def _write_subtitle(out: av.container.OutputContainer, stream: av.stream.Stream, seconds: float) -> None:
    text = b"hello"
    packet = av.Packet(text)
    packet.stream = stream
    packet.pts = packet.dts = 0
    packet.duration = int(min(seconds, 0.3) * 1000)
    packet.time_base = Fraction(1, 1000)
    out.mux(packet)
