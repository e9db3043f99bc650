"""`chromaflow deflicker` and DeflickerNode: flicker removed through real encodes, luma and steady clips untouched."""

import io
import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from chromaflow.core.colorizer import ycbcr_lab
from chromaflow.core.colour import YCbCrFormat
from chromaflow.core.deflicker import DeflickerStream, deflickered_chroma
from chromaflow.core.errors import InputError
from chromaflow.filters.pyav import DeflickerNode
from chromaflow.filters.pyav.frames import plane_view

from support.pyav_synth import write_clip

CLI = str(Path(sys.executable).with_name("chromaflow"))
W, H, N = 64, 48, 14
TB = Fraction(1, 25)


def flicker_frames(pix_fmt: str, flicker: float = 6.0, seed: int = 0) -> list[av.VideoFrame]:
    """Textured luma drifting half a pixel per frame; chroma a smooth field plus a random per-frame global offset
    of ``flicker`` 8-bit code steps (0: every frame has the same colour field)."""
    rng = np.random.default_rng(seed)
    scale = 4 if "10" in pix_fmt else 1
    frames = []
    for n in range(N):
        frame = av.VideoFrame(W, H, pix_fmt)
        yy, xx = np.mgrid[0:H, 0:W].astype(np.float64)
        plane_view(frame, 0)[:] = np.round(
            scale * (110 + 40 * np.sin((xx - 0.5 * n) / 4.0) * np.cos(yy / 5.0) + 0.5 * yy)
        )
        ch, cw = plane_view(frame, 1).shape
        cy, cx = np.mgrid[0:ch, 0:cw].astype(np.float64)
        cy, cx = cy * (H / ch), cx * (W / cw)  # in luma pixels, so both subsamplings get the same field
        off = rng.normal(0, flicker, 2)
        plane_view(frame, 1)[:] = np.round(scale * (118 + 0.25 * cx + off[0]))
        plane_view(frame, 2)[:] = np.round(scale * (140 - 0.3 * cy + off[1]))
        frame.pts, frame.time_base = n, TB
        frame.chroma_location = 2  # centre, as y4m's C420jpeg
        frames.append(frame)
    return frames


def write_frames(path: Path, frames: list[av.VideoFrame]) -> None:
    """Encode losslessly (FFV1 in .mkv/.nut, or raw y4m)."""
    fmt = "yuv4mpegpipe" if path.suffix == ".y4m" else None
    with av.open(str(path), "w", format=fmt, container_options={"strict": "-1"} if fmt else {}) as out:
        stream = out.add_stream("wrapped_avframe" if fmt else "ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, frames[0].format.name
        stream.codec_context.time_base = TB
        stream.codec_context.chroma_sample_location = 2  # what y4m's C420jpeg says, so both forms agree
        for frame in frames:
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def decoded(path: Path | bytes) -> list[av.VideoFrame]:
    if isinstance(path, bytes):
        with av.open(io.BytesIO(path), "r", format="yuv4mpegpipe") as c:
            return list(c.decode(video=0))
    with av.open(str(path), "r") as c:
        return list(c.decode(video=0))


def cli(*args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "CHROMAFLOW_DEVICE": "cpu"}
    return subprocess.run(
        [CLI, "deflicker", *args], input=stdin, capture_output=True, timeout=300, check=False, env=env
    )


def chroma_means(frames: list[av.VideoFrame]) -> np.ndarray:
    return np.array([[plane_view(f, p).astype(np.float64).mean() for p in (1, 2)] for f in frames])


def mean_jump(frames: list[av.VideoFrame]) -> float:
    """Mean frame-to-frame change of the frames' mean Cb and Cr (code values)."""
    return float(np.abs(np.diff(chroma_means(frames), axis=0)).mean())


def same_planes(a: av.VideoFrame, b: av.VideoFrame, planes: tuple[int, ...] = (0, 1, 2)) -> bool:
    return a.format.name == b.format.name and all(
        np.array_equal(plane_view(a, p), plane_view(b, p)) for p in planes
    )


@pytest.fixture(scope="module")
def flicker_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict[str, object]]:
    """The 4:2:0 flickering clip through `chromaflow deflicker in.mkv out.mkv --codec ffv1 --json`."""
    folder = tmp_path_factory.mktemp("flicker")
    src, dst = folder / "in.mkv", folder / "out.mkv"
    write_frames(src, flicker_frames("yuv420p"))
    proc = cli(str(src), str(dst), "--codec", "ffv1", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    return src, dst, json.loads(proc.stdout)


def check_deflickered(src: Path, dst: Path, limit: float) -> None:
    frames_in, frames_out = decoded(src), decoded(dst)
    assert len(frames_out) == len(frames_in) == N
    assert [f.pts for f in frames_out] == [f.pts for f in frames_in]
    assert [f.time for f in frames_out] == [f.time for f in frames_in]
    for a, b in zip(frames_in, frames_out, strict=True):
        assert a.format.name == b.format.name
        assert np.array_equal(plane_view(a, 0), plane_view(b, 0)), "luma is kept bit for bit"
    ratio = mean_jump(frames_out) / mean_jump(frames_in)
    assert ratio < limit, ratio


def test_flicker_is_removed_and_luma_kept_420(flicker_run: tuple[Path, Path, dict[str, object]]) -> None:
    src, dst, summary = flicker_run
    check_deflickered(src, dst, 0.4)  # measured 0.16
    assert summary["frames_out"] == N and summary["radius"] == 3 and summary["strength"] == 1.0
    assert summary["pix_fmt"] == "yuv420p"


def test_flicker_is_removed_and_luma_kept_422_10bit(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mkv"
    write_frames(src, flicker_frames("yuv422p10le", seed=1))
    proc = cli(str(src), str(dst), "--codec", "ffv1", "--radius", "2", "--quiet")
    assert proc.returncode == 0, proc.stderr.decode()
    check_deflickered(src, dst, 0.5)  # measured 0.23


def test_a_steady_clip_comes_back_bit_for_bit(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.nut", tmp_path / "out.nut"
    steady = flicker_frames("yuv420p", flicker=0.0)
    first = steady[0]
    for frame in steady[1:]:  # identical pictures
        for p in (0, 1, 2):
            plane_view(frame, p)[:] = plane_view(first, p)
    write_frames(src, steady)
    proc = cli(str(src), str(dst), "--codec", "ffv1")
    assert proc.returncode == 0, proc.stderr.decode()
    frames_out = decoded(dst)
    assert len(frames_out) == N
    assert all(same_planes(a, b) for a, b in zip(decoded(src), frames_out, strict=True))


def test_y4m_pipe_gives_the_file_form_frames(
    flicker_run: tuple[Path, Path, dict[str, object]], tmp_path: Path
) -> None:
    src, dst, _ = flicker_run
    y4m = tmp_path / "in.y4m"
    write_frames(y4m, decoded(src))
    proc = cli("-", "-", stdin=y4m.read_bytes())
    assert proc.returncode == 0, proc.stderr.decode()
    assert proc.stderr.decode().strip() == "", "no chatter on stderr"
    piped, filed = decoded(proc.stdout), decoded(dst)
    assert len(piped) == len(filed) == N
    assert all(same_planes(a, b) for a, b in zip(piped, filed, strict=True))


def test_audio_is_kept(tmp_path: Path) -> None:
    src, dst = tmp_path / "in.mkv", tmp_path / "out.mkv"
    write_clip(src, frames=12, codec="ffv1", audio=True)
    proc = cli(str(src), str(dst), "--codec", "ffv1", "--json")
    assert proc.returncode == 0, proc.stderr.decode()
    assert json.loads(proc.stdout)["copied_streams"] == ["#1 audio (aac)"]

    def audio_seconds(path: Path) -> float:
        with av.open(str(path)) as c:
            stream = c.streams.audio[0]
            samples = sum(f.samples for f in c.decode(stream))
            return samples / stream.rate

    assert audio_seconds(dst) == pytest.approx(audio_seconds(src), abs=1e-3)
    assert audio_seconds(src) > 0.4
    luma = [(plane_view(a, 0), plane_view(b, 0)) for a, b in zip(decoded(src), decoded(dst), strict=True)]
    assert len(luma) == 12 and all(np.array_equal(a, b) for a, b in luma)


def test_gray_input_and_bad_options_fail_cleanly(tmp_path: Path) -> None:
    gray = tmp_path / "gray.mkv"
    write_clip(gray, frames=4, codec="ffv1", pix_fmt="gray")
    out = tmp_path / "out.mkv"
    proc = cli(str(gray), str(out), "--codec", "ffv1")
    err = proc.stderr.decode()
    assert proc.returncode == 3, err
    assert "gray video has no colour to deflicker" in err and "chromaflow colorize" in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == [gray], "no output, not even a partial file"
    for bad in (["--radius", "0"], ["--strength", "-1"]):
        proc = cli(str(gray), str(out), *bad)
        assert proc.returncode == 2, proc.stderr.decode()
        assert bad[0] in proc.stderr.decode()
        assert list(tmp_path.iterdir()) == [gray]


def test_help_says_what_it_does() -> None:
    proc = subprocess.run(
        [CLI, "deflicker", "--help"], capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0 and proc.stdout.startswith("usage: chromaflow deflicker")
    text = " ".join(proc.stdout.split())
    for phrase in ("colour flicker", "luma plane is kept bit for bit", "comes back as it was"):
        assert phrase in text
    assert "chromaflow deflicker - - |" in text and "--radius R" in text and "--strength S" in text


# -- the node on its own ----------------------------------------------------------------------------------------


def core_reference(
    frames: list[av.VideoFrame], fmt: YCbCrFormat, factors: tuple[int, int]
) -> list[np.ndarray]:
    """Each frame's chroma planes, deflickered by the core directly (DeflickerStream + deflickered_chroma)."""
    stream = DeflickerStream()
    labs, out = [], {}
    for frame in frames:
        chroma = np.stack((plane_view(frame, 1), plane_view(frame, 2)))
        labs.append((chroma, *ycbcr_lab(plane_view(frame, 0), chroma, fmt, factors, "center")))
        ready = stream.push(*labs[-1][1:])
        out.update({d.frame_index: d.ab for d in ready})
    out.update({d.frame_index: d.ab for d in stream.flush()})
    return [deflickered_chroma(c, l, ab, out[n], fmt, factors, "center") for n, (c, l, ab) in enumerate(labs)]


def test_node_equals_the_core_and_holds_only_its_window() -> None:
    frames = flicker_frames("yuv420p", seed=2)
    node = DeflickerNode()
    got = []
    for frame in frames:
        node.push(frame)
        got.extend(node.pull())
        assert node.held <= node.delay, "only the frames not yet given out are held"
        assert len(got) >= node.frames_in - node.delay
    got.extend(node.flush())
    assert node.held == 0
    want = core_reference(frames, YCbCrFormat("601", False, 8), (2, 2))  # untagged SD: BT.601, limited range
    assert len(got) == N
    for frame, out, chroma in zip(frames, got, want, strict=True):
        assert (out.pts, out.time_base, out.format.name) == (frame.pts, frame.time_base, "yuv420p")
        assert np.array_equal(plane_view(out, 0), plane_view(frame, 0))
        assert np.array_equal(np.stack((plane_view(out, 1), plane_view(out, 2))), chroma)
    assert mean_jump(got) < 0.4 * mean_jump(frames)


def test_node_keeps_alpha_and_unpacks_nv12() -> None:
    frames = flicker_frames("yuv420p", seed=3)
    nv12 = [f.reformat(format="nv12") for f in frames]
    for src, f in zip(frames, nv12, strict=True):
        f.pts, f.time_base = src.pts, src.time_base
    node = DeflickerNode(radius=1)
    for f in nv12:
        node.push(f)
    got = node.flush()
    assert [g.format.name for g in got] == ["yuv420p"] * N
    assert all(np.array_equal(plane_view(g, 0), plane_view(f, 0)) for g, f in zip(got, frames, strict=True))

    alpha = []
    for src in frames:
        f = av.VideoFrame(W, H, "yuva420p")
        for p in (0, 1, 2):
            plane_view(f, p)[:] = plane_view(src, p)
        plane_view(f, 3)[:] = np.arange(W, dtype=np.uint8)[None] * 3
        f.pts, f.time_base = src.pts, src.time_base
        alpha.append(f)
    node = DeflickerNode(radius=1)
    for f in alpha:
        node.push(f)
    got = node.flush()
    assert all(g.format.name == "yuva420p" for g in got)
    assert all(same_planes(g, f, (0, 3)) for g, f in zip(got, alpha, strict=True))


def test_node_refuses_gray_and_a_size_change() -> None:
    node = DeflickerNode()
    with pytest.raises(InputError, match="gray video has no colour"):
        node.push(av.VideoFrame(W, H, "gray"))
    node = DeflickerNode()
    node.push(flicker_frames("yuv420p")[0])
    with pytest.raises(InputError, match="add a scale/format filter"):
        node.push(av.VideoFrame(W * 2, H, "yuv420p"))


def test_node_takes_odd_sizes_and_frames_made_in_python() -> None:
    """97x55 4:2:0 (chroma 49x28) from ``VideoFrame.from_ndarray``, which has no time base: frames come back whole."""
    rng = np.random.default_rng(1)
    node = DeflickerNode(radius=2)
    out: list[av.VideoFrame] = []
    sources = []
    for i in range(7):
        rgb = (rng.random((55, 97, 3)) * 255).astype(np.uint8)
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        sources.append(frame)
        node.push(frame)
        out += node.pull()
    out += node.flush()
    assert [f.pts for f in out] == list(range(7))
    for src, got in zip(sources, out, strict=True):
        assert (got.width, got.height, got.format.name) == (97, 55, "yuv420p")
        assert plane_view(got, 1).shape == (28, 49)
        np.testing.assert_array_equal(plane_view(got, 0), plane_view(src, 0))
