"""benchmarks/models.py and `benchmarks/quality.py --model` on tiny inputs, and the README's Models table."""

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import perf_table  # noqa: E402


def _script(name: str) -> ModuleType:
    sys.path.insert(0, str(REPO / "benchmarks"))  # the scripts import their harness as a sibling
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "benchmarks" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_models_bench_times_present_models_and_names_absent_ones(tmp_path: Path) -> None:
    out = tmp_path / "models.json"
    args = ["--models", "base,eccv16", "--resolutions", "side", "--batches", "1", "--min-time", "0"]
    assert _script("models").main([*args, "--devices", "cpu", "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    rows = {r["model"]: r for r in result["rows"]}
    assert rows["eccv16"] == {"model": "eccv16", "weights": "absent"}, (
        "the CHROMAFLOW_HOME of a test is empty"
    )
    base = rows["base"]
    assert base["weights"] == "bundled" and base["size"] == "256x256" and base["frames_per_s"] > 0
    assert base["peak_rss_mib"] > 0 and base["precision"] == "fp32"
    facts = {m["model"]: m for m in result["models"]}
    assert facts["eccv16"]["input_size"] == 256 and facts["eccv16"]["parameters_m"] > 30
    assert _script("models").main(["--models", "siggraph17", "--out", str(out), "--merge"]) == 0
    merged = json.loads(out.read_text())
    assert [m["model"] for m in merged["models"]] == ["base", "eccv16", "siggraph17"]
    assert {r["model"] for r in merged["rows"]} == {"base", "eccv16", "siggraph17"}


def test_quality_by_model_through_the_engine(tmp_path: Path) -> None:
    data = tmp_path / "images"
    data.mkdir()
    for i in range(2):
        rgb = np.zeros((40, 56, 3), np.uint8)
        rgb[..., 0] = np.linspace(40, 220, 56, dtype=np.uint8)[None, :]
        rgb[..., 1] = 90 + 40 * i
        cv2.imwrite(str(data / f"{i}.png"), rgb[..., ::-1])
    out = tmp_path / "quality_models.json"
    args = ["--data", str(data), "--out", str(out), "--size", "32"]
    assert _script("quality").main([*args, "--model", "base,ddcolor-paper-tiny"]) == 0
    assert _script("quality").main([*args, "--model", "eccv16"]) == 0
    models = json.loads(out.read_text())["models"]
    assert models["ddcolor-paper-tiny"] == {"weights": "absent", "missing": "ddcolor-paper-tiny"}
    assert models["eccv16"]["weights"] == "absent", "a later run adds to the file"
    base = models["base"]
    assert base["weights"] == "present" and base["side"] == "32" and 0 < base["ssim"] <= 1
    assert base["colorfulness_ratio"] > 0 and np.isfinite(base["psnr_gain_db"])


@pytest.fixture
def results(tmp_path: Path) -> Path:
    models = {
        "machine": {"cpu": "Test CPU", "cores": 2},
        "models": [
            {"model": "base", "arch": "base", "input_size": 256, "parameters_m": 0.9, "licence": "BSD-3",
             "description": "ours", "present": True},
            {"model": "ddcolor-paper-tiny", "arch": "ddcolor-tiny", "input_size": 512, "parameters_m": 55.0,
             "licence": "Apache-2.0", "description": "tiny DDColor", "present": False},
            {"model": "eccv16", "arch": "eccv16", "input_size": 256, "parameters_m": 32.2, "licence": "BSD-2",
             "description": "Zhang", "present": False},
        ],
        "rows": [
            {"model": "base", "weights": "bundled", "device": "cpu", "precision": "fp32", "resolution": "480p",
             "batch": b, "size": "854x480", "frames_per_s": fps, "peak_rss_mib": 900, "peak_device_mib": None}
            for b, fps in ((1, 2.5), (4, 3.25))
        ]
        + [
            {"model": "ddcolor-paper-tiny", "weights": "random", "device": "cpu", "precision": "fp32",
             "resolution": "1080p", "batch": 1, "size": "1920x1080", "frames_per_s": 0.5, "peak_rss_mib": 1800,
             "peak_device_mib": None},
            {"model": "eccv16", "weights": "absent"},
        ],
    }  # fmt: skip
    quality = {"models": {"base": {"weights": "present", "side": "256", "psnr": 23.0, "psnr_gain_db": 0.5,
                                   "ssim": 0.94, "colorfulness": 30.0, "colorfulness_ratio": 0.8}}}  # fmt: skip
    (tmp_path / "models.json").write_text(json.dumps(models))
    (tmp_path / "quality_models.json").write_text(json.dumps(quality))
    return tmp_path


def test_models_table_rows_come_from_the_results(results: Path) -> None:
    lines = perf_table.render_models(results).splitlines()
    base = next(x for x in lines if x.startswith("| `base`"))
    assert "3.25 frames/s" in base and "23.00 dB (+0.50)" in base and "80%" in base and "| 256 |" in base
    tiny = next(x for x in lines if x.startswith("| `ddcolor-paper-tiny`"))
    assert "weights absent" in tiny and "ddcolor-tiny" in tiny, "measured at 1080p only: no 480p speed"
    assert any("Test CPU, 2 cores" in x for x in lines)
    speed = perf_table.render(results)
    assert "`ddcolor-paper-tiny` at its side, 1920x1080, cpu fp32 (best batch, random weights)" in speed
    assert "0.50 frames/s, peak RSS 1800 MiB" in speed and "`base` on CBSD68 through the engine" in speed


def test_the_models_block_is_spliced_between_its_markers(results: Path, tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(
        f"a\n{perf_table.START}\n{perf_table.END}\nb\n{perf_table.MODELS_START}\nold\n{perf_table.MODELS_END}\nc\n"
    )
    argv = ["--readme", str(readme), "--results", str(results)]
    assert perf_table.main([*argv, "--check"]) == 1
    assert perf_table.main(argv) == 0 and perf_table.main([*argv, "--check"]) == 0
    text = readme.read_text()
    assert "old" not in text and "| `eccv16` |" in text and text.endswith(f"{perf_table.MODELS_END}\nc\n")
