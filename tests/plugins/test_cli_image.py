"""`chromaflow image` on real files, with a tiny random-weight SIGGRAPH17 saved to a .pt file."""

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from chromaflow.core.colour import lightness
from chromaflow.core.nets.zhang import SIGGRAPH17
from chromaflow.plugins.cli.main import main


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("tiny-model")
    torch.manual_seed(0)
    net = SIGGRAPH17(width=4)
    with torch.no_grad():
        net.model_out[0].weight.mul_(30)
    with_arch, plain = folder / "tiny.pt", folder / "plain.pt"
    torch.save({"arch": "siggraph17", "state_dict": net.state_dict()}, with_arch)
    torch.save(net.state_dict(), plain)
    return {"with_arch": with_arch, "plain": plain}


def _run(*args: str) -> int:
    return main(["image", *args, "--size", "32", "--device", "cpu"])


def _l(bgr: np.ndarray, peak: float) -> torch.Tensor:
    if bgr.ndim == 2:
        bgr = np.repeat(bgr[:, :, None], 3, axis=2)
    return lightness(torch.from_numpy(bgr[:, :, 2::-1].astype(np.float32) / peak).permute(2, 0, 1))


def test_gray16_to_colour16_with_compare(tiny, tmp_path, capsys):
    gray = np.random.default_rng(0).integers(0, 65536, (41, 53), dtype=np.uint16)
    src, dst = tmp_path / "g.png", tmp_path / "out.png"
    cv2.imwrite(str(src), gray)
    assert _run(str(src), str(dst), "--model", str(tiny["with_arch"]), "--compare") == 0
    assert capsys.readouterr().out == ""
    out = cv2.imread(str(dst), cv2.IMREAD_UNCHANGED)
    assert out.shape == (41, 53, 3) and out.dtype == np.uint16
    assert np.ptp(out.astype(np.int32)[:, :, 2] - out[:, :, 0]) > 1000  # really coloured
    assert (_l(out, 65535) - _l(gray, 65535)).abs().max() < 0.05
    side = cv2.imread(str(tmp_path / "out_compare.png"), cv2.IMREAD_UNCHANGED)
    assert side.shape == (41, 106, 3) and np.array_equal(side[:, 53:], out)
    assert np.array_equal(side[:, :53, 0], gray)


def test_alpha_is_carried_and_hints_apply(tiny, tmp_path):
    rng = np.random.default_rng(1)
    bgra = rng.integers(0, 256, (30, 20, 4), dtype=np.uint8)
    src = tmp_path / "a.png"
    cv2.imwrite(str(src), bgra)
    assert (
        _run(str(src), str(tmp_path / "plain.png"), "--model", str(tiny["plain"]), "--arch", "siggraph17")
        == 0
    )
    plain = cv2.imread(str(tmp_path / "plain.png"), cv2.IMREAD_UNCHANGED)
    assert plain.shape == (30, 20, 4) and np.array_equal(plain[:, :, 3], bgra[:, :, 3])
    hints = tmp_path / "h.json"
    hints.write_text(json.dumps([{"x": 10, "y": 15, "color": "#00ff00", "radius": 6}]))
    args = ["--model", str(tiny["with_arch"]), "--hint", "2,3,#ff0000,4", "--hints-json", str(hints)]
    assert _run(str(src), str(tmp_path / "hinted.png"), *args) == 0
    hinted = cv2.imread(str(tmp_path / "hinted.png"), cv2.IMREAD_UNCHANGED)
    assert np.abs(hinted[:, :, :3].astype(int) - plain[:, :, :3]).max() > 5


def test_folder_and_glob_to_folder(tiny, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    rng = np.random.default_rng(2)
    for name, shape in [("a.png", (17, 23, 3)), ("b.jpg", (20, 20)), ("c.tif", (9, 31))]:
        cv2.imwrite(str(src / name), rng.integers(0, 256, shape, dtype=np.uint8))
    (src / "notes.txt").write_text("not an image")
    out = tmp_path / "out"
    assert _run(str(src), str(out), "--model", str(tiny["with_arch"])) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.png", "b.jpg", "c.tif"]
    assert cv2.imread(str(out / "c.tif"), cv2.IMREAD_UNCHANGED).shape == (9, 31, 3)
    out2 = tmp_path / "out2"
    assert _run(str(src / "*.png"), str(out2), "--model", str(tiny["with_arch"])) == 0
    assert [p.name for p in out2.iterdir()] == ["a.png"]


def test_errors_exit_codes_and_no_partial_output(tiny, tmp_path, capsys):
    model = ["--model", str(tiny["with_arch"])]
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"this is not a png")
    assert _run(str(junk), str(tmp_path / "o.png"), *model) == 3
    assert _run(str(tmp_path / "absent.png"), str(tmp_path / "o.png"), *model) == 3
    good = tmp_path / "g.png"
    cv2.imwrite(str(good), np.zeros((8, 8), np.uint8))
    assert _run(str(good), str(tmp_path / "nodir" / "o.png"), *model) == 6
    assert _run(str(good), str(good), *model) == 6
    assert _run(str(good), str(tmp_path / "o.png"), *model, "--hint", "1,2") == 2
    assert _run(str(good), str(tmp_path / "o.png"), *model, "--hint", "9,2,#ffffff") == 3
    assert _run(str(good), str(tmp_path / "o.png"), "--model", str(tiny["plain"])) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png", "junk.png"]
    capsys.readouterr()
    assert _run(str(good), str(tmp_path / "o.png"), "--model", "siggraph17") == 4  # not downloaded here
    assert "chromaflow models download siggraph17" in capsys.readouterr().err


def test_console_script_end_to_end(tiny, tmp_path):
    src = tmp_path / "in.png"
    cv2.imwrite(str(src), np.full((12, 10), 128, np.uint8))
    cmd = [sys.executable, "-m", "chromaflow", "image", str(src), str(tmp_path / "out.png"), "--size", "16"]
    done = subprocess.run(
        [*cmd, "--model", str(tiny["with_arch"])], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    assert cv2.imread(str(tmp_path / "out.png")).shape == (12, 10, 3)
