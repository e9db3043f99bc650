"""The console script: version, info, verb structure and error handling."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chromaflow import __version__
from chromaflow.plugins.cli.main import VERB_MODULES, main

CLI = [str(Path(sys.executable).with_name("chromaflow"))]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env={**os.environ, **(env or {})})


def test_version() -> None:
    result = run_cli("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"chromaflow {__version__}"


def test_info_json_reports_the_truth(tmp_path: Path, shared: Path) -> None:
    import cv2
    import torch

    from chromaflow.core import registry

    home = tmp_path / "home"
    (home / "models").mkdir(parents=True)
    meso = registry.get_spec("meso4-df").filename
    (home / "models" / meso).write_bytes((shared / "models" / "mesonet" / meso).read_bytes())
    result = run_cli("info", "--json", env={"CHROMAFLOW_HOME": str(home), "CHROMAFLOW_SHARED": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["versions"]["torch"] == torch.__version__
    assert report["versions"]["cv2"] == cv2.__version__
    assert report["versions"]["vapoursynth"].startswith("R")
    assert report["model_cache"] == str(home / "models")
    models = {m["name"]: m for m in report["models"]}
    assert set(models) == set(registry.names())
    assert models["meso4-df"]["present"] and models["meso4-df"]["path"] == str(home / "models" / meso)
    assert not models["eccv16"]["present"]
    assert models["base"]["present"] == registry.cached_path("base").is_file()
    assert report["shared_data"] == str(tmp_path)
    devices = [d["device"] for d in report["devices"]]
    assert devices[0] == "cpu" and len(devices) == 1 + torch.cuda.device_count()
    encoders = {e["encoder"]: e for e in report["hardware_encoders"]}
    assert {"h264_nvenc", "hevc_nvenc"} <= set(encoders)
    if not torch.cuda.is_available():  # no driver here: NVENC cannot open, and the report says why
        assert not encoders["h264_nvenc"]["opens"] and encoders["h264_nvenc"]["reason"]
        assert encoders["h264_nvenc"]["fallback"] == "libx264"


def test_info_text() -> None:
    result = run_cli("info")
    assert result.returncode == 0
    assert "model cache:" in result.stdout and "devices:" in result.stdout


@pytest.mark.parametrize(
    "verb", ["info", "image", "colorize", "deflicker", "deepfake", "models", "train", "bench"]
)
def test_every_verb_has_help(verb: str) -> None:
    assert verb in VERB_MODULES
    result = run_cli(verb, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: chromaflow {verb}")


def test_bad_option_exits_with_usage_code() -> None:
    result = run_cli("info", "--no-such-option")
    assert result.returncode == 2
    assert "unrecognized arguments" in result.stderr


def test_project_errors_print_one_line_and_their_exit_code(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from chromaflow.core.errors import OutputError
    from chromaflow.plugins.cli import info

    def fail(_args: object) -> int:
        raise OutputError("cannot write /nowhere/out.mp4: the folder does not exist; create it first")

    monkeypatch.setattr(info, "run", fail)
    assert main(["info"]) == OutputError.exit_code
    err = capsys.readouterr().err
    assert (
        err
        == "chromaflow: error: cannot write /nowhere/out.mp4: the folder does not exist; create it first\n"
    )
    assert "Traceback" not in err


def test_python_dash_m_runs_the_cli() -> None:
    result = subprocess.run([sys.executable, "-m", "chromaflow", "--version"], capture_output=True, text=True)
    assert result.returncode == 0 and __version__ in result.stdout
