"""`chromaflow batch` on a real Ray: identical to one process, failures kept to their item, resumable, a killed
worker retried, and a two-node cluster started with `ray start` on this machine.

Ray is in the `test` extra, so these run for real. One embedded Ray (2 CPUs) serves the module; the clips are
tiny (64x48, 30-48 frames) and `--segment-frames 16` splits them into several pieces, some inside a shot.
"""

import contextlib
import io
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
import ray

from chromaflow.plugins.batch import runner
from chromaflow.plugins.batch.journal import JOURNAL_NAME, sha256_file
from chromaflow.plugins.cli.main import main

from support.batch_media import decoded_planes, stream_kinds, write_shots

VENV_BIN = Path(sys.executable).parent
COMMON = ["--size", "64", "--smooth", "2", "--batch", "4", "--codec", "ffv1", "--quiet"]
BATCH = ["--workers", "2", "--segment-frames", "16", "--format", "mkv"]


@pytest.fixture(scope="module")
def ray_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """An embedded Ray for the module; its workers see this CHROMAFLOW_HOME (set before they start)."""
    home = tmp_path_factory.mktemp("batch-home")
    before = os.environ.get("CHROMAFLOW_HOME")
    os.environ["CHROMAFLOW_HOME"] = str(home)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    try:
        yield home
    finally:
        ray.shutdown()
        if before is None:
            os.environ.pop("CHROMAFLOW_HOME", None)
        else:
            os.environ["CHROMAFLOW_HOME"] = before


@dataclass
class ColorizeJob:
    folder: Path
    out: Path
    code: int
    stderr: str
    report: dict[str, Any]
    reference: dict[str, Path]  # output name -> single-process output
    manifest: Path


def _refs(folder: Path, frames: list[np.ndarray], keys: list[int]) -> list[str]:
    specs = []
    for k in keys:
        path = folder / f"key{k}.png"
        cv2.imwrite(str(path), frames[k][:, :, ::-1])
        specs.append(f"{k}={path}")
    return specs


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 800), dtype=np.int16), format="s16", layout="mono")
        frame.sample_rate, frame.pts, frame.time_base = 8000, 0, Fraction(1, 8000)
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


@pytest.fixture(scope="module")
def colorize_job(ray_home: Path, tmp_path_factory: pytest.TempPathFactory) -> ColorizeJob:
    """One batch: a.mkv (FFV1, a cut at 20, keyframes 5 and 30 from the manifest), b.mkv (H.264 with short GOPs,
    B-frames, audio and subtitles; model colour on blocks of 4), and three bad inputs; plus `chromaflow colorize`
    of each good input with the same options."""
    folder = tmp_path_factory.mktemp("batch-colorize")
    frames_a = write_shots(folder / "a.mkv", [20, 28])
    write_shots(folder / "b.mkv", [12, 18], codec="libx264", gop=8, audio=True, subtitles=True)
    (folder / "corrupt.mkv").write_bytes(np.random.default_rng(0).bytes(4000))
    _audio_only(folder / "sound.mka")
    refs = _refs(folder, frames_a, [5, 30])
    manifest = folder / "items.jsonl"
    rows = [
        {"input": "a.mkv", "options": [x for spec in refs for x in ("--ref", spec)]},
        {"input": "b.mkv"},
        {"input": "missing.mkv"},
        {"input": "corrupt.mkv"},
        {"input": "sound.mka"},
    ]
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = folder / "out"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["batch", "colorize", str(manifest), "--out", str(out), *BATCH, *COMMON[:-1],
                     "--progress", "json"])  # fmt: skip
    reference = {"a.mkv": folder / "ref-a.mkv", "b.mkv": folder / "ref-b.mkv"}
    ref_flags = [x for spec in refs for x in ("--ref", spec)]
    assert main(["colorize", str(folder / "a.mkv"), str(reference["a.mkv"]), *COMMON, *ref_flags]) == 0
    assert main(["colorize", str(folder / "b.mkv"), str(reference["b.mkv"]), *COMMON]) == 0
    report = json.loads((out / "report.json").read_text())
    return ColorizeJob(folder, out, code, err.getvalue(), report, reference, manifest)


def _item(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(i for i in report["items"] if Path(i["input"]).name == name)


def test_every_frame_equals_single_process_colorize(colorize_job: ColorizeJob) -> None:
    for name, reference in colorize_job.reference.items():
        ours, theirs = decoded_planes(colorize_job.out / name), decoded_planes(reference)
        assert len(ours) == len(theirs) > 0
        for n, (x, y) in enumerate(zip(ours, theirs, strict=True)):
            assert np.array_equal(x, y), f"{name} frame {n} differs from `chromaflow colorize`"
    a = _item(colorize_job.report, "a.mkv")
    starts = [s["start"] for s in a["segments"]]
    assert starts == [0, 10, 20, 34]  # the cut at 20, and pieces inside both shots
    pids = {s["pid"] for i in colorize_job.report["items"] for s in i.get("segments", [])}
    assert len(pids) == 2, "both workers took segments"
    assert stream_kinds(colorize_job.out / "b.mkv") == ["audio", "subtitle", "video"]


def test_bad_inputs_fail_alone_and_the_exit_code_says_so(colorize_job: ColorizeJob) -> None:
    report = colorize_job.report
    assert colorize_job.code == 3
    statuses = {Path(i["input"]).name: i["status"] for i in report["items"]}
    assert statuses == {"a.mkv": "done", "b.mkv": "done", "missing.mkv": "failed", "corrupt.mkv": "failed",
                        "sound.mka": "failed"}  # fmt: skip
    assert "does not exist" in _item(report, "missing.mkv")["error"]
    assert "no video stream" in _item(report, "sound.mka")["error"]
    assert _item(report, "corrupt.mkv")["error"]
    assert "failed" in colorize_job.stderr and "missing.mkv" in colorize_job.stderr  # the summary table
    names = sorted(p.name for p in colorize_job.out.iterdir())
    assert names == [JOURNAL_NAME, "a.mkv", "b.mkv", "report.json"], "no partial or failed output left"


def test_journal_records_segments_and_items_with_their_hashes(colorize_job: ColorizeJob) -> None:
    lines = [json.loads(x) for x in (colorize_job.out / JOURNAL_NAME).read_text().splitlines()]
    items = {Path(r["input"]).name: r for r in lines if r["kind"] == "item"}
    assert set(items) == {"a.mkv", "b.mkv"}
    for name, record in items.items():
        assert record["files"] == {str(colorize_job.out / name): sha256_file(colorize_job.out / name)}
    segments = [r for r in lines if r["kind"] == "segment"]
    assert len(segments) == 4 + 3 and all(len(r["sha256"]) == 64 and r["node"] for r in segments)


def test_progress_json_lines_count_items_and_frames(colorize_job: ColorizeJob) -> None:
    lines = [json.loads(x) for x in colorize_job.stderr.splitlines() if x.startswith('{"items_done"')]
    assert lines[0]["items_done"] == 0 and lines[-1]["items_done"] == 5
    assert lines[-1]["frames"] == lines[-1]["total"] == 48 + 30


def test_resume_redoes_only_what_is_lost_and_survives_a_killed_worker(
    colorize_job: ColorizeJob, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = colorize_job.out
    a_before = (out / "a.mkv").stat().st_mtime_ns
    (out / "b.mkv").unlink()
    killed: list[int] = []
    segments = out / runner.SEGMENTS_FOLDER

    def kill_mid_segment(worker: dict[str, Any], kind: str, payload: Any) -> None:
        if kind != "segment" or killed:
            return
        # wait until the worker has opened its segment file (it is decoding and colouring), then kill it
        pattern = f".{Path(payload.path).stem}.chromaflow-partial-{worker['pid']}-*"
        for _ in range(600):
            if any(segments.rglob(pattern)):
                break
            time.sleep(0.05)
        os.kill(worker["pid"], signal.SIGKILL)
        killed.append(worker["pid"])

    hooks = runner.Hooks(on_submit=kill_mid_segment)
    monkeypatch.setattr(runner, "Hooks", lambda: hooks)
    code = main(
        ["batch", "colorize", str(colorize_job.manifest), "--out", str(out), *BATCH, *COMMON, "--resume"]
    )
    assert code == 3 and killed
    report = json.loads((out / "report.json").read_text())
    assert _item(report, "a.mkv")["status"] == "skipped" and (out / "a.mkv").stat().st_mtime_ns == a_before
    b = _item(report, "b.mkv")
    assert b["status"] == "done" and killed[0] not in {s["pid"] for s in b["segments"]}
    ours, theirs = decoded_planes(out / "b.mkv"), decoded_planes(colorize_job.reference["b.mkv"])
    assert len(ours) == len(theirs) and all(np.array_equal(x, y) for x, y in zip(ours, theirs, strict=True))


def test_deflicker_batch_equals_single_process(ray_home: Path, tmp_path: Path) -> None:
    write_shots(tmp_path / "a.mkv", [20, 28])
    assert main(["batch", "deflicker", str(tmp_path / "a.mkv"), "--out", str(tmp_path / "out"), *BATCH,
                 "--codec", "ffv1", "--quiet"]) == 0  # fmt: skip
    assert (
        main(["deflicker", str(tmp_path / "a.mkv"), str(tmp_path / "ref.mkv"), "--codec", "ffv1", "--quiet"])
        == 0
    )
    ours, theirs = decoded_planes(tmp_path / "out" / "a.mkv"), decoded_planes(tmp_path / "ref.mkv")
    assert len(ours) == len(theirs) == 48
    assert all(np.array_equal(x, y) for x, y in zip(ours, theirs, strict=True))


def _face_clip(shared: Path, path: Path) -> None:
    bgr = cv2.imread(str(shared / "data/deepfake-dev/dfdc/lynaeydofd_fr0.jpg"))
    rgb = np.ascontiguousarray(bgr[100:580, 640:1280, ::-1])
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for i in range(4):
            frame = av.VideoFrame.from_ndarray(np.roll(rgb, 2 * i, axis=1), format="rgb24").reformat(
                format="yuv420p"
            )
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def test_deepfake_batch_scores_equal_single_process(
    ray_home: Path, shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chromaflow.core import registry

    monkeypatch.setenv("CHROMAFLOW_HOME", str(ray_home))  # where the workers look for weights
    registry.import_file("meso4-df", shared / "models/mesonet/Meso4_DF.h5")
    _face_clip(shared, tmp_path / "face.mkv")
    write_shots(tmp_path / "shots.mkv", [6, 6])
    flags = ["--device", "cpu", "--every", "2"]
    out = tmp_path / "out"
    assert main(["batch", "deepfake", str(tmp_path / "face.mkv"), str(tmp_path / "shots.mkv"), "--out", str(out),
                 "--workers", "2", "--quiet", *flags]) == 0  # fmt: skip
    assert (
        main(
            [
                "deepfake",
                str(tmp_path / "face.mkv"),
                "--scores",
                str(tmp_path / "ref.jsonl"),
                "--quiet",
                *flags,
            ]
        )
        == 0
    )

    def lines(path: Path) -> list[dict[str, Any]]:
        rows = [json.loads(x) for x in path.read_text().splitlines()]
        for row in rows:  # timing of the run, not of the video
            row.get("video", {}).pop("seconds", None)
        return rows

    assert lines(out / "face.scores.jsonl") == lines(tmp_path / "ref.jsonl")
    assert lines(out / "face.scores.jsonl")[0]["faces"]
    rows = (out / "scores.csv").read_text().splitlines()
    assert rows[0].startswith("input,score,verdict") and len(rows) == 3
    face_row = next(r for r in rows if "face.mkv" in r).split(",")
    assert face_row[2] in ("REAL", "FAKE") and face_row[5] == "meso4-df"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    """End a `ray start --block` we started and everything in its process group."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)


def _ours_running(temp_dir: Path) -> list[int]:
    """Processes whose command line names our cluster's temporary folder."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if str(temp_dir).encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
    return found


def _wait_for_nodes(address: str, env: dict[str, str], count: int) -> None:
    probe = "import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); print(len([n for n in ray.nodes() if n['Alive']]))"
    for _ in range(60):
        done = subprocess.run([sys.executable, "-c", probe, address], env=env, capture_output=True, text=True)
        if done.returncode == 0 and done.stdout.strip().splitlines()[-1:] == [str(count)]:
            return
        time.sleep(1)
    raise AssertionError(f"the Ray cluster at {address} did not reach {count} nodes")


def test_two_node_cluster_on_this_machine(colorize_job: ColorizeJob, tmp_path: Path) -> None:
    temp_dir = Path(f"/tmp/cf-ray-{os.getpid()}")  # short: Ray's socket paths must fit in 107 bytes
    port = _free_port()
    address = f"127.0.0.1:{port}"
    # a loopback test cluster; token authentication is left off for it (every process here is ours)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    ray_cli = str(VENV_BIN / "ray")
    common = ["--num-cpus", "1", "--node-ip-address", "127.0.0.1", "--disable-usage-stats", "--block"]
    started: list[subprocess.Popen[bytes]] = []
    try:
        started.append(subprocess.Popen(
            [ray_cli, "start", "--head", "--port", str(port), "--temp-dir", str(temp_dir),
             "--include-dashboard", "false", *common],
            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        _wait_for_nodes(address, env, 1)
        started.append(subprocess.Popen(
            [ray_cli, "start", "--address", address, *common],
            env=env, start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        ))  # fmt: skip
        _wait_for_nodes(address, env, 2)
        out = tmp_path / "out"
        done = subprocess.run(
            [str(VENV_BIN / "chromaflow"), "batch", "colorize", str(colorize_job.folder / "b.mkv"), "--out",
             str(out), "--ray", address, *BATCH, *COMMON],
            env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    finally:
        for process in reversed(started):
            _stop(process)
        for pid in _ours_running(temp_dir):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)
    assert not _ours_running(temp_dir)
    report = json.loads((out / "report.json").read_text())
    nodes = {s["node"] for s in report["items"][0]["segments"]}
    assert len(nodes) == 2, "both nodes took segments"
    ours, theirs = decoded_planes(out / "b.mkv"), decoded_planes(colorize_job.reference["b.mkv"])
    assert len(ours) == len(theirs) and all(np.array_equal(x, y) for x, y in zip(ours, theirs, strict=True))
