"""The CLI client the Blender add-on and the OBS script share: the program, the environment, the progress parser,
a run of a real process, and the packaged copies.

Process tests use small Python child programs in place of the CLI where timing or failures must be exact; the
real CLI runs in the error test here, in tests/plugins/test_obs_script.py and in the headless Blender test.
"""

import ast
import importlib.util
import sys
import threading
import time
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


packager = _load("chromaflow_package_hosts", REPO / "tools" / "package_hosts.py")
client = _load("chromaflow_cli_client", packager.CLIENT)
host = _load("chromaflow_host_tools", REPO / "tests" / "support" / "host_tools.py")


# ---------------------------------------------------------------------------------------------------------------
# One source, copied whole into both packages


def test_client_imports_the_standard_library_only() -> None:
    """It runs on the Python that Blender or OBS embeds, where only the standard library is sure to exist."""
    tree = ast.parse(packager.CLIENT.read_text(encoding="utf-8"))
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module and n.level == 0}
    assert all(n.split(".")[0] in sys.stdlib_module_names for n in names), names
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree))


def test_no_copy_of_the_client_is_committed_beside_the_hosts() -> None:
    copies = sorted(p for p in (REPO / "plugins").rglob(packager.CLIENT.name) if p != packager.CLIENT)
    assert copies == [], "delete the copies: tools/package_hosts.py adds the client to each package"


def test_packages_carry_the_client_byte_for_byte(tmp_path: Path) -> None:
    source = packager.CLIENT.read_bytes()
    with zipfile.ZipFile(packager.build_addon(tmp_path)) as archive:
        assert archive.read(f"chromaflow_vse/{packager.CLIENT.name}") == source
    folder = packager.build_obs(tmp_path)
    assert (folder / packager.CLIENT.name).read_bytes() == source
    assert sorted(p.name for p in folder.iterdir()) == sorted(packager.obs_files())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chromaflow-obs", "chromaflow_vse-0.1.0.zip"]


def test_packaging_refuses_a_stray_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    host_folder = tmp_path / "obs"
    host_folder.mkdir()
    (host_folder / packager.CLIENT.name).write_bytes(packager.CLIENT.read_bytes())
    monkeypatch.setattr(packager, "OBS", host_folder)
    with pytest.raises(SystemExit, match="delete it"):
        packager.build_obs(tmp_path / "out")
    assert not (tmp_path / "out" / "chromaflow-obs").exists()


# ---------------------------------------------------------------------------------------------------------------
# The program and its environment


def test_cli_prefix_forms(tmp_path: Path) -> None:
    with pytest.raises(client.ClientError, match=r"not on PATH.*in the add-on preferences"):
        client.cli_prefix("", "the add-on preferences", which=lambda _: None, environ={})
    assert client.cli_prefix("", which=lambda _: "/opt/bin/chromaflow", environ={}) == ["/opt/bin/chromaflow"]
    python = tmp_path / "env" / "bin" / "python3.12"
    python.parent.mkdir(parents=True)
    python.write_text("")
    assert client.cli_prefix(str(python)) == [str(python), "-m", "chromaflow"]
    with pytest.raises(client.ClientError, match="without bin/chromaflow"):
        client.cli_prefix(str(tmp_path / "env"))
    (tmp_path / "env" / "bin" / "chromaflow").write_text("")
    assert client.cli_prefix(str(tmp_path / "env")) == [str(tmp_path / "env" / "bin" / "chromaflow")]
    with pytest.raises(client.ClientError, match="does not exist; fix it in the script's settings"):
        client.cli_prefix(str(tmp_path / "nope"), "the script's settings")
    # An empty setting falls back to $CHROMAFLOW_CLI before PATH.
    environ = {"CHROMAFLOW_CLI": str(python)}
    assert client.cli_prefix(" ", environ=environ, which=lambda _: None) == [str(python), "-m", "chromaflow"]


def test_child_environment_drops_the_hosts_python() -> None:
    env = client.child_environment({"PYTHONHOME": "/blender/python", "PYTHONPATH": "x", "PATH": "/bin"})
    assert "PYTHONHOME" not in env and "PYTHONPATH" not in env
    assert env["PATH"] == "/bin" and env["PYTHONUNBUFFERED"] == "1" and env["PYTHONIOENCODING"] == "utf-8"


# ---------------------------------------------------------------------------------------------------------------
# Progress and summary


def test_progress_from_a_tqdm_bar_split_anywhere() -> None:
    stream = (
        "chromaflow: loading model\n"
        "colorize:  10%|#         | 3/30 [00:01<00:09, 2.9 frame/s]\r"
        "colorize:  50%|#####     | 15/30 [00:05<00:05, 3.1 frame/s]\r"
        "colorize: 100%|##########| 30/30 [00:10<00:00, 3.0 frame/s]\n"
    )
    parser = client.ProgressParser(expected_total=99)
    seen = []
    for i in range(0, len(stream), 7):  # pipes deliver arbitrary chunks
        if parser.feed(stream[i : i + 7]):
            seen.append(parser.progress.done)
    assert parser.progress.done == 30 and parser.progress.total == 30
    assert parser.progress.fps == pytest.approx(3.0)
    assert seen == sorted(seen) and 15 in seen
    assert parser.progress.describe().startswith("100% 30/30 frames")


def test_progress_json_lines_and_errors_and_paths() -> None:
    parser = client.ProgressParser(expected_total=40)
    parser.feed("reading /data/12/34.mp4 (1920/1080)\n")
    assert parser.progress.done == 0  # path components are not a count
    parser.feed('{"progress": {"frames": 8, "total": 40, "fps": 12.5}}\n')
    assert (parser.progress.done, parser.progress.total, parser.progress.fps) == (8, 40, 12.5)
    assert parser.progress.fraction == pytest.approx(0.2)
    parser.feed('{"frames": 9, "total": null, "fps": 3.0}\n')  # --progress json before the total is known
    assert (parser.progress.done, parser.progress.total) == (9, 40)
    parser.feed("frame 10\n")
    assert parser.progress.done == 10
    parser.feed("chromaflow: REAL (score 0.497)\n")
    assert parser.progress.done == 10
    parser.feed("chromaflow: error: the file x.mp4 has no video stream; give a video file\n")
    parser.feed("chromaflow colorize: error: argument --smooth: invalid int value: 'x'")
    assert parser.close() is False
    assert parser.errors == [
        "the file x.mp4 has no video stream; give a video file",
        "argument --smooth: invalid int value: 'x'",
    ]
    assert client.ProgressParser().progress.fraction is None


def test_parse_summary_takes_the_last_json_object() -> None:
    assert client.parse_summary('noise\n{"a": 1}\n{"frames_out": 5}\n') == {"frames_out": 5}
    assert client.parse_summary('{\n "frames_out": 7\n}\n') == {"frames_out": 7}
    assert client.parse_summary("") == {}


# ---------------------------------------------------------------------------------------------------------------
# A run


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


_COUNTS_THEN_WRITES = (
    "import sys, time\n"
    "for i in range(1, 4):\n"
    "    sys.stderr.write(f'\\r{i}/3 [00:00, 9.0 frame/s]'); sys.stderr.flush(); time.sleep(0.05)\n"
    "sys.stderr.write('\\n')\n"
    "for path in sys.argv[1:]:\n"
    "    open(path, 'w').write('video')\n"
    "print('{\"frames_out\": 3}')\n"
)


@pytest.mark.parametrize("use_pty", [True, False], ids=["pty", "pipe"])
def test_cli_run_moves_the_results_and_cleans_up(tmp_path: Path, use_pty: bool) -> None:
    finals = [tmp_path / "clip.deepfake.mp4", tmp_path / "clip.deepfake.jsonl"]
    run = client.CliRun(
        lambda work: [*_child(_COUNTS_THEN_WRITES), *(str(work / f.name) for f in finals)],
        finals,
        expected_frames=3,
        use_pty=use_pty,
    )
    updates = []
    assert run.wait(lambda p: updates.append(p.done), interval=0.01) == 0
    assert run.finish() == finals
    assert all(f.read_text() == "video" for f in finals) and run.summary == {"frames_out": 3}
    assert updates and updates[-1] == 3  # the last count is reported, even when it came as the process ended
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f.name for f in finals)


def test_cli_run_moves_all_results_or_none(tmp_path: Path) -> None:
    finals = [tmp_path / "clip.deepfake.mp4", tmp_path / "clip.deepfake.jsonl"]
    run = client.CliRun(lambda work: [*_child(_COUNTS_THEN_WRITES), str(work / finals[0].name)], finals)
    run.wait(interval=0.01)
    with pytest.raises(client.ClientError, match=r"did not write clip\.deepfake\.jsonl"):
        run.finish()
    assert list(tmp_path.iterdir()) == []


def test_cli_run_cancel_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "clip.colorized.mp4"
    code = "import sys, time\nopen(sys.argv[1], 'w').write('partial')\ntime.sleep(60)\n"
    run = client.CliRun(lambda work: [*_child(code), str(work / final.name)], [final])
    deadline = time.monotonic() + 30
    while not any(run.work_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(run.work_dir.iterdir())  # the child has written its partial file
    run.cancel(grace=2.0)
    assert run.process.poll() is not None
    assert list(tmp_path.iterdir()) == []


def test_cli_run_cancelled_from_another_thread_while_waited_on(tmp_path: Path) -> None:
    """The OBS worker waits on the run while OBS's unload cancels it from its own thread."""
    final = tmp_path / "rec.colorized.mkv"
    code = "import sys, time\nopen(sys.argv[1], 'w').write('partial')\ntime.sleep(60)\n"
    run = client.CliRun(lambda work: [*_child(code), str(work / final.name)], [final])
    outcome: list[object] = []

    def waiter() -> None:
        run.wait(interval=0.02)
        try:
            outcome.append(run.finish())
        except client.ClientError as err:
            outcome.append(err)

    thread = threading.Thread(target=waiter)
    thread.start()
    deadline = time.monotonic() + 30
    while not any(run.work_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    run.cancel(grace=2.0)
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert isinstance(outcome[0], client.ClientError) and "cancelled" in str(outcome[0])
    assert list(tmp_path.iterdir()) == []


def test_cli_run_reports_the_real_clis_error(tmp_path: Path) -> None:
    final = tmp_path / "out.colorized.mp4"
    missing = tmp_path / "missing.mp4"
    cli = host.chromaflow_cli()
    run = client.CliRun(lambda work: [cli, "colorize", str(missing), str(work / final.name)], [final])
    assert run.wait(interval=0.05) != 0
    with pytest.raises(client.ClientError) as err:
        run.finish()
    assert "missing.mp4" in str(err.value) and "exited with code" not in str(
        err.value
    )  # the CLI's own message
    assert list(tmp_path.iterdir()) == []


def test_cli_run_refuses_a_missing_folder_and_a_missing_program(tmp_path: Path) -> None:
    with pytest.raises(client.ClientError, match="does not exist"):
        client.CliRun(lambda work: ["true"], [tmp_path / "no" / "x.mp4"])
    with pytest.raises(client.ClientError, match=r"could not start .* in the add-on preferences"):
        client.CliRun(
            lambda work: [str(tmp_path / "gone")], [tmp_path / "x.mp4"], setting="the add-on preferences"
        )
    assert list(tmp_path.iterdir()) == []
