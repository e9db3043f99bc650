"""Runs the fuzz cases of ``tests/test_fuzz.py`` in a worker process, so that a crash in native code (a segfault
in a decoder, in OpenCV or in a kernel) fails that one case with its signal instead of ending the test session.

The worker is forked from a fork server that has already imported torch, PyAV, OpenCV and chromaflow (before any
work), so starting one, and replacing one that crashed, takes milliseconds. It stays up between cases. Each
call's stderr (and a crash's fault-handler trace) goes to a file the caller names and reads afterwards.

Also here: what runs inside the worker for each host (the CLI's ``main``, the PyAV nodes, the VapourSynth
filters), with the checks that need the frames in hand.
"""

import faulthandler
import functools
import hashlib
import multiprocessing
import os
import random
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from chromaflow.core.errors import ChromaflowError
from chromaflow.core.nets.base import BaseColorNet
from chromaflow.filters.pyav.frames import layout_of, plane_view

from support.fuzz_media import PIXFMT_FRAMES, SEED, H, W, frame_formats, video_frame
from support.pyav_synth import synth_rgb

PRELOAD = [__name__, "chromaflow.plugins.cli.main", "chromaflow.filters.pyav", "chromaflow.core.video", "cv2"]


# ------------------------------------------------------------------------------------------------ the worker


@dataclass
class Reply:
    """What a call gave: ``status`` ``ok`` (``value`` is the function's result), ``crashed`` (``value``: the
    signal's name or the exit code), ``timeout``, or ``raised`` (``value``: the traceback of an error in the
    runner itself)."""

    status: str
    value: Any
    stderr: str


class Worker:
    """One worker process at a time; a call that crashes or hangs it gets a fresh one for the next call."""

    def __init__(self, timeout: float = 300.0) -> None:
        self.timeout = timeout
        self.restarts = 0
        self._ctx = multiprocessing.get_context("forkserver")
        self._ctx.set_forkserver_preload(PRELOAD)
        self._proc: Any = None
        self._conn: Connection | None = None

    def _start(self) -> None:
        parent, child = self._ctx.Pipe()
        self._proc = self._ctx.Process(target=serve, args=(child,), daemon=True, name="fuzz-worker")
        self._proc.start()
        child.close()
        self._conn = parent

    def _stop(self) -> None:
        if self._proc is not None:
            if self._proc.is_alive():
                self._proc.kill()
            self._proc.join(10)
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn = None, None

    def call(self, name: str, *args: Any, stderr_path: Path) -> Reply:
        """Run ``name(*args)`` (a function of this module) in the worker; its stderr goes to ``stderr_path``."""
        if self._proc is None or not self._proc.is_alive():
            self._stop()
            self._start()
        assert self._conn is not None
        self._conn.send((name, args, str(stderr_path)))
        if not self._conn.poll(self.timeout):
            self._stop()
            self.restarts += 1
            return Reply("timeout", self.timeout, _read(stderr_path))
        try:
            status, value = self._conn.recv()
        except (EOFError, ConnectionResetError):
            self._proc.join(10)
            code = self._proc.exitcode
            self._stop()
            self.restarts += 1
            what = signal.Signals(-code).name if code is not None and code < 0 else f"exit {code}"
            return Reply("crashed", what, _read(stderr_path))
        return Reply(status, value, _read(stderr_path))

    def close(self) -> None:
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            try:
                self._conn.send(None)
                self._proc.join(10)
            except (BrokenPipeError, OSError):
                pass
        self._stop()


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""


def serve(conn: Connection) -> None:
    """The worker's loop: one call per message, its stderr (fd 2, so native code's too) into the named file."""
    sys.stderr = open(2, "w", buffering=1, closefd=False)  # noqa: SIM115 (one object, whatever fd 2 points to)
    faulthandler.enable()
    keep = os.dup(2)
    while True:
        message = conn.recv()
        if message is None:
            return
        name, args, err_path = message
        sys.stderr.flush()
        fd = os.open(err_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.dup2(fd, 2)
        os.close(fd)
        try:
            reply: tuple[str, Any] = ("ok", globals()[name](*args))
        except BaseException:
            reply = ("raised", traceback.format_exc())
        sys.stderr.flush()
        os.dup2(keep, 2)
        conn.send(reply)


def crash(signum: int) -> None:
    """Ends the worker with ``signum`` (the harness's own test: a crash fails its call, the next call gets a new
    worker)."""
    os.kill(os.getpid(), signum)


def pause(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


# ------------------------------------------------------------------------------------------------ CLI


def run_cli(argv: list[str], env: dict[str, str]) -> str:
    """``chromaflow argv`` in this process: the exit code as text, ``uncaught`` for an exception main() let out
    (printed to stderr, as a real run would)."""
    from chromaflow.plugins.cli.main import main

    os.environ.update(env)
    try:
        return str(main(argv))
    except SystemExit as exc:  # argparse
        return str(exc.code if isinstance(exc.code, int) else 0 if exc.code is None else 2)
    except Exception:
        traceback.print_exc()
        return "uncaught"


# ------------------------------------------------------------------------------------------------ helpers


@functools.cache
def tiny_net() -> BaseColorNet:
    """chromaflow's ``base`` architecture, narrow (width 8), seeded random weights: real code paths, tiny cost."""
    torch.manual_seed(SEED)
    return BaseColorNet(width=8, temperature=0.03).eval()


def luma_kept(src: av.VideoFrame, out: av.VideoFrame) -> bool | None:
    """Whether ``out``'s luma plane is ``src``'s bit for bit; None where the formats do not compare (RGB, or a
    different depth after a conversion for the encoder)."""
    a, b = layout_of(src.format), layout_of(out.format)
    if a.kind not in ("yuv", "gray") or b.kind not in ("yuv", "gray") or a.bits != b.bits:
        return None
    return bool(np.array_equal(plane_view(src, 0), plane_view(out, 0)))


def outcome(result: str, problems: list[str], detail: str = "") -> dict[str, Any]:
    return {"result": result, "problems": problems, "detail": detail}


# ------------------------------------------------------------------------------------------------ PyAV nodes


def frame_digest(frames: list[av.VideoFrame]) -> str:
    h = hashlib.sha256()
    for f in frames:
        for plane in f.planes:
            h.update(bytes(plane))
    return h.hexdigest()


def _stream(fmt: str, count: int = PIXFMT_FRAMES, width: int = W, height: int = H) -> list[av.VideoFrame]:
    return [video_frame(fmt, i, width, height) for i in range(count)]


def _tagged(fmt: str, **tags: int) -> list[av.VideoFrame]:
    frames = _stream(fmt)
    for f in frames:
        for key, value in tags.items():
            setattr(f, key, value)
    return frames


# special streams: name -> frames
NODE_STREAMS: dict[str, Callable[[], list[av.VideoFrame]]] = {
    "8x8": lambda: _stream("yuv420p", 3, 8, 8),
    "2x2": lambda: _stream("yuv420p", 3, 2, 2),
    "1x1-yuv444p": lambda: _stream("yuv444p", 3, 1, 1),
    "11x48": lambda: _stream("yuv444p", 3, 11, 48),
    "12x12": lambda: _stream("yuv420p", 3, 12, 12),
    "33x25-yuv420p": lambda: _stream("yuv420p", 3, 33, 25),
    "2000x4": lambda: _stream("yuv444p", 3, 2000, 4),
    "size-change": lambda: [*_stream("yuv420p", 2), *_stream("yuv420p", 2, W // 2, H // 2)],
    "format-change": lambda: [*_stream("yuv420p", 2), *_stream("yuv444p", 2)],
    "depth-change": lambda: [*_stream("yuv420p", 2), *_stream("yuv420p10le", 2)],
    "no-frames": lambda: [],
    "one-frame": lambda: _stream("yuv420p", 1),
    "colorspace-99": lambda: _tagged("yuv420p", colorspace=99),
    "colorspace-240m": lambda: _tagged("yuv420p", colorspace=7),
    "colorspace-rgb-on-yuv": lambda: _tagged("yuv420p", colorspace=0),
    "color-range-3": lambda: _tagged("yuv420p", color_range=3),
    "color-range-full": lambda: _tagged("yuv420p", color_range=2),
}
NODES = ("ColorizeNode", "DeflickerNode", "DeepfakeNode")


def node_cases() -> list[tuple[str, str, str]]:
    """(node, stream, category): seeded samples of the frame formats (every format goes through the CLI's
    colorize already) and the special streams, through each node."""
    formats = frame_formats()
    out = []
    for node, count in zip(NODES, (24, 24, 8), strict=True):
        sample = random.Random(f"{SEED}-{node}").sample(formats, min(count, len(formats)))
        out += [(node, f"fmt-{f}", "pixfmt") for f in sorted(sample)]
    out += [(n, s, "stream") for n in NODES for s in NODE_STREAMS]
    return out


def _make_node(kind: str, meso4: str | None) -> Any:
    from chromaflow.filters.pyav import ColorizeNode, DeepfakeNode, DeflickerNode

    if kind == "ColorizeNode":
        return ColorizeNode(model=tiny_net(), size=32, smooth=1, batch_size=2, device="cpu")
    if kind == "DeflickerNode":
        return DeflickerNode()
    from chromaflow.core.deepfake import DeepfakeScorer

    return DeepfakeNode(DeepfakeScorer("haar", "meso4-df", classifier_path=meso4, device="cpu"), batch_size=2)


def run_node(kind: str, stream: str, meso4: str | None) -> dict[str, Any]:
    """Push a stream through a node and flush: a ChromaflowError, or every frame back at its size (luma kept by
    the colour nodes); the pushed frames never written into."""
    frames = _stream(stream[4:]) if stream.startswith("fmt-") else NODE_STREAMS[stream]()
    before = frame_digest(frames)
    out: list[av.VideoFrame] = []
    problems: list[str] = []
    result, detail = "ok", ""
    try:
        node = _make_node(kind, meso4)
        for frame in frames:
            node.push(frame)
            out += node.pull()
        out += node.flush()
    except ChromaflowError as exc:
        result, detail = type(exc).__name__, str(exc)
    except Exception as exc:
        result, detail = "uncaught", "".join(traceback.format_exception(exc))
        problems.append(f"{type(exc).__name__} instead of a ChromaflowError")
    if frame_digest(frames) != before:
        problems.append("the pushed frames were changed")
    if result == "ok":
        if len(out) != len(frames):
            problems.append(f"{len(out)} frames out of {len(frames)} in")
        for a, b in zip(frames, out, strict=False):
            if (a.width, a.height) != (b.width, b.height):
                problems.append(f"a {a.width}x{a.height} frame came out {b.width}x{b.height}")
                break
            if kind != "DeepfakeNode" and luma_kept(a, b) is False:
                problems.append(f"luma changed ({a.format.name} -> {b.format.name})")
                break
    return outcome(result, problems, detail)


# ------------------------------------------------------------------------------------------------ VapourSynth

VS_PRESETS = [
    "GRAY8", "GRAY9", "GRAY10", "GRAY12", "GRAY14", "GRAY16", "GRAY32", "GRAYH", "GRAYS", "YUV410P8", "YUV411P8",
    "YUV440P8", "YUV420P8", "YUV422P8", "YUV444P8", "YUV420P9", "YUV422P9", "YUV444P9", "YUV420P10", "YUV422P10",
    "YUV444P10", "YUV420P12", "YUV422P12", "YUV444P12", "YUV420P14", "YUV422P14", "YUV444P14", "YUV410P16",
    "YUV411P16", "YUV440P16", "YUV420P16", "YUV422P16", "YUV444P16", "YUV410PH", "YUV410PS", "YUV411PH", "YUV411PS",
    "YUV440PH", "YUV440PS", "YUV420PH", "YUV420PS", "YUV422PH", "YUV422PS", "YUV444PH", "YUV444PS", "RGB24",
    "RGB27", "RGB30", "RGB36", "RGB42", "RGB48", "RGBH", "RGBS",
]  # fmt: skip
VS_PROPS: list[tuple[str, Any]] = [
    *[("_Matrix", v) for v in (0, 2, 3, 7, 8, 10, 11, 14, 99, -5)],
    *[("_Transfer", v) for v in (2, 99)],
    *[("_Primaries", v) for v in (2, 99)],
    *[("_Range", v) for v in (0, 1, 5)],
    *[("_ColorRange", v) for v in (0, 1, 2, -1)],
    *[("_ChromaLocation", v) for v in (0, 2, 5, 6, 99)],
    ("_FieldBased", 1),
    ("_Matrix", "709"),
    ("_ColorRange", 0.5),
]
VS_SIZES = [("YUV444P8", 1, 1), ("YUV444P8", 2, 2), ("YUV420P8", 2, 2), ("YUV420P8", 8, 8), ("YUV444P8", 11, 11),
            ("YUV420P8", 12, 12), ("YUV420P8", 34, 26), ("GRAY8", 1, 1), ("RGB24", 4, 4)]  # fmt: skip


def vs_clip(fmt_name: str, width: int = W, height: int = H, length: int = 4, **props: Any) -> Any:
    """A clip of a VapourSynth preset format with a gradient and a moving square in every plane."""
    import vapoursynth as vs

    core = vs.core
    clip = core.std.BlankClip(format=getattr(vs, fmt_name), width=width, height=height, length=length)
    info = clip.format

    def fill(n: int, f: Any) -> Any:
        g = f.copy()
        for p in range(info.num_planes):
            a = np.asarray(g[p])
            h, w = a.shape
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            v = 0.15 + 0.6 * (xx + 2 * yy) / max(w + 2 * h, 1) + 0.05 * p
            s = max(1, h // 4)
            x0 = (3 * n) % max(1, w - s)
            v[s : 2 * s, x0 : x0 + s] = 0.9 - 0.1 * p
            if info.sample_type == vs.FLOAT:
                a[...] = v - 0.5 if (info.color_family == vs.YUV and p > 0) else v
            else:
                a[...] = np.round(v * ((1 << info.bits_per_sample) - 1)).astype(a.dtype)
        return g

    clip = core.std.ModifyFrame(clip, clip, fill)
    return core.std.SetFrameProps(clip, **props) if props else clip


def _synthetic(name: str) -> Any:
    """The clip of a synthetic VapourSynth case (``fmt-``, ``prop-``, ``size-``, ``length-1``)."""
    if name.startswith("fmt-"):
        return vs_clip(name[4:])
    if name.startswith("prop-"):
        key, value = name[5:].split("=", 1)
        typed = next(v for k, v in VS_PROPS if k == key and str(v) == value)
        return vs_clip("YUV420P8", **{key: typed})
    if name.startswith("size-"):
        fmt, dims = name[5:].rsplit("-", 1)
        w, h = (int(v) for v in dims.split("x"))
        return vs_clip(fmt, w, h)
    return vs_clip("YUV420P8", length=1)


def _vs_filter(kind: str, clip: Any, meso4: str | None) -> Any:
    from chromaflow.filters import vapoursynth as cf

    if kind == "colorize":
        return cf.colorize(clip, model=tiny_net(), size=32, smooth=1, batch=2, device="cpu")
    if kind == "deflicker":
        return cf.deflicker(clip)
    if kind == "transfer":
        return cf.transfer(clip, {0: synth_rgb(clip.width, clip.height, 0, SEED)}, mode="auto")
    return cf.deepfake(clip, overlay=True, classifier_path=meso4, device="cpu")


def final_exception(message: str) -> str:
    """The last exception named in a ``vs.Error``'s text. VapourSynth puts the Python traceback of an error raised
    in a frame callback into the message, so the error chromaflow raised is the last one there."""
    if "Traceback (most recent call last):" not in message:
        return message.strip()
    tail = message.rsplit("Traceback (most recent call last):", 1)[1]
    lines = [line for line in tail.splitlines() if line and not line.startswith(" ")]
    return "\n".join(lines).strip()


def run_vapoursynth(kind: str, source: str, path: str | None, meso4: str | None) -> dict[str, Any]:
    """A VapourSynth filter on a synthetic clip, or on ``path`` read by BestSource: a ``vs.Error`` naming the
    chromaflow function (no Python traceback in it), or every frame at its size with the luma kept."""
    import vapoursynth as vs

    problems: list[str] = []
    result, detail = "ok", ""
    if path is not None:
        try:
            clip = vs.core.bs.VideoSource(path, cachemode=0)
        except vs.Error as exc:  # BestSource refused the file with its own error: the source's business
            return outcome("source refused", [], str(exc))
    else:
        clip = _synthetic(source)
    try:
        out = _vs_filter(kind, clip, meso4)
        frames = [(clip.get_frame(n), out.get_frame(n)) for n in range(out.num_frames)]
        if out.num_frames != clip.num_frames:
            problems.append(f"{out.num_frames} frames out of {clip.num_frames}")
        if (out.width, out.height) != (clip.width, clip.height):
            problems.append(f"size {out.width}x{out.height}, input {clip.width}x{clip.height}")
        luma_family = clip.format.color_family in (vs.YUV, vs.GRAY)
        if kind != "deepfake" and luma_family and any(not np.array_equal(a[0], b[0]) for a, b in frames):
            problems.append("luma changed")
    except vs.Error as exc:
        result, detail = "vs.Error", str(exc)
        final = final_exception(detail)
        if not final.startswith(("chromaflow.", "vapoursynth.Error: chromaflow.")):
            problems.append(f"vs.Error not from chromaflow's own checks: {final[:200]}")
    except Exception as exc:
        result, detail = "uncaught", "".join(traceback.format_exception(exc))
        problems.append(f"{type(exc).__name__} instead of vs.Error")
    return outcome(result, problems, detail)
