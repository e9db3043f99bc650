"""The Blender add-on: its plain-Python logic (no bpy) and a real headless Blender run of the operators.

The headless test runs in two Blenders: the distribution's ``blender`` (installed by apt-get when missing and
allowed) and Blender 5 as a Python module (PyPI ``bpy``, in ``.venv-bpy``; see tests/host_tools.py). It installs the
add-on zip built by tools/package_blender_addon.py (as a legacy add-on, and as a 4.2+ extension), adds a movie strip
from a generated clip, runs the operator blocking (background mode) with the real chromaflow CLI and checks the
new strip and its file.
"""

import importlib.util
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
ADDON = REPO / "plugins" / "blender" / "chromaflow_vse"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


logic = _load("chromaflow_vse_logic", ADDON / "logic.py")
host = _load("chromaflow_host_tools", REPO / "tests" / "host_tools.py")
packager = _load("chromaflow_package_blender_addon", REPO / "tools" / "package_blender_addon.py")


# ---------------------------------------------------------------------------------------------------------------
# logic: the program, the commands, the output names


def test_cli_prefix_forms(tmp_path: Path) -> None:
    with pytest.raises(logic.AddonError, match="add-on preferences"):
        logic.cli_prefix("", which=lambda _: None)
    assert logic.cli_prefix("", which=lambda _: "/opt/bin/chromaflow") == ["/opt/bin/chromaflow"]
    python = tmp_path / "env" / "bin" / "python3.12"
    python.parent.mkdir(parents=True)
    python.write_text("")
    assert logic.cli_prefix(str(python)) == [str(python), "-m", "chromaflow"]
    with pytest.raises(logic.AddonError, match="without bin/chromaflow"):
        logic.cli_prefix(str(tmp_path / "env"))
    (tmp_path / "env" / "bin" / "chromaflow").write_text("")
    assert logic.cli_prefix(str(tmp_path / "env")) == [str(tmp_path / "env" / "bin" / "chromaflow")]
    with pytest.raises(logic.AddonError, match="does not exist"):
        logic.cli_prefix(str(tmp_path / "nope"))


def test_child_environment_drops_the_hosts_python() -> None:
    env = logic.child_environment({"PYTHONHOME": "/blender/python", "PYTHONPATH": "x", "PATH": "/bin"})
    assert "PYTHONHOME" not in env and "PYTHONPATH" not in env
    assert env["PATH"] == "/bin" and env["PYTHONUNBUFFERED"] == "1"


def test_commands() -> None:
    opts = logic.ColorizeOptions(
        model="base", smooth=3, references=[(30, "/b.png"), (4, "/a.png")], device="cpu"
    )
    argv = logic.colorize_command(["cf"], "in.mp4", "out.mp4", opts)
    assert argv[:5] == ["cf", "colorize", "in.mp4", "out.mp4", "--json"]
    assert argv[argv.index("--smooth") + 1] == "3"
    refs = [argv[i + 1] for i, a in enumerate(argv) if a == "--ref"]
    assert refs == ["4=/a.png", "30=/b.png"]  # sorted by frame
    assert "--no-smooth" in logic.colorize_command(["cf"], "i", "o", logic.ColorizeOptions(smooth=0))
    default = logic.colorize_command(["cf"], "i", "o", logic.ColorizeOptions())
    assert "--smooth" not in default and "--no-smooth" not in default and "--ref" not in default

    no_overlay = logic.DeepfakeOptions(overlay=False, detector="haar")
    argv = logic.deepfake_command(["cf"], "in.mp4", "out.mp4", "s.jsonl", no_overlay)
    assert "out.mp4" not in argv and argv[argv.index("--scores") + 1] == "s.jsonl"
    assert argv[argv.index("--detector") + 1] == "haar"
    argv = logic.deepfake_command(["cf"], "in.mp4", "out.mp4", None, logic.DeepfakeOptions())
    assert argv[:4] == ["cf", "deepfake", "in.mp4", "out.mp4"] and "--scores" not in argv


def test_deflicker_command() -> None:
    opts = logic.DeflickerOptions(radius=4, strength=0.5, extra=["--crf", "20"])
    argv = logic.deflicker_command(["cf", "-m", "chromaflow"], "in.mp4", "out.mp4", opts)
    assert argv[:7] == ["cf", "-m", "chromaflow", "deflicker", "in.mp4", "out.mp4", "--json"]
    assert argv[argv.index("--radius") + 1] == "4"
    assert float(argv[argv.index("--strength") + 1]) == 0.5
    assert argv[-2:] == ["--crf", "20"]
    # Blender's float properties are 32-bit: 0.3 must reach the CLI as 0.3, not 0.30000001192092896
    assert (
        logic.deflicker_command(["cf"], "i", "o", logic.DeflickerOptions(strength=0.30000001192092896))[-1]
        == "0.3"
    )
    zero = logic.deflicker_command(["cf"], "i", "o", logic.DeflickerOptions(strength=0.0))
    assert zero[zero.index("--strength") + 1] == "0"  # 0 (off) is a value, not "use the default"
    default = logic.deflicker_command(["cf"], "i", "o", logic.DeflickerOptions())
    assert default == ["cf", "deflicker", "i", "o", "--json"]


def test_output_path_never_overwrites(tmp_path: Path) -> None:
    src = tmp_path / "shot.mov"
    src.write_text("")
    first = logic.output_path(str(src), "colorize")
    assert first == tmp_path / "shot.colorized.mp4"
    first.write_text("")
    assert logic.output_path(str(src), "colorize") == tmp_path / "shot.colorized-1.mp4"
    other = tmp_path / "out"
    assert logic.output_path(str(src), "deepfake", str(other), ext=".jsonl") == other / "shot.deepfake.jsonl"
    assert logic.output_path(str(src), "deflicker") == tmp_path / "shot.deflickered.mp4"


# ---------------------------------------------------------------------------------------------------------------
# logic: progress


def test_progress_from_a_tqdm_bar_split_anywhere() -> None:
    stream = (
        "chromaflow: loading model\n"
        "colorize:  10%|#         | 3/30 [00:01<00:09, 2.9 frame/s]\r"
        "colorize:  50%|#####     | 15/30 [00:05<00:05, 3.1 frame/s]\r"
        "colorize: 100%|##########| 30/30 [00:10<00:00, 3.0 frame/s]\n"
    )
    parser = logic.ProgressParser(expected_total=99)
    seen = []
    for i in range(0, len(stream), 7):  # pipes deliver arbitrary chunks
        if parser.feed(stream[i : i + 7]):
            seen.append(parser.progress.done)
    assert parser.progress.done == 30 and parser.progress.total == 30
    assert parser.progress.fps == pytest.approx(3.0)
    assert seen == sorted(seen) and 15 in seen
    assert parser.progress.describe().startswith("100% 30/30 frames")


def test_progress_json_lines_and_errors_and_paths() -> None:
    parser = logic.ProgressParser(expected_total=40)
    parser.feed("reading /data/12/34.mp4 (1920/1080)\n")
    assert parser.progress.done == 0  # path components are not a count
    parser.feed('{"progress": {"frames": 8, "total": 40, "fps": 12.5}}\n')
    assert (parser.progress.done, parser.progress.total, parser.progress.fps) == (8, 40, 12.5)
    assert parser.progress.fraction == pytest.approx(0.2)
    parser.feed("frame 9\n")
    assert parser.progress.done == 9
    parser.feed("chromaflow: error: the file x.mp4 has no video stream; give a video file\n")
    parser.feed("chromaflow colorize: error: argument --smooth: invalid int value: 'x'\n")
    assert parser.errors == [
        "the file x.mp4 has no video stream; give a video file",
        "argument --smooth: invalid int value: 'x'",
    ]
    assert logic.ProgressParser().progress.fraction is None


def test_parse_summary_takes_the_last_json_object() -> None:
    assert logic.parse_summary('noise\n{"a": 1}\n{"frames_out": 5}\n') == {"frames_out": 5}
    assert logic.parse_summary('{\n "frames_out": 7\n}\n') == {"frames_out": 7}
    assert logic.parse_summary("") == {}


# ---------------------------------------------------------------------------------------------------------------
# logic: strips and markers


GEOM = logic.StripGeometry(
    channel=2, frame_start=100, frame_offset_start=10, frame_offset_end=5, frame_duration=50
)


def test_strip_geometry_and_channel_choice() -> None:
    assert (GEOM.final_start, GEOM.final_end) == (110, 145)
    assert GEOM.content_index(110) == 10
    assert logic.choose_channel(GEOM, []) == 3
    # channel 3 busy over the range, channel 4 busy only before the strip, 5 overlapping at the end
    busy = [(3, 120, 130), (4, 50, 110), (5, 144, 200)]
    assert logic.choose_channel(GEOM, busy) == 4
    with pytest.raises(logic.AddonError, match="no free channel"):
        logic.choose_channel(GEOM, [(c, 0, 1000) for c in range(3, 129)])


def test_plan_placement_keeps_start_and_trims() -> None:
    plan = logic.plan_placement(GEOM, [(3, 0, 1000)])
    assert plan == logic.Placement(channel=4, frame_start=100, frame_offset_start=10, frame_offset_end=5)
    shorter = logic.plan_placement(GEOM, [], result_frames=40)  # result ends before the visible end (45)
    assert (shorter.frame_offset_start, shorter.frame_offset_end) == (10, 0)
    assert 100 + 40 - shorter.frame_offset_end == 140
    with pytest.raises(logic.AddonError, match="nothing of it would be visible"):
        logic.plan_placement(GEOM, [], result_frames=10)


def test_references_from_markers(tmp_path: Path) -> None:
    still = tmp_path / "key.png"
    still.write_bytes(b"png")
    by_name = tmp_path / "named.jpg"
    by_name.write_bytes(b"jpg")
    markers = [("key", 112), ("outside", 150), ("plain", 120), (str(by_name), 130)]
    refs, notes = logic.references_from_markers(markers, {"key": str(still)}, GEOM)
    assert refs == [(12, str(still)), (30, str(by_name))]
    assert len(notes) == 1 and "plain" in notes[0]
    with pytest.raises(logic.AddonError, match="does not exist"):
        logic.references_from_markers([("key", 112)], {"key": str(tmp_path / "gone.png")}, GEOM)
    with pytest.raises(logic.AddonError, match="different stills"):
        logic.references_from_markers([("key", 112), (str(by_name), 112)], {"key": str(still)}, GEOM)


# ---------------------------------------------------------------------------------------------------------------
# logic: running a process. These use small Python child programs in place of the CLI to control timing and
# failures exactly (the real CLI runs in the error test below and in the headless Blender test).


def _child(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_cli_run_moves_the_result_and_cleans_up(tmp_path: Path) -> None:
    final = tmp_path / "clip.colorized.mp4"
    code = (
        "import sys, time\n"
        "for i in range(1, 4):\n"
        "    sys.stderr.write(f'\\r{i}/3 [00:00, 9.0 frame/s]'); sys.stderr.flush(); time.sleep(0.05)\n"
        "open(sys.argv[1], 'w').write('video')\n"
        "print('{\"frames_out\": 3}')\n"
    )
    run = logic.CliRun(lambda work: [*_child(code), str(work / final.name)], [final], expected_frames=3)
    updates = []
    assert run.wait(lambda p: updates.append(p.done), interval=0.01) == 0
    assert run.finish() == [final]
    assert final.read_text() == "video" and run.summary == {"frames_out": 3}
    assert updates and updates[-1] == 3
    assert sorted(p.name for p in tmp_path.iterdir()) == [final.name]


def test_cli_run_cancel_leaves_nothing(tmp_path: Path) -> None:
    final = tmp_path / "clip.colorized.mp4"
    code = "import sys, time\nopen(sys.argv[1], 'w').write('partial')\ntime.sleep(60)\n"
    run = logic.CliRun(lambda work: [*_child(code), str(work / final.name)], [final])
    deadline = time.monotonic() + 30
    while not any(run.work_dir.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert any(run.work_dir.iterdir())  # the child has written its partial file
    run.cancel(grace=2.0)
    assert run.process.poll() is not None
    assert list(tmp_path.iterdir()) == []


def test_cli_run_reports_the_real_clis_error(tmp_path: Path) -> None:
    final = tmp_path / "out.colorized.mp4"
    missing = tmp_path / "missing.mp4"
    cli = host.chromaflow_cli()
    run = logic.CliRun(lambda work: [cli, "colorize", str(missing), str(work / final.name)], [final])
    assert run.wait(interval=0.05) != 0
    with pytest.raises(logic.AddonError) as err:
        run.finish()
    assert str(err.value) and "exited with code" not in str(err.value)  # the CLI's own message
    assert list(tmp_path.iterdir()) == []


def test_cli_run_refuses_a_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(logic.AddonError, match="does not exist"):
        logic.CliRun(lambda work: ["true"], [tmp_path / "no" / "x.mp4"])


def test_package_zip_holds_the_addon(tmp_path: Path) -> None:
    import tomllib
    import zipfile

    target = packager.build(tmp_path)
    with zipfile.ZipFile(target) as archive:
        names = set(archive.namelist())
    assert names == {f"chromaflow_vse/{n}" for n in packager.FILES}
    manifest = tomllib.loads((ADDON / "blender_manifest.toml").read_text())
    assert target.name == f"chromaflow_vse-{manifest['version']}.zip"
    # The add-on never imports torch or chromaflow (it only runs the CLI).
    for name in ("__init__.py", "logic.py"):
        text = (ADDON / name).read_text()
        assert (
            "import torch" not in text and "import chromaflow" not in text and "from chromaflow" not in text
        )


# ---------------------------------------------------------------------------------------------------------------
# Headless Blender


BPY_VERSION = "5.0.1"  # Blender as a Python module (PyPI ``bpy``), to run the add-on in a current Blender


@dataclass(frozen=True)
class BlenderHost:
    """How to run the driver script in one Blender, and how that Blender installs the zip."""

    argv: list[str]  # followed by the driver's path, "--" and the spec's path
    install: str  # "addon" (bl_info) or "extension" (blender_manifest.toml, Blender 4.2+)
    version: str | None  # the version the run must report, where known


@pytest.fixture(scope="module", params=["distribution", "bpy"])
def blender(request: pytest.FixtureRequest) -> BlenderHost:
    """The distribution's ``blender`` binary (apt-get, 3.x on Debian 12) with the zip as a legacy add-on, and
    Blender 5 as a module (``bpy`` from PyPI in ``.venv-bpy``, made on first use) with the zip as an extension."""
    if request.param == "distribution":
        path, why = host.find_or_install("blender", "blender")
        if path is None:
            pytest.skip(why)
        return BlenderHost([path, "-b", "--factory-startup", "--python"], "addon", None)
    python, why = host.find_or_install_bpy(BPY_VERSION)
    if python is None:
        pytest.skip(why)
    runner = "import bpy, runpy, sys; runpy.run_path(sys.argv[1], run_name='__main__')"
    return BlenderHost([python, "-c", runner], "extension", BPY_VERSION)


def test_blenders_extension_validator_accepts_the_zip(tmp_path: Path) -> None:
    """Blender 5's own ``blender_ext.py validate`` (what the extensions platform runs) on the packaged zip: it
    enforces limits a plain install does not, such as 64 characters for a permission's reason."""
    python, why = host.find_or_install_bpy(BPY_VERSION)
    if python is None:
        pytest.skip(why)
    venv = Path(python).parent.parent
    tools = sorted(
        venv.glob("lib/python3*/site-packages/bpy/*/scripts/addons_core/bl_pkg/cli/blender_ext.py")
    )
    assert tools, f"bpy {BPY_VERSION} in {venv} has no blender_ext.py"
    done = subprocess.run(
        [python, str(tools[-1]), "validate", str(packager.build(tmp_path))],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "Success" in done.stdout, done.stdout + done.stderr


@pytest.mark.slow
@pytest.mark.parametrize("case", ["colorize", "colorize-reference", "deepfake", "deflicker"])
def test_headless_blender_runs_the_operator(
    case: str, blender: BlenderHost, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    """The operator on a trimmed strip; with ``-reference``, a timeline marker inside the strip carries a red still
    of the frame under it, whose colour must reach that frame of the new strip."""
    verb = case.split("-")[0]
    if verb == "deepfake":
        host.import_deepfake_weights(request.getfixturevalue("shared"))
    media = tmp_path / "media"
    media.mkdir()
    clip = host.make_clip(media / "clip.mp4", frames=12, size=(64, 48), rate=25, audio=True)
    zip_path = packager.build(tmp_path / "dist")
    spec = {
        "zip": str(zip_path),
        "movie": str(clip),
        "cli": host.chromaflow_cli(),
        "verb": verb,
        "fps": 25,
        "frame_start": 5,
        "trim_start": 2,
        "trim_end": 3,
        "result": str(tmp_path / "result.json"),
        "install": blender.install,
    }
    if case == "colorize-reference":
        spec["ref_image"] = str(_red_still(clip, KEYED_FRAME, tmp_path / "key.png"))
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    env = {
        **os.environ,
        "BLENDER_USER_SCRIPTS": str(tmp_path / "user-scripts"),
        "BLENDER_USER_CONFIG": str(tmp_path / "user-config"),
        "BLENDER_USER_EXTENSIONS": str(tmp_path / "user-extensions"),
        "HOME": str(tmp_path / "home"),
    }
    done = subprocess.run(
        [*blender.argv, str(REPO / "tests" / "blender_vse_driver.py"), "--", str(tmp_path / "spec.json")],
        capture_output=True, text=True, timeout=600, env=env,
    )  # fmt: skip
    log = done.stdout[-3000:] + done.stderr[-3000:]
    assert (tmp_path / "result.json").is_file(), log
    result = json.loads((tmp_path / "result.json").read_text())
    assert result["ok"], result.get("error", "") + log
    assert blender.version in (None, result["blender"])
    if result["operator"] != ["FINISHED"] and "weights" in result["status"]:
        pytest.skip(f"model weights are not available: {result['status']}")
    assert result["operator"] == ["FINISHED"], result["status"] + log

    source, blocker = result["source"], result["blocker"]
    new = [s for s in result["new"] if s["type"] == "MOVIE"]
    assert len(new) == 1 and len(result["new"]) == 1, result["new"]  # one movie strip, no sound strip added
    strip = new[0]
    assert strip["channel"] == blocker["channel"] + 1 == source["channel"] + 2  # first free channel above
    for key in (
        "frame_start",
        "frame_final_start",
        "frame_final_end",
        "frame_offset_start",
        "frame_offset_end",
    ):
        assert strip[key] == source[key], key
    assert result["sound_after"] == result["sound_before"]

    output = Path(strip["filepath"])
    assert output.parent == media and output.name == f"clip.{logic.SUFFIXES[verb]}.mp4"
    got, want = host.probe(output), host.probe(clip)
    assert got["frames"] == want["frames"] == strip["frame_duration"] == 12
    assert got["rate"] == want["rate"]
    assert got["last_time"] == pytest.approx(want["last_time"], abs=1e-3)
    assert got["size"] == want["size"]
    leftovers = [p.name for p in media.iterdir() if p.name.startswith(".")]
    assert leftovers == []
    if verb == "deepfake":
        assert (media / "clip.deepfake.jsonl").is_file()
    if case == "colorize-reference":
        red, green, blue = host.frame_rgb(output, KEYED_FRAME).reshape(-1, 3).mean(0)
        assert red > green + 40 and red > blue + 40, (red, green, blue)
    if verb == "deflicker":  # colour smoothed, luma kept (up to the lossy re-encode)
        assert "radius 3, strength 1.0" in result["status"]  # the panel's defaults reached the CLI
        middle = want["frames"] // 2
        gray_out, gray_in = (
            cv2.cvtColor(host.frame_rgb(p, middle), cv2.COLOR_RGB2GRAY) for p in (output, clip)
        )
        assert np.abs(gray_out.astype(float) - gray_in.astype(float)).mean() < 3


KEYED_FRAME = 3  # the driver's marker: one frame after the strip's first shown frame (trim_start 2)


def _red_still(clip: Path, index: int, path: Path) -> Path:
    """Frame ``index`` of ``clip`` coloured red (its brightness kept), written as a PNG."""
    gray = host.frame_rgb(clip, index).mean(2)
    bgr = np.stack((gray * 0.25, gray * 0.25, np.minimum(gray * 1.6, 255)), -1)
    cv2.imwrite(str(path), bgr.astype(np.uint8))
    return path
