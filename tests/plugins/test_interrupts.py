"""SIGINT, SIGTERM and SIGHUP sent to a real ``chromaflow`` process at several points of a run (issue 16).

Every case runs the console script in a subprocess on tiny generated media and checks the exit code (130, 143,
129), a one-line message without a traceback, and that the run's folder is exactly as before: the inputs unchanged
(SHA-256 before and after) and nothing left under a final or a partial name.

How each point is reached:

- start-up: the handlers are in place once ``/proc/PID/status`` shows SIGTERM and SIGHUP caught; the signal is sent
  then, while torch is still loading (checked in ``/proc/PID/maps``);
- encoding: y4m on stdin, held open after a few frames, so the writer has its partial file open and waits;
- after the first processed frame (decode and model done, encoder running) and just before the first rename:
  nothing outside the process marks these moments, so the run is asked to wait there with the test hook
  ``CHROMAFLOW_TEST_PAUSE_AT`` (:mod:`chromaflow.core.stopping`) and says so on stderr.
"""

import hashlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from chromaflow.core.nets.base import build_base
from chromaflow.core.nets.zhang import SIGGRAPH17

from support.pyav_synth import synth_rgb, write_clip

pytestmark = pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")

CODES = {signal.SIGINT: 130, signal.SIGTERM: 143, signal.SIGHUP: 129}
WORDS = {signal.SIGINT: "interrupted", signal.SIGTERM: "terminated", signal.SIGHUP: "hung up"}
LIMIT_S = 120  # generous: the machine is shared; no assertion is about time


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("models")
    torch.manual_seed(0)
    torch.save({"arch": "base", "state_dict": build_base().state_dict()}, folder / "base.pt")
    torch.save({"arch": "siggraph17", "state_dict": SIGGRAPH17(width=4).state_dict()}, folder / "sig.pt")
    return {"video": str(folder / "base.pt"), "image": str(folder / "sig.pt")}


@pytest.fixture
def work(tmp_path: Path) -> Path:
    """A folder with the inputs of every verb: a clip, a y4m clip, a folder of photos."""
    write_clip(tmp_path / "clip.mkv", frames=8, codec="ffv1", audio=True)
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        cv2.imwrite(str(photos / f"p{i}.png"), synth_rgb(24, 20, i)[:, :, ::-1].mean(axis=2).astype(np.uint8))
    return tmp_path


@pytest.fixture
def meso(shared: Path) -> None:
    from chromaflow.core import registry

    registry.import_file("meso4-df", shared / "models/mesonet/Meso4_DF.h5")


def snapshot(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "folder"
        for p in sorted(folder.rglob("*"))
    }


def argv_for(verb: str, work: Path, models: dict[str, str]) -> list[str]:
    clip, out, ffv1 = str(work / "clip.mkv"), str(work / "out.mkv"), ["--codec", "ffv1"]
    video, sidecars = (
        ["--model", models["video"], "--size", "32"],
        ["--scores", f"{work}/s.jsonl", "--vtt", f"{work}/s.vtt"],
    )
    return {
        "colorize": ["colorize", clip, out, *video, "--batch", "2", *ffv1],
        "colorize-seq": ["colorize", clip, str(work / "%03d.png"), *video],
        "deflicker": ["deflicker", clip, out, "--radius", "1", *ffv1],
        "deepfake": ["deepfake", clip, out, *sidecars, *ffv1],
        "deepfake-sidecars": ["deepfake", clip, *sidecars],
        "image": [
            "image",
            str(work / "photos"),
            str(work / "colour"),
            "--model",
            models["image"],
            "--size",
            "16",
        ],
    }[verb]


def start(argv: list[str], pause: str | None = None, stdin: int | None = None) -> subprocess.Popen[bytes]:
    env = {**os.environ, "CHROMAFLOW_DEVICE": "cpu"}
    env.pop("CHROMAFLOW_TEST_PAUSE_AT", None)
    if pause is not None:
        env["CHROMAFLOW_TEST_PAUSE_AT"] = pause
    return subprocess.Popen(
        [sys.executable, "-m", "chromaflow", *argv, *(["--quiet"] if argv[0] != "image" else [])],
        stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip


def stderr_lines(proc: subprocess.Popen[bytes]) -> Iterator[str]:
    assert proc.stderr is not None
    for line in proc.stderr:
        yield line.decode(errors="replace")


def wait_for_pause(proc: subprocess.Popen[bytes], point: str) -> list[str]:
    """Read stderr until the run says it waits at ``point``."""
    seen = []
    for line in stderr_lines(proc):
        seen.append(line)
        if f"test pause at {point}" in line:
            return seen
    raise AssertionError(f"the run ended (code {proc.wait()}) before reaching {point}: {''.join(seen)}")


def finish(proc: subprocess.Popen[bytes], signum: int, before: list[str] | None = None) -> str:
    """Send ``signum``, wait, and check the exit code and message; return all of stderr."""
    proc.send_signal(signum)
    rest = proc.communicate(timeout=LIMIT_S)[1]
    err = "".join(before or []) + rest.decode(errors="replace")
    assert proc.returncode == CODES[signum], err
    assert "Traceback" not in err, err
    assert f"chromaflow: {WORDS[signum]}" in err, err
    return err


def caught_signals(pid: int) -> set[int]:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            mask = int(line.split()[1], 16)
            return {s for s in range(1, 65) if mask >> (s - 1) & 1}
    return set()


# ------------------------------------------------------------------------------------------------ start-up


@pytest.mark.parametrize(
    ("verb", "signum"),
    [
        ("colorize", signal.SIGINT),
        ("deflicker", signal.SIGTERM),
        ("deepfake", signal.SIGHUP),
        ("image", signal.SIGTERM),
    ],
)
def test_a_signal_during_start_up_is_a_clean_exit(
    verb: str, signum: int, work: Path, models: dict[str, str]
) -> None:
    before = snapshot(work)
    proc = start(argv_for(verb, work, models))
    deadline = time.monotonic() + LIMIT_S
    while not {signal.SIGTERM, signal.SIGHUP} <= caught_signals(proc.pid):
        assert proc.poll() is None and time.monotonic() < deadline, "the run should be starting"
        time.sleep(0.002)
    assert "libtorch" not in Path(f"/proc/{proc.pid}/maps").read_text(), "the handlers come before torch"
    finish(proc, signum)
    assert snapshot(work) == before


# --------------------------------------------------------------------------------------- while encoding


def y4m_of(clip: Path) -> bytes:
    sink = io.BytesIO()
    with av.open(str(clip)) as src, av.open(sink, "w", format="yuv4mpegpipe") as out:
        stream = out.add_stream("wrapped_avframe", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            frame.pts = i
            out.mux(stream.encode(frame))
    return sink.getvalue()


def test_a_signal_while_encoding_from_a_quiet_pipe_leaves_nothing(work: Path, models: dict[str, str]) -> None:
    """The writer of stdin sent some frames and went quiet, the pipe still open: the run is stopped all the same.

    If the first signal cannot end the run while the pipe stays open (the decoder waits for the next byte), a
    second one, as ``docker stop`` or an impatient user sends, ends it at once, still removing the partial file.
    """
    signum = signal.SIGTERM
    data = y4m_of(work / "clip.mkv")
    before = snapshot(work)
    argv = [
        "colorize",
        "-",
        str(work / "out.mkv"),
        "--model",
        models["video"],
        "--size",
        "32",
        "--codec",
        "ffv1",
    ]
    proc = start([*argv, "--no-smooth", "--batch", "2"], stdin=subprocess.PIPE)
    assert proc.stdin is not None and proc.stderr is not None
    proc.stdin.write(data)
    proc.stdin.flush()
    deadline = time.monotonic() + LIMIT_S
    while not any("chromaflow-partial" in p.name for p in work.iterdir()):
        assert proc.poll() is None and time.monotonic() < deadline, "the writer should have its partial file"
        time.sleep(0.05)
    proc.send_signal(signum)
    try:
        proc.wait(timeout=3)
    except subprocess.TimeoutExpired:
        proc.send_signal(signum)
        proc.wait(timeout=LIMIT_S)
    err = proc.stderr.read().decode(errors="replace")
    proc.stdin.close()
    assert proc.returncode == CODES[signum], err
    assert f"chromaflow: {WORDS[signum]}" in err and "Traceback" not in err, err
    assert snapshot(work) == before


# ----------------------------------------------------------- after the first frame, and just before the rename


@pytest.mark.parametrize(
    ("verb", "point", "signum"),
    [
        ("colorize", "frame", signal.SIGINT),
        ("colorize", "commit", signal.SIGTERM),
        ("colorize-seq", "commit", signal.SIGHUP),
        ("deflicker", "frame", signal.SIGHUP),
        ("deflicker", "commit", signal.SIGTERM),
        ("deepfake", "frame", signal.SIGTERM),
        ("deepfake", "commit", signal.SIGHUP),
        ("deepfake-sidecars", "commit", signal.SIGINT),
        ("image", "frame", signal.SIGTERM),
        ("image", "commit", signal.SIGHUP),
    ],
)
def test_a_signal_mid_run_leaves_nothing(
    verb: str, point: str, signum: int, work: Path, models: dict[str, str], request: pytest.FixtureRequest
) -> None:
    if verb.startswith("deepfake"):
        request.getfixturevalue("meso")
    before = snapshot(work)
    proc = start(argv_for(verb, work, models), pause=point)
    seen = wait_for_pause(proc, point)
    deadline = time.monotonic() + LIMIT_S  # the encoder thread opens its partial file on its own time
    while not any("chromaflow-partial" in p.name for p in work.rglob("*")):
        assert proc.poll() is None and time.monotonic() < deadline, "the run is under way: partials exist"
        time.sleep(0.02)
    finish(proc, signum, seen)
    assert snapshot(work) == before


# ------------------------------------------------------------------------------- the rules, in this process


def test_a_signal_while_outputs_are_moved_into_place_waits_for_the_move() -> None:
    """In the main thread of this test process, with the command line's handlers in place for the duration."""
    from chromaflow.core import stopping

    previous = {s: signal.getsignal(s) for s in CODES}
    with stopping.handling_signals():
        with stopping.moving_into_place():
            os.kill(os.getpid(), signal.SIGTERM)
            for _ in range(100):  # the handler runs between bytecodes of this thread
                time.sleep(0.001)
            moved = True
        late = stopping.held()
        assert moved and late is not None and late.exit_code == 143
    with pytest.raises(stopping.Stopped) as stop, stopping.handling_signals():
        os.kill(os.getpid(), signal.SIGHUP)
        for _ in range(1000):
            time.sleep(0.001)
    assert stop.value.exit_code == 129 and str(stop.value) == "hung up (SIGHUP)"
    assert {s: signal.getsignal(s) for s in CODES} == previous, "the test process gets its own handlers back"
