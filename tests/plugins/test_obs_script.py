"""The OBS script: its logic with the real chromaflow CLI on real files, and the OBS-facing layer.

OBS itself does not run in this test: it needs a display, an OpenGL context and a configured profile and
scene collection to load a Python script, which a headless test machine does not offer (see the report of
issue 10 for the Xvfb attempt). The script module is therefore imported with a small stand-in ``obspython``
module injected into ``sys.modules``; it records what the script calls and delivers the "recording stopped"
event the way OBS's frontend API does. Everything behind that thin layer is the real code and the real CLI.
"""

import importlib.util
import sys
import threading
import time
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

REPO = Path(__file__).resolve().parents[2]
OBS_DIR = REPO / "plugins" / "obs"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


packager = _load("chromaflow_package_hosts", REPO / "tools" / "package_hosts.py")
# The names the OBS folder gives them: the logic's ``import chromaflow_cli_client`` finds the one source.
client = _load("chromaflow_cli_client", packager.CLIENT)
logic = _load("chromaflow_obs_logic", OBS_DIR / "chromaflow_obs_logic.py")
host = _load("chromaflow_host_tools", REPO / "tests" / "support" / "host_tools.py")


# ---------------------------------------------------------------------------------------------------------------
# logic


def test_output_paths_and_commands(tmp_path: Path) -> None:
    rec = tmp_path / "2024-05-01 10-00-00.mkv"
    settings = logic.Settings(mode="colorize", model="base")
    video, scores = logic.output_paths(rec, settings)
    assert video == tmp_path / "2024-05-01 10-00-00.colorized.mkv" and scores is None
    video.write_text("")
    assert logic.output_paths(rec, settings)[0] == tmp_path / "2024-05-01 10-00-00.colorized-1.mkv"

    deep = logic.Settings(mode="deepfake", suffix="checked", output_dir=str(tmp_path / "out"), overlay=False)
    video, scores = logic.output_paths(rec, deep)
    assert video is None and scores == tmp_path / "out" / "2024-05-01 10-00-00.checked.jsonl"
    argv = logic.build_command(["cf"], rec, None, scores, deep)
    assert argv[:3] == ["cf", "deepfake", str(rec)] and argv[3] == "--json"
    assert argv[argv.index("--scores") + 1] == str(scores) and "--model" not in argv
    argv = logic.build_command(["cf"], rec, tmp_path / "o.mkv", None, settings)
    assert argv[:4] == ["cf", "colorize", str(rec), str(tmp_path / "o.mkv")]
    assert argv[argv.index("--model") + 1] == "base"


def test_classifier_setting(tmp_path: Path) -> None:
    from chromaflow.core.options import CLASSIFIERS

    assert logic.CLASSIFIERS == CLASSIFIERS
    deep = logic.Settings(mode="deepfake", classifier="effnet-b7-dfdc")
    argv = logic.build_command(["cf"], tmp_path / "r.mkv", None, tmp_path / "r.jsonl", deep)
    assert argv[argv.index("--classifier") + 1] == "effnet-b7-dfdc"
    assert "--classifier" not in logic.build_command(["cf"], tmp_path / "r.mkv", None, None, logic.Settings())
    with pytest.raises(client.ClientError, match="unknown classifier"):
        logic.Settings(mode="deepfake", classifier="xception").check()


def test_settings_are_checked(tmp_path: Path) -> None:
    with pytest.raises(client.ClientError, match="unknown mode"):
        logic.Settings(mode="sharpen").check()
    with pytest.raises(client.ClientError, match="file name"):
        logic.Settings(suffix="a/b").check()
    settings = logic.Settings(mode="deepfake", cli_path=str(tmp_path / "no" / "chromaflow"))
    with pytest.raises(client.ClientError, match="does not exist; fix it in the script's settings"):
        logic.Job(tmp_path / "rec.mkv", settings, print).run()
    assert list(tmp_path.iterdir()) == []


def test_job_runs_the_real_cli_and_writes_next_to_the_recording(tmp_path: Path, shared: Path) -> None:
    host.import_deepfake_weights(shared)
    rec = host.make_clip(tmp_path / "recording.mp4", frames=10, size=(96, 64))
    logs: list[str] = []
    settings = logic.Settings(mode="deepfake", cli_path=host.chromaflow_cli())
    finals = logic.Job(rec, settings, logs.append).run()
    assert finals == [tmp_path / "recording.deepfake.mp4", tmp_path / "recording.deepfake.jsonl"]
    got, want = host.probe(finals[0]), host.probe(rec)
    assert got["frames"] == want["frames"] == 10 and got["rate"] == want["rate"]
    assert got["audio"]  # the recording's audio is carried over
    assert any("100%" in line for line in logs), logs  # progress read from the CLI's bar
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["recording.mp4", *(p.name for p in finals)])


def test_job_failure_and_cancel_leave_nothing(tmp_path: Path, shared: Path) -> None:
    host.import_deepfake_weights(shared)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    settings = logic.Settings(mode="deepfake", cli_path=host.chromaflow_cli())
    logs: list[str] = []
    with pytest.raises(client.ClientError) as err:
        logic.Job(broken, settings, logs.append).run()
    assert "broken.mp4" in str(err.value)  # the CLI's own message names the file
    assert [p.name for p in tmp_path.iterdir()] == ["broken.mp4"]

    # A long real recording (300 frames of 1080p DFDC video), cancelled once the CLI has started working.
    rec = tmp_path / "long.mp4"
    rec.symlink_to(shared / "data" / "deepfake-dev" / "dfdc" / "lynaeydofd.mp4")
    job = logic.Job(rec, settings, logs.append)
    outcome: list[object] = []
    thread = threading.Thread(target=lambda: outcome.append(_run_catching(job)))
    thread.start()
    deadline = time.monotonic() + 120
    while not any(tmp_path.glob(".chromaflow-run-*/*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    job.cancel()
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert isinstance(outcome[0], client.ClientError) and "cancelled" in str(outcome[0])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.mp4", "long.mp4"]


def _run_catching(job: object) -> object:
    try:
        return job.run()  # type: ignore[attr-defined]
    except client.ClientError as err:
        return err


# ---------------------------------------------------------------------------------------------------------------
# The script as OBS loads it, with a stand-in obspython


def _fake_obspython(recording: Path) -> ModuleType:
    """Just the part of OBS's Python API the script uses; data objects are dicts."""
    obs = ModuleType("obspython")
    obs.LOG_INFO, obs.LOG_WARNING = 300, 200
    obs.OBS_FRONTEND_EVENT_RECORDING_STARTED, obs.OBS_FRONTEND_EVENT_RECORDING_STOPPED = 6, 8
    obs.OBS_COMBO_TYPE_EDITABLE, obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING = 0, 1, 3
    obs.OBS_TEXT_DEFAULT, obs.OBS_PATH_FILE, obs.OBS_PATH_DIRECTORY = 0, 0, 2
    obs.logs, obs.callbacks, obs.properties = [], [], []
    obs.script_log = lambda level, msg: obs.logs.append((level, msg))
    obs.obs_frontend_add_event_callback = obs.callbacks.append
    obs.obs_frontend_get_last_recording = lambda: str(recording)
    obs.obs_properties_create = lambda: obs.properties
    obs.obs_properties_add_list = lambda props, name, *a: props.append(name) or SimpleNamespace(items=[])
    obs.obs_property_list_add_string = lambda prop, label, value: prop.items.append(value)
    for kind in ("text", "bool", "path"):
        setattr(obs, f"obs_properties_add_{kind}", lambda props, name, *a: props.append(name))
    obs.obs_data_set_default_string = lambda data, key, value: data.setdefault(key, value)
    obs.obs_data_set_default_bool = obs.obs_data_set_default_string
    obs.obs_data_get_string = lambda data, key: data.get(key, "")
    obs.obs_data_get_bool = lambda data, key: bool(data.get(key, False))
    return obs


def test_script_processes_a_recording_when_it_stops(
    tmp_path: Path, shared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The packaged folder on its own: the script imports its logic and the client from beside itself."""
    folder = packager.build_obs(tmp_path / "dist")
    for name in ("chromaflow_obs_logic", "chromaflow_cli_client"):
        monkeypatch.delitem(sys.modules, name)  # put back after the test
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script adds its folder
    host.import_deepfake_weights(shared)
    rec = host.make_clip(tmp_path / "rec.mp4", frames=8, size=(64, 48))
    fake = _fake_obspython(rec)
    sys.modules["obspython"] = fake
    try:
        script = _load("chromaflow_obs_script", folder / "chromaflow_obs.py")
        assert Path(sys.modules["chromaflow_cli_client"].__file__).parent == folder
        assert "chromaflow" in script.script_description()
        props = script.script_properties()
        assert {"mode", "model", "output_dir", "suffix", "cli_path"} <= set(props)
        data: dict[str, object] = {"mode": "deepfake", "cli_path": host.chromaflow_cli(), "suffix": "scan"}
        script.script_defaults(data)
        script.script_update(data)
        script.script_load(data)
        assert fake.callbacks == [script.on_event]
        fake.callbacks[0](fake.OBS_FRONTEND_EVENT_RECORDING_STARTED)  # ignored
        fake.callbacks[0](fake.OBS_FRONTEND_EVENT_RECORDING_STOPPED)
        script._state["worker"].join()
        script.script_unload()
    finally:
        sys.modules.pop("obspython", None)
    messages = [m for _, m in fake.logs]
    assert (tmp_path / "rec.scan.mp4").is_file(), messages
    assert host.probe(tmp_path / "rec.scan.mp4")["frames"] == 8
    assert (tmp_path / "rec.scan.jsonl").is_file()
    assert any("done" in m for m in messages) and not any("error" in m for m in messages), messages


# ---------------------------------------------------------------------------------------------------------------
# The real OBS (the distribution's obs-studio) under Xvfb: it loads the script from a scene collection, records
# for three seconds (a second, test-only script stops the recording), and the script processes the recording.

_STOPPER = """import obspython as obs
def _stop():
    obs.timer_remove(_stop)
    obs.obs_frontend_recording_stop()
def script_load(settings):
    obs.timer_add(_stop, 3000)
"""


def _obs_home(home: Path, recordings: Path, scripts: list[dict[str, object]]) -> None:
    import json

    config = home / ".config" / "obs-studio"
    (config / "basic" / "scenes").mkdir(parents=True)
    (config / "basic" / "profiles" / "Untitled").mkdir(parents=True)
    (config / "global.ini").write_text(
        "[General]\nFirstRun=true\n[Basic]\nProfile=Untitled\nProfileDir=Untitled\n"
        "SceneCollection=Untitled\nSceneCollectionFile=Untitled\n"
    )
    (config / "basic" / "profiles" / "Untitled" / "basic.ini").write_text(
        "[General]\nName=Untitled\n[Video]\nBaseCX=160\nBaseCY=120\nOutputCX=160\nOutputCY=120\n"
        f"[Output]\nMode=Simple\n[SimpleOutput]\nFilePath={recordings}\nRecFormat=mkv\nRecFormat2=mkv\n"
        "RecQuality=Stream\nRecEncoder=x264\nVBitrate=300\n"
    )
    collection = {
        "name": "Untitled",
        "current_scene": "Scene",
        "current_program_scene": "Scene",
        "scene_order": [{"name": "Scene"}],
        "sources": [{"id": "scene", "versioned_id": "scene", "name": "Scene", "settings": {"items": []}}],
        "modules": {"scripts-tool": scripts},
    }
    (config / "basic" / "scenes" / "Untitled.json").write_text(json.dumps(collection))


@pytest.mark.slow
def test_real_obs_under_xvfb_processes_a_recording(tmp_path: Path, shared: Path) -> None:
    import os
    import signal
    import subprocess

    obs_bin, why = host.find_or_install("obs", "obs-studio")
    if obs_bin is None:
        pytest.skip(why)
    xvfb_run, why = host.find_or_install("xvfb-run", "xvfb")
    if xvfb_run is None:
        pytest.skip(why)
    host.import_deepfake_weights(shared)
    recordings = tmp_path / "recordings"
    recordings.mkdir()
    stopper = tmp_path / "stop_recording.py"
    stopper.write_text(_STOPPER)
    settings = {"mode": "deepfake", "cli_path": host.chromaflow_cli()}
    folder = packager.build_obs(tmp_path / "dist")
    _obs_home(
        tmp_path / "home",
        recordings,
        [
            {"path": str(folder / "chromaflow_obs.py"), "settings": settings},
            {"path": str(stopper), "settings": {}},
        ],
    )
    env = {**os.environ, "HOME": str(tmp_path / "home"), "LIBGL_ALWAYS_SOFTWARE": "1"}
    argv = [xvfb_run, "-a", obs_bin, "--disable-updater", "--disable-shutdown-check", "--startrecording"]
    process = subprocess.Popen(
        argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline and process.poll() is None:
            if list(recordings.glob("*.deepfake.jsonl")):
                break
            time.sleep(0.5)
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)
    logs = "".join(p.read_text(errors="replace") for p in (tmp_path / "home").rglob("logs/*.txt"))
    if "Loaded python script: chromaflow_obs.py" not in logs:
        pytest.skip(f"this OBS build did not load Python scripts under Xvfb: {logs[-800:]}")
    results = sorted(recordings.glob("*.deepfake.mkv"))
    assert results, logs[-3000:]
    source = recordings / results[0].name.replace(".deepfake.mkv", ".mkv")
    assert host.probe(results[0])["frames"] == host.probe(source)["frames"] > 0
    assert "chromaflow deepfake: done" in logs
    # Progress read from the CLI's bar (a live recording's frame estimate may be off, so no "100%").
    assert "% (" in logs
