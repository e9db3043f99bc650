"""The benchmark harness (benchmarks/_harness.py): peak memory, throughput timing, machine description."""

import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

HARNESS = Path(__file__).resolve().parents[2] / "benchmarks" / "_harness.py"


@pytest.fixture(scope="module")
def harness():
    spec = importlib.util.spec_from_file_location("bench_harness", HARNESS)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["bench_harness"] = module
    spec.loader.exec_module(module)
    return module


needs_proc = pytest.mark.skipif(not Path("/proc/self/statm").exists(), reason="needs Linux /proc")


@needs_proc
def test_peak_memory_sees_a_200_mb_allocation(harness) -> None:
    with harness.PeakMemory(cuda=False) as mem:
        block = np.ones(200 * 1024 * 1024, dtype=np.uint8)  # touched pages, so resident
        del block
    assert mem.host_over_baseline_mib is not None
    assert 190 <= mem.host_over_baseline_mib <= 260
    assert mem.host_peak_mib >= mem.host_baseline_mib + 190
    assert mem.device_peak_mib is None


@needs_proc
def test_peak_memory_sampler_alone_catches_a_held_allocation(harness, monkeypatch) -> None:
    # without the kernel's high-water mark only the sampling thread can see the peak
    monkeypatch.setattr(harness, "_reset_high_water_mark", lambda: False)
    with harness.PeakMemory(interval=0.001, cuda=False) as mem:
        block = np.ones(100 * 1024 * 1024, dtype=np.uint8)
        time.sleep(0.05)
        del block
    assert mem.samples >= 5
    assert 90 <= mem.host_over_baseline_mib <= 160


@needs_proc
def test_peak_memory_is_small_when_nothing_is_allocated(harness) -> None:
    with harness.PeakMemory(cuda=False) as mem:
        sum(range(1000))
    assert mem.host_over_baseline_mib < 20
    row = mem.as_dict()
    assert set(row) == {
        "host_peak_mib",
        "host_over_baseline_mib",
        "device_peak_mib",
        "device_over_baseline_mib",
    }


def test_measure_counts_calls_and_items(harness) -> None:
    calls = []
    result = harness.measure(lambda: calls.append(1), items=4, min_time=0.0, repeats=3, warmup=2)
    assert len(calls) == 2 + 3  # warm-up calls, then one call per repeat (min_time 0)
    assert result.calls == 3
    assert len(result.repeats) == 3
    assert result.items_per_s > 0


def test_measure_runs_until_min_time_and_reports_the_rate(harness) -> None:
    calls = []

    def work() -> None:
        calls.append(1)
        time.sleep(0.01)

    result = harness.measure(work, items=2, min_time=0.05, repeats=1, warmup=0)
    assert result.calls == len(calls) >= 5
    assert result.seconds_per_call >= 0.01
    # 2 items per ~10 ms call: at most 200 items/s (sleep never returns early)
    assert 50 < result.items_per_s <= 200


def test_measure_takes_the_median_repeat(harness) -> None:
    delays = iter([0.0, 0.04, 0.001, 0.02])  # warm-up, then three repeats

    def work() -> None:
        time.sleep(next(delays))

    result = harness.measure(work, items=1, min_time=0.0, repeats=3, warmup=1)
    assert result.repeats[0] < result.items_per_s < result.repeats[1]
    assert result.items_per_s == sorted(result.repeats)[1]


def test_measure_stops_at_max_calls(harness) -> None:
    calls = []
    result = harness.measure(
        lambda: calls.append(1), items=1, min_time=10.0, repeats=2, warmup=0, max_calls=3
    )
    assert result.calls == len(calls) == 6


def test_measure_rejects_bad_arguments(harness) -> None:
    with pytest.raises(ValueError):
        harness.measure(lambda: None, items=0)


def test_machine_describes_cpu_and_versions(harness) -> None:
    info = harness.machine()
    assert info["cpu"]
    assert info["cores_usable"] >= 1
    assert info["torch"] and info["numpy"] == np.__version__
    assert "av" in info and "load_average" in info
    line = harness.describe_machine(info)
    assert info["cpu"] in line and "cores" in line


@needs_proc
def test_peak_memory_counts_heap_memory_freed_earlier(harness) -> None:
    # 64 KiB blocks live in the C heap (below glibc's mmap threshold); freed, they stay resident unless trimmed
    def churn() -> list[np.ndarray]:
        return [np.ones(64 * 1024, dtype=np.uint8) for _ in range(1600)]  # 100 MiB

    blocks = churn()
    del blocks
    with harness.PeakMemory(cuda=False) as mem:
        blocks = churn()
        del blocks
    if not harness.release_freed_memory():
        pytest.skip("no glibc malloc_trim here")
    assert mem.host_over_baseline_mib >= 80


def test_stages_script_writes_rows_for_the_chosen_stages(shared, tmp_path, capsys) -> None:
    spec = importlib.util.spec_from_file_location("bench_stages", HARNESS.parent / "stages.py")
    assert spec is not None and spec.loader is not None
    stages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(stages)
    out = tmp_path / "stages.json"
    argv = ["--quick", "--frames", "4", "--resolutions", "128x72", "--stages", "decode,lightness,encode"]
    code = stages.main([*argv, "--devices", "cpu", "--shared", str(shared), "--out", str(out)])
    assert code == 0
    result = json.loads(out.read_text())
    rows = {(r["stage"], r["variant"].split()[0]): r for r in result["rows"]}
    assert {stage for stage, _ in rows} == {"decode", "lightness", "encode"}
    assert rows[("encode", "libx264")]["rate"] > 0
    assert all(r["resolution"] == "128x72" and r["timing"]["calls"] == 1 for r in result["rows"])
    assert result["machine"]["cpu"] and result["settings"]["frames"] == 4
    assert result["h264_nvenc"] == "ok" or result["h264_nvenc"].startswith("unavailable")
    table = capsys.readouterr().out
    assert "decode" in table and "frames/s" in table
    assert stages.main(["--markdown", "--out", str(out)]) == 0
    markdown = capsys.readouterr().out.splitlines()
    assert markdown[0].startswith(f"Measured on {result['machine']['cpu']}")
    assert sum(line.startswith("| decode | PyAV") for line in markdown) == 1


def test_measure_starts_no_repeat_past_its_budget(harness) -> None:
    calls = []

    def work() -> None:
        calls.append(1)
        time.sleep(0.02)

    result = harness.measure(work, items=1, min_time=0.0, repeats=5, warmup=0, budget=0.03)
    assert len(calls) == result.calls == 2  # 0.02 s < budget after one repeat, 0.04 s >= budget after two
    assert len(result.repeats) == 2


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_peak_memory_sees_a_cuda_allocation(harness) -> None:
    with harness.PeakMemory() as mem:
        block = torch.ones(64 * 1024 * 1024, dtype=torch.float32, device="cuda")  # 256 MiB
        del block
    assert 250 <= mem.device_over_baseline_mib <= 300
    assert mem.device_peak_mib >= mem.device_over_baseline_mib
