"""The FFmpeg recipes in plugins/ffmpeg/, run for real: the distribution's ffmpeg, the chromaflow CLI, vspipe.

ffmpeg is installed with apt-get when missing and allowed (see tests/support/host_tools.py); otherwise these tests skip
and say why. Verbs or models not available in this tree yet skip with the CLI's own reason.
"""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
RECIPES = REPO / "plugins" / "ffmpeg"
VENV_BIN = Path(sys.executable).parent


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


host = _load("chromaflow_host_tools", REPO / "tests" / "support" / "host_tools.py")


_VS_CONFIG: dict[str, str] = {}


@pytest.fixture(scope="module")
def ffmpeg(tmp_path_factory: pytest.TempPathFactory) -> str:
    path, why = host.find_or_install("ffmpeg", "ffmpeg")
    if path is None:
        pytest.skip(why)
    # vspipe finds its Python through VapourSynth's per-user configuration (`vapoursynth config`, a one-time
    # set-up step for users); write it into a private folder so the tests touch nothing of the user's.
    config_home = tmp_path_factory.mktemp("vs-config")
    tool = VENV_BIN / "vapoursynth"
    if tool.is_file():
        env = dict(os.environ, XDG_CONFIG_HOME=str(config_home))
        subprocess.run([str(tool), "config"], env=env, check=True, capture_output=True)
        _VS_CONFIG["XDG_CONFIG_HOME"] = str(config_home)
    return path


def _env(ffmpeg: str) -> dict[str, str]:
    vspipe = VENV_BIN / "vspipe"
    return {
        **os.environ,
        **_VS_CONFIG,
        "FFMPEG": ffmpeg,
        "CHROMAFLOW": host.chromaflow_cli(),
        "VSPIPE": str(vspipe) if vspipe.is_file() else "vspipe",
    }


def _run(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=600)


def _skip_if_unavailable(done: subprocess.CompletedProcess[str], verb: str) -> None:
    reasons = [line for line in done.stderr.splitlines() if "weights" in line or "no deepfake filter" in line]
    if done.returncode != 0 and reasons:
        pytest.skip(f"{verb}: {reasons[-1].strip()}")


def _only(folder: Path, *names: str) -> None:
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)  # no partial files left


@pytest.mark.parametrize("verb", ["deepfake", "colorize", "deflicker"])
def test_ffmpeg_chromaflow_ffmpeg_pipe(verb: str, ffmpeg: str, tmp_path: Path, shared: Path) -> None:
    if verb == "deepfake":
        host.import_deepfake_weights(shared)
    clip = host.make_clip(tmp_path / "in.mp4", frames=10, size=(64, 48))
    out = tmp_path / "out.mp4"
    done = _run([str(RECIPES / "ffmpeg_pipe.sh"), str(clip), str(out), verb], _env(ffmpeg))
    _skip_if_unavailable(done, verb)
    assert done.returncode == 0, done.stderr
    got, want = host.probe(out), host.probe(clip)
    assert got["frames"] == want["frames"] == 10
    assert got["rate"] == want["rate"] and got["size"] == want["size"]
    assert got["audio"]  # the input's audio is put back
    _only(tmp_path, "in.mp4", "out.mp4")


def test_pipe_recipe_failures_leave_no_output(ffmpeg: str, tmp_path: Path) -> None:
    env = _env(ffmpeg)
    done = _run([str(RECIPES / "ffmpeg_pipe.sh"), str(tmp_path / "nope.mp4"), str(tmp_path / "o.mp4")], env)
    assert done.returncode == 3 and "does not exist" in done.stderr
    clip = host.make_clip(tmp_path / "in.mp4", frames=4, audio=False)
    done = _run([str(RECIPES / "ffmpeg_pipe.sh"), str(clip), str(tmp_path / "missing" / "o.mp4")], env)
    assert done.returncode == 6 and "does not exist" in done.stderr
    # chromaflow fails in the middle of the pipe (a bad option): the whole recipe fails, nothing is written.
    done = _run(
        [str(RECIPES / "ffmpeg_pipe.sh"), str(clip), str(tmp_path / "o.mp4"), "deepfake", "--every", "x"], env
    )
    assert done.returncode != 0 and "--every" in done.stderr
    _only(tmp_path, "in.mp4")


@pytest.mark.parametrize("mode", ["colorize", "deflicker", "deepfake"])
def test_vspipe_template_into_ffmpeg(mode: str, ffmpeg: str, tmp_path: Path, shared: Path) -> None:
    env = _env(ffmpeg)
    if mode == "deepfake":
        host.import_deepfake_weights(shared)
    clip = host.make_clip(tmp_path / "in.mp4", frames=6, size=(64, 48))
    out = tmp_path / "out.mp4"
    done = _run([str(RECIPES / "vspipe_to_ffmpeg.sh"), str(clip), str(out), mode], env)
    if done.returncode != 0 and "BestSource plugin is not installed" in done.stderr:
        pytest.skip("vapoursynth-bestsource is not installed in the test environment")
    _skip_if_unavailable(done, mode)
    assert done.returncode == 0, done.stderr
    got, want = host.probe(out), host.probe(clip)
    assert got["frames"] == want["frames"] == 6 and got["rate"] == want["rate"]
    assert got["audio"]
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no partial file left


def test_vpy_template_explains_a_missing_input(tmp_path: Path, ffmpeg: str) -> None:
    env = _env(ffmpeg)
    done = _run([env["VSPIPE"], "-c", "y4m", str(RECIPES / "chromaflow_template.vpy"), "--"], env)
    assert done.returncode != 0
    assert "no input; run vspipe with -a input=" in done.stderr
    done = _run([env["VSPIPE"], "-c", "y4m", "-a", "input=x.mp4", "-a", "mode=sharpen",
                 str(RECIPES / "chromaflow_template.vpy"), "--"], env)  # fmt: skip
    assert done.returncode != 0 and "mode must be colorize, deflicker, deepfake or both" in done.stderr
