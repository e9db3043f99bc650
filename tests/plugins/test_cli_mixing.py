"""`--model A+B` (two models mixed once per frame), `--size` left to the model, `--render-factor`, on the CLI.

`base` runs with its bundled weights; `eccv16` with a narrow random-weight stand-in in the test's model cache (the
official file cannot be downloaded here; support/model_cache.py), through the registry as a downloaded file would.
"""

import json
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from chromaflow.filters.pyav.frames import plane_view
from chromaflow.plugins.cli.main import main

from support.model_cache import install_stand_in
from support.pyav_synth import write_clip


@pytest.fixture
def clip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    install_stand_in(monkeypatch, "eccv16")
    path = tmp_path / "clip.mkv"
    write_clip(path, frames=5, codec="ffv1", pix_fmt="yuv420p")
    return path


def _planes(path: Path) -> list[list[np.ndarray]]:
    with av.open(str(path)) as c:
        return [[plane_view(f, i).copy() for i in range(3)] for f in c.decode(video=0)]


def _colorize(clip: Path, out: Path, *extra: str) -> None:
    code = main(["colorize", str(clip), str(out), "--codec", "ffv1", "--device", "cpu", "--json", *extra])
    assert code == 0


def test_a_mix_runs_end_to_end_and_weight_one_is_the_first_model(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _colorize(clip, tmp_path / "base.mkv", "--model", "base")
    capsys.readouterr()
    _colorize(clip, tmp_path / "mix1.mkv", "--model", "base+eccv16", "--mix", "1")
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"] == "base+eccv16" and summary["frames_out"] == 5
    _colorize(clip, tmp_path / "sat.mkv", "--model", "base+eccv16", "--mix-rule", "saturated")
    source, alone, first, saturated = (
        _planes(p) for p in (clip, tmp_path / "base.mkv", tmp_path / "mix1.mkv", tmp_path / "sat.mkv")
    )
    for src, a, f, s in zip(source, alone, first, saturated, strict=True):
        assert np.array_equal(f[0], src[0]) and np.array_equal(s[0], src[0]), "luma bit for bit"
        assert all(np.array_equal(x, y) for x, y in zip(f, a, strict=True)), (
            "--mix 1: base alone, bit for bit"
        )
    assert any(not np.array_equal(s[1], a[1]) for s, a in zip(saturated, alone, strict=True))


def test_image_with_a_saturated_soft_mix(clip: Path, tmp_path: Path) -> None:
    image = tmp_path / "in.png"
    gray = np.tile(np.linspace(20, 230, 48, dtype=np.uint8), (40, 1))
    cv2.imwrite(str(image), gray)
    code = main(
        ["image", str(image), str(tmp_path / "out.png"), "--model", "base+eccv16", "--mix-rule", "saturated",
         "--mix-softness", "3", "--size", "64", "--device", "cpu"]
    )  # fmt: skip
    assert code == 0
    out = cv2.imread(str(tmp_path / "out.png"))
    assert out.shape == (40, 48, 3) and int(np.ptp(out.astype(int), axis=2).max()) > 0, "colour came back"


@pytest.mark.parametrize(
    ("extra", "code", "message"),
    [
        (["--model", "base", "--mix", "0.3"], 2, "combine two models: give the model as A+B"),
        (["--model", "base+eccv16", "--mix", "2"], 2, "from 0 to 1"),
        (["--model", "base+eccv16", "--mix", "0.3", "--mix-rule", "saturated"], 2, "--mix-softness"),
        (["--model", "base+eccv16+siggraph17"], 2, "a mix takes two"),
        (["--model", "base+meso4-df"], 2, "is a classifier, not a colorizer"),
        (["--model", "base+nosuch"], 4, "unknown model 'nosuch'"),
        (["--model", "base+siggraph17"], 4, "chromaflow models download siggraph17"),
        (["--size", "256", "--render-factor", "16"], 2, "give one of them"),
        (["--render-factor", "0"], 2, "whole number >= 1"),
        (["--model", "base+eccv16", "--hint", "3,3,#ff0000"], 0, ""),
        (["--model", "eccv16", "--hint", "3,3,#ff0000"], 2, "does not take colour hints"),
    ],
)
def test_bad_model_options_exit_with_what_to_do(
    extra: list[str], code: int, message: str, clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out.mkv"
    side = [] if {"--size", "--render-factor"} & set(extra) else ["--size", "32"]
    assert main(["colorize", str(clip), str(out), "--device", "cpu", *side, *extra]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert out.exists() == (code == 0), "a refused run writes nothing"


def test_models_list_and_info_show_the_input_side(capsys: pytest.CaptureFixture[str]) -> None:
    from chromaflow.core import registry

    assert main(["models", "list", "--json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    for name in registry.names():
        spec = registry.get_spec(name)
        assert rows[name]["input_size"] == spec.input_size and rows[name]["arch"] == spec.arch
    assert main(["models", "list"]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:5] == ["name", "kind", "present", "side", "arch"]
    assert any(line.split()[:5] == ["base", "colorizer", "yes", "256", "base-v2"] for line in table)
    assert main(["models", "info", "eccv16", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["input_size"] == 256 and info["arch"] == "eccv16" and "L*" in info["inputs"]
    assert main(["models", "info", "eccv16"]) == 0
    assert "chromaflow models download eccv16" in capsys.readouterr().out, (
        "absent weights say how to get them"
    )
    assert main(["models", "info", "nosuch"]) == 4
    assert "unknown model 'nosuch'" in capsys.readouterr().err
