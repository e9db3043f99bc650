"""Shared helpers for the benchmark scripts: peak memory, throughput timing, and a description of the machine.

- :class:`PeakMemory`: a context manager that records the process's peak resident memory (RSS) while its block runs
  (a background thread samples ``/proc/self/statm`` every few milliseconds; where the kernel allows it, the exact
  high-water mark ``VmHWM`` is reset on entry and read on exit as well) and, with CUDA, the peak of
  ``torch.cuda.max_memory_allocated``. Figures in MiB, absolute and over the level at entry.
- :func:`measure`: calls a function until a minimum time has passed, several times over, and reports the median
  items per second.
- :func:`machine`: CPU model, core count, load average, library versions and the GPU, for each result file.

Not a script (the leading underscore keeps ``run_all.py`` from running it); scripts import it with
``sys.path`` pointing at this folder.
"""

import ctypes
import ctypes.util
import gc
import os
import platform
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import torch

MIB = 1024 * 1024
_STATM = Path("/proc/self/statm")
_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


# ------------------------------------------------------------------------------------------------ memory


def current_rss() -> int | None:
    """Resident memory of this process in bytes (``/proc/self/statm``), or None where /proc is missing."""
    try:
        resident_pages = int(_STATM.read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE")


def release_freed_memory() -> bool:
    """Collect garbage and hand the C heap's free pages back to the OS (glibc ``malloc_trim``); True if trimmed.

    Without this, memory freed by an earlier stage stays resident in the heap and a later stage reusing it would
    not raise the RSS, so its peak over the baseline would read too low.
    """
    gc.collect()
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        trim = ctypes.CDLL(name).malloc_trim
    except (OSError, AttributeError):  # not glibc
        return False
    return bool(trim(0))


def _reset_high_water_mark() -> bool:
    """Reset the kernel's peak-RSS counter (Linux >= 4.0: writing 5 to clear_refs); True when it worked."""
    try:
        _CLEAR_REFS.write_text("5")
    except OSError:
        return False
    return True


def _high_water_mark() -> int | None:
    """The kernel's peak RSS of this process (``VmHWM``) in bytes, or None."""
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


class PeakMemory:
    """Peak host RSS (and CUDA allocation) while the ``with`` block runs.

    After the block: ``host_peak_mib`` (absolute peak RSS), ``host_over_baseline_mib`` (peak minus the RSS at entry),
    ``host_baseline_mib``, and with CUDA ``device_peak_mib`` / ``device_over_baseline_mib`` (``None`` without
    CUDA). ``interval`` is the sampling period in seconds. Sampling can miss a spike shorter than ``interval``; the
    kernel's high-water mark cannot, so it is used whenever it could be reset on entry (one measurement at a time
    per process then, as the mark is process-wide). ``trim`` first returns freed heap memory to the OS
    (:func:`release_freed_memory`), so memory the block reuses counts.
    """

    def __init__(self, interval: float = 0.002, cuda: bool | None = None, trim: bool = True) -> None:
        self.interval = interval
        self.trim = trim
        self.cuda = torch.cuda.is_available() if cuda is None else cuda
        self.host_baseline_mib: float | None = None
        self.host_peak_mib: float | None = None
        self.host_over_baseline_mib: float | None = None
        self.device_peak_mib: float | None = None
        self.device_over_baseline_mib: float | None = None
        self.samples = 0
        self._peak = 0
        self._baseline: int | None = None
        self._exact = False
        self._device_baseline = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _sample(self) -> None:
        rss = current_rss()
        if rss is not None:
            self._peak = max(self._peak, rss)
            self.samples += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> "PeakMemory":
        if self.trim:
            release_freed_memory()
        if self.cuda:
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self._device_baseline = torch.cuda.memory_allocated()
        self._baseline = current_rss()
        self._peak = self._baseline or 0
        self._exact = self._baseline is not None and _reset_high_water_mark()
        if self._baseline is not None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="peak-memory", daemon=True)
            self._thread.start()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self._sample()
        if self._exact:
            mark = _high_water_mark()
            if mark is not None:
                self._peak = max(self._peak, mark)
        if self._baseline is not None:
            self.host_baseline_mib = self._baseline / MIB
            self.host_peak_mib = self._peak / MIB
            self.host_over_baseline_mib = max(0, self._peak - self._baseline) / MIB
        if self.cuda:
            torch.cuda.synchronize()
            peak = torch.cuda.max_memory_allocated()
            self.device_peak_mib = peak / MIB
            self.device_over_baseline_mib = max(0, peak - self._device_baseline) / MIB

    def as_dict(self) -> dict[str, float | None]:
        """The figures, rounded to 0.1 MiB, for a result file."""

        def r(v: float | None) -> float | None:
            return None if v is None else round(v, 1)

        return {
            "host_peak_mib": r(self.host_peak_mib),
            "host_over_baseline_mib": r(self.host_over_baseline_mib),
            "device_peak_mib": r(self.device_peak_mib),
            "device_over_baseline_mib": r(self.device_over_baseline_mib),
        }


# ------------------------------------------------------------------------------------------------ timing


@dataclass
class Throughput:
    """What :func:`measure` found: median items/s over the repeats, and each repeat's figures."""

    items_per_s: float
    seconds_per_call: float
    calls: int  # calls timed, over all repeats
    repeats: list[float] = field(default_factory=list)  # items/s of each repeat

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["items_per_s"] = round(self.items_per_s, 3)
        out["seconds_per_call"] = round(self.seconds_per_call, 6)
        out["repeats"] = [round(v, 3) for v in self.repeats]
        return out


def synchronize(device: torch.device | str | None) -> None:
    """Wait for queued CUDA work on ``device`` (no-op for the CPU or None)."""
    if device is not None and torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def measure(
    fn: Callable[[], object],
    items: int,
    *,
    min_time: float = 1.0,
    repeats: int = 3,
    warmup: int = 1,
    device: torch.device | str | None = None,
    max_calls: int | None = None,
    budget: float | None = None,
) -> Throughput:
    """Throughput of ``fn``, which handles ``items`` items per call.

    ``warmup`` untimed calls first; then ``repeats`` times: call ``fn`` until ``min_time`` seconds have passed (at
    least once, at most ``max_calls`` times), and take items/s of that repeat. The result is the median repeat.
    CUDA work is synchronised before each repeat's clock starts and stops (``device``). With ``budget`` (seconds),
    no further repeat starts once the timed repeats have taken that long (slow cases then get fewer repeats).
    """
    if items < 1 or repeats < 1 or warmup < 0:
        raise ValueError("items and repeats must be >= 1 and warmup >= 0")
    for _ in range(warmup):
        fn()
    rates: list[float] = []
    per_call: list[float] = []
    total = 0
    spent = 0.0
    for _ in range(repeats):
        if budget is not None and rates and spent >= budget:
            break
        synchronize(device)
        calls = 0
        start = time.perf_counter()
        while True:
            fn()
            calls += 1
            if max_calls is not None and calls >= max_calls:
                break
            if time.perf_counter() - start >= min_time:
                break
        synchronize(device)
        elapsed = max(time.perf_counter() - start, 1e-9)
        spent += elapsed
        rates.append(calls * items / elapsed)
        per_call.append(elapsed / calls)
        total += calls
    return Throughput(statistics.median(rates), statistics.median(per_call), total, rates)


# ----------------------------------------------------------------------------------------------- machine


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _version(module: str) -> str | None:
    try:
        mod = __import__(module)
    except ImportError:
        return None
    return str(getattr(mod, "__version__", "unknown"))


def machine() -> dict[str, Any]:
    """What the numbers were measured on: CPU, cores, load, library versions, GPU (name and memory) if any."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count() or 0
    info: dict[str, Any] = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": usable,
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(v, 2) for v in os.getloadavg()] if hasattr(os, "getloadavg") else None,
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": _version("numpy"),
        "av": _version("av"),
        "opencv": _version("cv2"),
        "gpu": None,
    }
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        info["gpu"] = props.name
        info["gpu_memory_gib"] = round(props.total_memory / 1024**3, 1)
        info["cuda"] = torch.version.cuda
    return info


def describe_machine(info: dict[str, Any]) -> str:
    """One line naming the machine, for table headers and READMEs."""
    text = f"{info['cpu']}, {info['cores_usable']} cores"
    if info.get("load_average"):
        text += f" (load {info['load_average'][0]:.2f})"
    if info.get("gpu"):
        text += f", {info['gpu']}"
    return text


# ------------------------------------------------------------------------------------------------ baseline


def baseline_path(tree: Path, folder: Path) -> Path:
    """A folder that makes ``import chromaflow`` load the checkout at ``tree`` (e.g. ``git archive HEAD | tar -x
    -C /tmp/cf-old``): links to its ``src/chromaflow`` files and its ``core``, ``filters`` and ``plugins``, built in
    ``folder``. Put first on ``PYTHONPATH``, it wins over the editable install of the working tree, so a benchmark
    can time today's code and another version of it in one run without keeping old code in the package."""
    tree = tree.resolve()
    if not (tree / "core").is_dir() or not (tree / "src" / "chromaflow" / "__init__.py").is_file():
        raise SystemExit(f"--baseline {tree}: not a chromaflow checkout (no core/ or src/chromaflow/)")
    package = folder / "chromaflow"
    package.mkdir(parents=True, exist_ok=True)
    for item in (tree / "src" / "chromaflow").iterdir():
        if item.suffix == ".py":
            (package / item.name).symlink_to(item)
    for sub in ("core", "filters", "plugins"):
        (package / sub).symlink_to(tree / sub)
    return folder


def run_baseline(script: Path, args: list[str], tree: Path) -> dict[str, Any]:
    """Run benchmark ``script`` with ``args`` on the checkout at ``tree`` (see :func:`baseline_path`) in a child
    process; the script must take ``--out PATH`` and write its JSON there. Returns that JSON."""
    import json
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory(prefix="chromaflow-baseline-") as tmp:
        site = baseline_path(tree, Path(tmp) / "site")
        out = Path(tmp) / "baseline.json"
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
        subprocess.run([sys.executable, str(script), *args, "--out", str(out)], env=env, check=True)
        return dict(json.loads(out.read_text()))
