"""`chromaflow colorize` / `chromaflow deepfake`: files, y4m pipes, --json, exit codes, Ctrl-C."""

import io
import json
import signal
import stat
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from chromaflow.core.nets.base import build_base
from chromaflow.filters.pyav.frames import plane_view
from chromaflow.plugins.cli.main import main

from support.face_media import write_face_clip
from support.pyav_synth import synth_rgb, write_clip


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The `base` architecture with seeded random weights (the trained default is not needed to test plumbing)."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    torch.save({"arch": "base", "state_dict": build_base().state_dict()}, path)
    return str(path)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "clip.mkv"
    write_clip(path, frames=6, audio=True)
    return path


def y4m_bytes(frames: int, width: int = 64, height: int = 48) -> bytes:
    sink = io.BytesIO()
    with av.open(sink, "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("wrapped_avframe", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(synth_rgb(width, height, i), format="rgb24").reformat(
                format="yuv420p"
            )
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return sink.getvalue()


def read_y4m(data: bytes) -> list[av.VideoFrame]:
    with av.open(io.BytesIO(data), format="yuv4mpegpipe") as c:
        return list(c.decode(video=0))


def test_colorize_file_with_json(
    tiny_model: str, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mp4"
    code = main(
        ["colorize", str(clip), str(out), "--model", tiny_model, "--size", "32", "--smooth", "1", "--json"]
    )
    captured = capsys.readouterr()
    assert code == 0
    summary = json.loads(captured.out)
    assert summary["frames_out"] == 6 and summary["copied_streams"] == ["#1 audio (aac)"]
    assert summary["model"] == tiny_model and summary["smooth"] == 1
    assert "frame/s" not in captured.err and "it/s" not in captured.err, (
        "no progress bar when stderr is no TTY"
    )
    with av.open(str(out)) as c:
        assert [s.type for s in c.streams] == ["video", "audio"]


def test_device_engine_end_to_end(tiny_model: str, clip: Path, tmp_path: Path) -> None:
    """`--engine device` (forced on the CPU here) writes the same luma and, to within a code step, the same chroma
    as the temporal video engine through a real encode (lossless FFV1, so the codec adds nothing)."""
    outs = {}
    for engine in ("device", "video"):
        outs[engine] = tmp_path / f"{engine}.nut"
        args = [
            "colorize",
            str(clip),
            str(outs[engine]),
            "--model",
            tiny_model,
            "--size",
            "32",
            "--no-smooth",
        ]
        assert main([*args, "--engine", engine]) == 0
    with av.open(str(outs["device"])) as a, av.open(str(outs["video"])) as b:
        pairs = list(zip(a.decode(video=0), b.decode(video=0), strict=True))
    assert len(pairs) == 6
    for fa, fb in pairs:
        assert np.array_equal(plane_view(fa, 0), plane_view(fb, 0))
        for p in (1, 2):
            assert np.abs(plane_view(fa, p).astype(int) - plane_view(fb, p).astype(int)).max() <= 1
    assert (
        main(["colorize", str(clip), str(tmp_path / "x.nut"), "--model", tiny_model, "--engine", "device"])
        == 2
    )
    assert not (tmp_path / "x.nut").exists()


def test_y4m_pipe_between_two_pyav_ends(tiny_model: str) -> None:
    """What `ffmpeg -f yuv4mpegpipe - | chromaflow colorize - - | ffmpeg -i - out.mp4` does, with PyAV at both ends."""
    data = y4m_bytes(5)
    proc = subprocess.run(
        [sys.executable, "-m", "chromaflow.plugins.cli.main", "colorize", "-", "-", "--model", tiny_model,
         "--size", "32", "--no-smooth"],
        input=data, capture_output=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr.decode()
    frames_in, frames_out = read_y4m(data), read_y4m(proc.stdout)
    assert len(frames_out) == 5
    for a, b in zip(frames_in, frames_out, strict=True):
        assert np.array_equal(plane_view(a, 0), plane_view(b, 0)), "luma passes through the pipe bit for bit"
    assert proc.stderr.decode().strip() == "", "nothing but data on stdout, and no chatter on stderr"


def test_sigint_leaves_no_output(tiny_model: str, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    proc = subprocess.Popen(
        [sys.executable, "-m", "chromaflow.plugins.cli.main", "colorize", "-", str(out), "--model", tiny_model,
         "--size", "32", "--no-smooth", "--batch", "2", "--codec", "ffv1"],  # intra codec: packets at once
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdin is not None
    proc.stdin.write(
        y4m_bytes(12)
    )  # part of a stream: the writer opens its temporary file, then waits for more
    proc.stdin.flush()
    deadline = time.monotonic() + 90
    while not any("partial" in p.name for p in tmp_path.iterdir()):
        assert time.monotonic() < deadline and proc.poll() is None, "the run should be under way"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()
    assert list(tmp_path.iterdir()) == [], "no partial or final output after Ctrl-C"


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["colorize", "{tmp}/missing.mp4", "{tmp}/o.mp4"], 3, "does not exist"),
        (["colorize", "{clip}", "{tmp}/nofolder/o.mp4"], 6, "does not exist"),
        (["colorize", "{clip}", "{clip}"], 6, "is the input"),
        (["colorize", "{clip}", "-", "--json"], 2, "--json"),
        (["colorize", "{clip}", "{tmp}/o.mp4", "--codec", "nosuch"], 2, "not available"),
        (["colorize", "{audio}", "{tmp}/o.mp4"], 3, "no video stream"),
        (["colorize", "{clip}", "{tmp}/o.mp4", "--model", "siggraph17"], 4, "siggraph17"),
        (["colorize", "{clip}", "{tmp}/o.mp4", "--size", "30"], 2, "multiple of 8"),
        (["deepfake", "{clip}", "--every", "0"], 2, "--every"),
        (["deepfake", "{clip}", "--min-track", "0"], 2, "--min-track"),
    ],
)
def test_exit_codes(
    argv: list[str], code: int, message: str, tiny_model: str, clip: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    audio = tmp_path / "a.mka"
    with av.open(str(audio), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
        frame.sample_rate = 48000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    args = [a.format(tmp=tmp_path, clip=clip, audio=audio) for a in argv]
    if args[0] == "colorize":  # the tiny model first; a case's own options come later and win
        args[3:3] = ["--model", tiny_model, "--size", "32"]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(args) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "a failed run writes nothing"


# ------------------------------------------------------------------------------------- references, progress


def _load_plugin_module(name: str, path: Path) -> object:
    """A host plug-in's plain-Python half (no bpy / obspython needed), loaded from its file."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


def _decoded(path: Path) -> list[av.VideoFrame]:
    with av.open(str(path)) as c:
        return list(c.decode(video=0))


def test_ref_transfer_end_to_end_with_json_progress(tmp_path: Path) -> None:
    """--model none --ref 0=key.png: keyframe transfer alone, on real files; the luma is the input's, bit for bit."""
    import cv2

    src = tmp_path / "gray.mkv"
    write_clip(src, frames=8, codec="ffv1", pix_fmt="yuv420p")
    colour = _decoded(src)
    key = tmp_path / "key.png"
    cv2.imwrite(str(key), colour[0].to_ndarray(format="rgb24")[:, :, ::-1])
    out = tmp_path / "out.mkv"
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run(
        [sys.executable, "-m", "chromaflow.plugins.cli.main", "colorize", str(src), str(out), "--model", "none",
         "--ref", f"0={key}", "--transfer", "propagate", "--smooth", "1", "--codec", "ffv1", "--progress", "json"],
        capture_output=True, text=True, timeout=180, check=False, cwd=root,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    got = _decoded(out)
    assert len(got) == 8
    for a, b in zip(colour, got, strict=True):
        assert np.array_equal(plane_view(a, 0), plane_view(b, 0)), "luma of the output == luma of the input"
    err = np.abs(plane_view(got[0], 1).astype(int) - plane_view(colour[0], 1).astype(int)).mean()
    neutral = np.abs(plane_view(colour[0], 1).astype(int) - 128).mean()
    assert err < 0.25 * neutral, "the keyframe carries its reference's colours"
    # --progress json: every stderr line is a JSON object the Blender add-on and the OBS script understand
    lines = [json.loads(line) for line in proc.stderr.splitlines() if line.strip()]
    assert lines and all(set(d) == {"frames", "total", "fps"} for d in lines)
    assert lines[-1]["frames"] == 8 and lines[-1]["total"] in (8, None)
    assert [d["frames"] for d in lines] == sorted(d["frames"] for d in lines)
    client = _load_plugin_module("cf_cli_client", root / "plugins/cli_client/chromaflow_cli_client.py")
    parser = client.ProgressParser()  # type: ignore[attr-defined]  # the one parser both hosts use
    parser.feed(proc.stderr)
    assert parser.progress.done == 8


def test_ref_with_a_model_and_option_errors(
    tiny_model: str, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import cv2

    key = tmp_path / "key.png"
    cv2.imwrite(str(key), _decoded(clip)[2].to_ndarray(format="rgb24")[:, :, ::-1])
    out = tmp_path / "out.mkv"
    args = [
        "colorize",
        str(clip),
        str(out),
        "--model",
        tiny_model,
        "--size",
        "32",
        "--ref",
        f"2={key}",
        "--json",
    ]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["references"] == [2] and summary["transfer"] == "auto" and summary["smooth"] == 2
    for bad, code, message in (
        (["--model", "none"], 2, "nothing to colour with"),
        (["--ref", "two=key.png"], 2, "N=IMAGE"),
        (["--ref", f"0={tmp_path / 'missing.png'}"], 3, "does not exist"),
        (["--ref", f"0={key}", "--hint", "5,5,#ff0000"], 2, "hints"),
    ):
        target = tmp_path / "bad.mkv"
        assert main(["colorize", str(clip), str(target), "--size", "32", "--model", tiny_model, *bad]) == code
        assert message in capsys.readouterr().err
        assert not target.exists()


# ----------------------------------------------------------------------------------------------- deepfake


@pytest.fixture
def face_clip(shared: Path, tmp_path: Path) -> Path:

    from chromaflow.core import registry

    registry.import_file("meso4-df", shared / "models/mesonet/Meso4_DF.h5")
    return write_face_clip(shared, tmp_path / "face.mkv", 4)


def test_deepfake_overlay_scores_and_vtt(
    face_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out, scores, vtt = tmp_path / "o.mkv", tmp_path / "s.jsonl", tmp_path / "s.vtt"
    code = main(["deepfake", str(face_clip), str(out), "--scores", str(scores), "--vtt", str(vtt), "--json",
                 "--every", "2", "--device", "cpu"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = [json.loads(line) for line in scores.read_text().splitlines()]
    assert [row["frame"] for row in lines[:-1]] == [0, 2] and lines[0]["time"] == 0.0
    assert lines[0]["faces"] and "video" in lines[-1] and lines[-1]["video"]["frames"] == 2
    assert vtt.read_text().startswith("WEBVTT")
    plain = tmp_path / "plain.txt"
    plain.write_text("")  # what the umask gives a file created the ordinary way
    for sidecar in (scores, vtt):
        assert stat.S_IMODE(sidecar.stat().st_mode) == stat.S_IMODE(plain.stat().st_mode), (
            f"{sidecar.name} has the mode of a plainly created file, not mkstemp's 0600"
        )
    summary = json.loads(captured.out)
    assert summary["frames_out"] == 4 and summary["video"]["model"] == "meso4-df"
    with av.open(str(out)) as c:
        assert c.streams.video[0].frames in (0, 4)


def test_deepfake_scores_only(face_clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["deepfake", str(face_clip), "--json", "--device", "cpu"])
    summary = json.loads(capsys.readouterr().out)
    assert code == 0 and summary["output"] == "" and summary["video"]["frames"] == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["face.mkv"]
