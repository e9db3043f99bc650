"""benchmarks/soak.py keeps working: a short run through both hosts writes its samples, slope and table."""

import json
from pathlib import Path
from types import ModuleType

import pytest

from support.scripts import load_benchmark


@pytest.fixture(scope="module")
def soak() -> ModuleType:
    return load_benchmark("soak")


def test_short_soak_through_both_hosts(soak, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "soak.json"
    argv = [
        "--frames",
        "50",
        "--every",
        "10",
        "--width",
        "48",
        "--height",
        "32",
        "--size",
        "32",
        "--output",
        str(out),
    ]
    assert soak.main(argv) == 0
    result = json.loads(out.read_text())
    assert result["settings"]["frames"] == 50 and result["settings"]["smooth"] == 2
    assert result["machine"]["cpu"]
    ran = {host: r for host, r in result["runs"].items() if "skipped" not in r}
    assert "pyav" in ran, "the PyAV node always runs"
    for run in ran.values():
        assert run["frames_out"] == 50 and run["complete"]
        assert [s["frames"] for s in run["samples"]] == [0, 10, 20, 30, 40, 50]
        assert all(s["rss_mib"] > 0 for s in run["samples"])
        assert isinstance(run["slope_mib_per_1000_frames"], float)
    table = capsys.readouterr().out
    assert "slope MiB/1k" in table and "pyav" in table


def test_slope_is_the_least_squares_line_of_the_second_half(soak) -> None:
    rising = [{"frames": f, "rss_mib": 100.0 + (0 if f < 5000 else 0.002 * f)} for f in range(0, 10001, 1000)]
    assert soak.slope(rising) == pytest.approx(2.0)  # 0.002 MiB per frame = 2 MiB per 1,000 frames
    flat = [{"frames": f, "rss_mib": 500.0 + (50 if f < 3000 else 0)} for f in range(0, 10001, 1000)]
    assert soak.slope(flat) == pytest.approx(0.0, abs=1e-9), (
        "growth in the first half (caches filling) is left out"
    )
    assert soak.slope(rising[:3]) is None
