"""The Blender add-on: its plain-Python modules (no bpy) and a real headless Blender run of the operators.

The headless test runs in two Blenders: the distribution's ``blender`` (installed by apt-get when missing and
allowed) and Blender 5 as a Python module (PyPI ``bpy``, in ``.venv-bpy``; see tests/support/host_tools.py). It installs the
add-on zip built by tools/package_hosts.py (as a legacy add-on, and as a 4.2+ extension), adds a movie strip
from a generated clip, runs the operator blocking (background mode) with the real chromaflow CLI and checks the
new strip and its file. The shared CLI client has its own tests (tests/plugins/test_cli_client.py).
"""

import ast
import importlib
import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
ADDON = REPO / "plugins" / "blender" / "chromaflow_vse"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


host = _load("chromaflow_host_tools", REPO / "tests" / "support" / "host_tools.py")
packager = _load("chromaflow_package_hosts", REPO / "tools" / "package_hosts.py")


def _addon_modules(*names: str) -> list[ModuleType]:
    """The add-on's bpy-free modules, imported the way the zip lays them out: one package holding the add-on's
    files and the client beside them (a package's ``__path__`` may list several folders, so the add-on's
    ``from .chromaflow_cli_client import ...`` finds the one source). Its ``__init__.py`` needs bpy and is not run.
    """
    package = ModuleType("chromaflow_vse_source")
    package.__path__ = [str(ADDON), str(packager.CLIENT.parent)]
    sys.modules[package.__name__] = package
    return [importlib.import_module(f"{package.__name__}.{name}") for name in names]


commands, placement = _addon_modules("commands", "placement")


# ---------------------------------------------------------------------------------------------------------------
# commands: the verbs' argv, the output names


def test_classifier_choices_are_the_clis() -> None:
    from chromaflow.core.options import CLASSIFIERS

    assert commands.CLASSIFIERS == CLASSIFIERS


def test_commands() -> None:
    opts = commands.ColorizeOptions(
        model="base", smooth=3, references=[(30, "/b.png"), (4, "/a.png")], device="cpu"
    )
    argv = commands.colorize_command(["cf"], "in.mp4", "out.mp4", opts)
    assert argv[:5] == ["cf", "colorize", "in.mp4", "out.mp4", "--json"]
    assert argv[argv.index("--smooth") + 1] == "3"
    refs = [argv[i + 1] for i, a in enumerate(argv) if a == "--ref"]
    assert refs == ["4=/a.png", "30=/b.png"]  # sorted by frame
    assert "--no-smooth" in commands.colorize_command(["cf"], "i", "o", commands.ColorizeOptions(smooth=0))
    default = commands.colorize_command(["cf"], "i", "o", commands.ColorizeOptions())
    assert "--smooth" not in default and "--no-smooth" not in default and "--ref" not in default
    studio = commands.ColorizeOptions(model="base", smooth=3, references=[(4, "/a.png")], project="/p.json")
    argv = commands.colorize_command(["cf"], "in.mp4", "out.mp4", studio)
    assert argv == ["cf", "colorize", "in.mp4", "out.mp4", "--json", "--project", "/p.json"]

    no_overlay = commands.DeepfakeOptions(overlay=False, detector="haar")
    argv = commands.deepfake_command(["cf"], "in.mp4", "out.mp4", "s.jsonl", no_overlay)
    assert "out.mp4" not in argv and argv[argv.index("--scores") + 1] == "s.jsonl"
    assert argv[argv.index("--detector") + 1] == "haar"
    argv = commands.deepfake_command(["cf"], "in.mp4", "out.mp4", None, commands.DeepfakeOptions())
    assert argv[:4] == ["cf", "deepfake", "in.mp4", "out.mp4"] and "--scores" not in argv


def test_deflicker_command() -> None:
    opts = commands.DeflickerOptions(radius=4, strength=0.5, extra=["--crf", "20"])
    argv = commands.deflicker_command(["cf", "-m", "chromaflow"], "in.mp4", "out.mp4", opts)
    assert argv[:7] == ["cf", "-m", "chromaflow", "deflicker", "in.mp4", "out.mp4", "--json"]
    assert argv[argv.index("--radius") + 1] == "4"
    assert float(argv[argv.index("--strength") + 1]) == 0.5
    assert argv[-2:] == ["--crf", "20"]
    # Blender's float properties are 32-bit: 0.3 must reach the CLI as 0.3, not 0.30000001192092896
    assert (
        commands.deflicker_command(["cf"], "i", "o", commands.DeflickerOptions(strength=0.30000001192092896))[
            -1
        ]
        == "0.3"
    )
    zero = commands.deflicker_command(["cf"], "i", "o", commands.DeflickerOptions(strength=0.0))
    assert zero[zero.index("--strength") + 1] == "0"  # 0 (off) is a value, not "use the default"
    default = commands.deflicker_command(["cf"], "i", "o", commands.DeflickerOptions())
    assert default == ["cf", "deflicker", "i", "o", "--json"]


def test_output_path_never_overwrites(tmp_path: Path) -> None:
    src = tmp_path / "shot.mov"
    src.write_text("")
    first = commands.output_path(str(src), "colorize")
    assert first == tmp_path / "shot.colorized.mp4"
    first.write_text("")
    assert commands.output_path(str(src), "colorize") == tmp_path / "shot.colorized-1.mp4"
    other = tmp_path / "out"
    assert (
        commands.output_path(str(src), "deepfake", str(other), ext=".jsonl") == other / "shot.deepfake.jsonl"
    )
    assert commands.output_path(str(src), "deflicker") == tmp_path / "shot.deflickered.mp4"


# ---------------------------------------------------------------------------------------------------------------
# placement: strips and markers


GEOM = placement.StripGeometry(
    channel=2, frame_start=100, frame_offset_start=10, frame_offset_end=5, frame_duration=50
)


def test_strip_geometry_and_channel_choice() -> None:
    assert (GEOM.final_start, GEOM.final_end) == (110, 145)
    assert GEOM.content_index(110) == 10
    assert placement.choose_channel(GEOM, []) == 3
    # channel 3 busy over the range, channel 4 busy only before the strip, 5 overlapping at the end
    busy = [(3, 120, 130), (4, 50, 110), (5, 144, 200)]
    assert placement.choose_channel(GEOM, busy) == 4
    with pytest.raises(placement.ClientError, match="no free channel"):
        placement.choose_channel(GEOM, [(c, 0, 1000) for c in range(3, 129)])


def test_plan_placement_keeps_start_and_trims() -> None:
    plan = placement.plan_placement(GEOM, [(3, 0, 1000)])
    assert plan == placement.Placement(channel=4, frame_start=100, frame_offset_start=10, frame_offset_end=5)
    shorter = placement.plan_placement(GEOM, [], result_frames=40)  # result ends before the visible end (45)
    assert (shorter.frame_offset_start, shorter.frame_offset_end) == (10, 0)
    assert 100 + 40 - shorter.frame_offset_end == 140
    with pytest.raises(placement.ClientError, match="nothing of it would be visible"):
        placement.plan_placement(GEOM, [], result_frames=10)


def test_references_from_markers(tmp_path: Path) -> None:
    still = tmp_path / "key.png"
    still.write_bytes(b"png")
    by_name = tmp_path / "named.jpg"
    by_name.write_bytes(b"jpg")
    markers = [("key", 112), ("outside", 150), ("plain", 120), (str(by_name), 130)]
    refs, notes = placement.references_from_markers(markers, {"key": str(still)}, GEOM)
    assert refs == [(12, str(still)), (30, str(by_name))]
    assert len(notes) == 1 and "plain" in notes[0]
    with pytest.raises(placement.ClientError, match="does not exist"):
        placement.references_from_markers([("key", 112)], {"key": str(tmp_path / "gone.png")}, GEOM)
    with pytest.raises(placement.ClientError, match="different stills"):
        placement.references_from_markers([("key", 112), (str(by_name), 112)], {"key": str(still)}, GEOM)


# ---------------------------------------------------------------------------------------------------------------
# The package


def test_package_zip_holds_the_addon_and_the_client(tmp_path: Path) -> None:
    import tomllib
    import zipfile

    target = packager.build_addon(tmp_path)
    with zipfile.ZipFile(target) as archive:
        names = set(archive.namelist())
    modules = {p.name for p in ADDON.glob("*.py")}
    expected = {*modules, "blender_manifest.toml", packager.CLIENT.name}
    assert names == {f"chromaflow_vse/{n}" for n in expected}
    assert {"__init__.py", "properties.py", "operators.py", "panel.py", "job.py"} <= modules
    manifest = tomllib.loads((ADDON / "blender_manifest.toml").read_text())
    assert target.name == f"chromaflow_vse-{manifest['version']}.zip"


def test_every_addon_module_imports_the_client_as_a_sibling() -> None:
    """The add-on reaches the client only through the copy beside it (no ``sys.path`` tricks, no repository paths),
    and never imports torch or chromaflow (it only runs the CLI)."""
    users = set()
    for path in ADDON.glob("*.py"):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] not in {"torch", "chromaflow"} for a in node.names), path.name
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                assert node.module and node.module.split(".")[0] not in {"torch", "chromaflow"}, path.name
            elif isinstance(node, ast.ImportFrom) and node.module == "chromaflow_cli_client":
                users.add(path.name)
        assert "sys.path" not in path.read_text(), path.name
    assert {"placement.py", "job.py", "operators.py"} <= users


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
        [python, str(tools[-1]), "validate", str(packager.build_addon(tmp_path))],
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
    zip_path = packager.build_addon(tmp_path / "dist")
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
        [*blender.argv, str(REPO / "tests" / "support" / "blender_vse_driver.py"), "--", str(tmp_path / "spec.json")],
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
    assert output.parent == media and output.name == f"clip.{commands.SUFFIXES[verb]}.mp4"
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
