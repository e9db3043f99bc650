"""Roofline analysis: FLOPs and bytes per frame of each colour net and of the full-resolution stages around it,
against the peaks measured on this device (a large copy, a large matmul), and the measured gap.

Counting (shape-only, exact for the code as it runs):

- model FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` on one frame (batch 1), a multiply-add counted as
  2 FLOPs; convolutions, transposed convolutions and matrix products only (batch norm, ReLU, softmax are left out:
  they cost bytes, not FLOPs worth counting);
- model bytes: weights (parameters and buffers of every leaf module that ran) read once per batch, so amortised
  over the batch size (1, 8, 64), plus activation traffic: every leaf module's inputs read and output written, at
  the activation dtype (float32 on the CPU, bfloat16 on CUDA). This is the unfused eager picture: no layer's output
  is assumed to stay in cache. Arithmetic intensity = FLOPs / bytes;
- full-resolution stages (Y' -> L* lookup, L* resized to the model input, ab upsampled to the frame, the in-gamut
  L*ab -> R'G'B' -> Y'CbCr join with 4:2:0 chroma; the functions of ``chromaflow.core.colorizer``) on one real
  frame: "stage I/O" = the planes each stage reads and writes at their dtypes (what one kernel per stage would
  move), "as coded" = the bytes every ATen operator of the eager code reads and writes (a dispatch-level count;
  views are free), and rough FLOPs = one per element written by a computing operator.

Measured on the device the script runs on: peak bandwidth (``copy_`` of one large contiguous buffer, read + write
counted), peak matmul throughput (bfloat16 8192^2 on CUDA; float32 and bfloat16 on the CPU), the models' forward
throughput (``torch.inference_mode``, channels_last; bfloat16 autocast on CUDA, float32 on the CPU) at input 256,
and the full-resolution stages' throughput. The roofline bound is min(peak FLOP/s, intensity * peak bandwidth)
turned into frames/s; the gap is bound / achieved.

    .venv/bin/python benchmarks/roofline.py [--device auto|cpu|cuda] [--quick] [--models base,siggraph17,eccv16]
                                            [--batches 8] [--sizes 256,512]

Prints markdown tables (progress on stderr) and merges this device's run into benchmarks/results/roofline.json
(one entry per device type, so a CPU run and a CUDA run live side by side).
"""

import argparse
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten
from torch.utils.flop_counter import FlopCounterMode

from chromaflow.core.colorizer import eager_join_chroma, ycbcr_lightness
from chromaflow.core.colour import YCbCrFormat, downsample_chroma, lab_to_rgb, quantize, rgb_to_ycbcr
from chromaflow.core.paths import shared_dir

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "roofline.json"
MODELS = ("base", "siggraph17", "eccv16")
RESOLUTIONS = {"854x480": (480, 854), "1920x1080": (1080, 1920)}
AMORTISE_BATCHES = (1, 8, 64)
MODEL_SIDE = 256  # the Colorizer's default model input, used for the stages and the achieved runs
# Vendor figures, not measurements: NVIDIA H100 Tensor Core GPU datasheet, SXM5 column (BF16 Tensor Core
# 1,979 TFLOPS is quoted with 2:4 sparsity, dense is half; GPU memory bandwidth 3.35 TB/s, HBM3).
H100_SXM_VENDOR = {"bf16_dense_tflops": 989.4, "hbm3_tb_per_s": 3.35}

# Operators that only write their output (their first argument is the destination, not an input).
_WRITE_ONLY = {"copy_", "fill_", "zero_", "zeros_like", "new_zeros", "new_full"}
# Operators that move or allocate data without computing: no FLOPs.
_NO_FLOPS = _WRITE_ONLY | {
    "_to_copy",
    "clone",
    "cat",
    "stack",
    "index",
    "index_put_",
    "constant_pad_nd",
    "contiguous",
    "full",
    "zeros",
    "ones",
    "arange",
    "nonzero",
    "_local_scalar_dense",
    "lift_fresh_copy",
}
# Operators that move nothing: allocations, and views whose schema does not say so.
_FREE = {"empty", "empty_strided", "empty_like", "new_empty", "new_empty_strided", "_unsafe_view"}


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------------------------- counting


def touched_bytes(t: Tensor) -> int:
    """Bytes a kernel touches reading or writing ``t``: its elements, but no more than its storage holds
    (a broadcast view of one row is one row of memory)."""
    nbytes = t.numel() * t.element_size()
    try:
        return min(nbytes, t.untyped_storage().nbytes())
    except (RuntimeError, NotImplementedError):
        return nbytes


def _op_name(func: Any) -> str:
    return str(func._schema.name).split("::")[-1]


def _is_view(func: Any) -> bool:
    """True for operators whose outputs alias an input without writing it (view, expand, slice, detach...)."""
    returns = func._schema.returns
    return bool(returns) and all(r.alias_info is not None and not r.alias_info.is_write for r in returns)


@dataclass
class Traffic:
    """Bytes read and written, and elements written by computing operators (a rough FLOP count)."""

    read: int = 0
    written: int = 0
    elements: int = 0
    ops: int = 0
    by_op: dict[str, int] = field(default_factory=dict)  # bytes read + written per operator name

    @property
    def bytes(self) -> int:
        return self.read + self.written


class TrafficCounter(TorchDispatchMode):
    """Counts, for every ATen operator run inside it, the bytes of its tensor inputs (read) and outputs (written).

    Views are free; operators that only fill their destination (``copy_``, ``fill_``) do not count it as read.
    Works on real and on meta tensors.
    """

    def __init__(self) -> None:
        super().__init__()
        self.traffic = Traffic()

    def __torch_dispatch__(self, func: Any, types: Any, args: Sequence[Any] = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        if _is_view(func):
            return out
        name = _op_name(func).split(".")[0]
        inputs = [t for t in tree_flatten((args, kwargs))[0] if isinstance(t, Tensor)]
        if name in _WRITE_ONLY and inputs:
            inputs = inputs[1:] if name == "copy_" else []
        outputs = [t for t in tree_flatten(out)[0] if isinstance(t, Tensor)]
        if name in _FREE:
            return out
        read = sum(touched_bytes(t) for t in inputs)
        written = sum(touched_bytes(t) for t in outputs)
        self.traffic.read += read
        self.traffic.written += written
        self.traffic.by_op[name] = self.traffic.by_op.get(name, 0) + read + written
        if name not in _NO_FLOPS:
            self.traffic.elements += sum(t.numel() for t in outputs)
        self.traffic.ops += 1
        return out


def leaf_modules(net: nn.Module) -> list[nn.Module]:
    return [m for m in net.modules() if not list(m.children())]


@dataclass
class ModelCount:
    """Per-frame counts of one net at one input size (batch 1)."""

    flops: int  # multiply-add = 2
    weight_elements: int  # parameters + buffers of the leaf modules that ran
    activation_elements: int  # leaf modules' inputs + outputs
    eager_bytes: int  # every ATen operator's reads + writes, at the dtype the count ran in

    def bytes_per_frame(self, itemsize: int, batch: int) -> float:
        """Activation traffic plus the weights read once per batch, shared by ``batch`` frames."""
        return (self.activation_elements + self.weight_elements / batch) * itemsize

    def intensity(self, itemsize: int, batch: int) -> float:
        return self.flops / self.bytes_per_frame(itemsize, batch)


def count_model(net: nn.Module, inputs: Sequence[Tensor]) -> ModelCount:
    """FLOPs, weight and activation element counts of one forward of ``net`` on ``inputs`` (batch 1).

    Activation elements: each leaf module's tensor inputs and output (read + written once each). The inputs may
    be meta tensors (with ``net`` on the meta device): nothing is computed then.
    """
    ran: dict[int, nn.Module] = {}
    activations = 0

    def hook(module: nn.Module, args: Any, output: Any) -> None:
        nonlocal activations
        ran[id(module)] = module
        tensors = [t for t in tree_flatten((args, output))[0] if isinstance(t, Tensor)]
        activations += sum(t.numel() for t in tensors)

    handles = [m.register_forward_hook(hook) for m in leaf_modules(net)]
    counter = TrafficCounter()
    try:
        with torch.inference_mode(), FlopCounterMode(display=False) as flops, counter:
            net(*inputs)
    finally:
        for h in handles:
            h.remove()
    weights = sum(
        t.numel()
        for m in ran.values()
        for t in (*m.parameters(recurse=False), *m.buffers(recurse=False))
        if t.is_floating_point()
    )
    return ModelCount(int(flops.get_total_flops()), weights, activations, counter.traffic.bytes)


def roofline_fps(flops: float, bytes_: float, peak_flops: float, peak_bw: float) -> float:
    """Frames/s the roofline allows: min(peak FLOP/s, intensity * peak bandwidth) / FLOPs per frame."""
    if flops <= 0:
        return peak_bw / bytes_
    return min(peak_flops, flops / bytes_ * peak_bw) / flops


# --------------------------------------------------------------------------------------------- models


def build_model(name: str) -> nn.Module:
    """``base`` and ``base-v1`` with their bundled weights; ``siggraph17``/``eccv16`` with seeded random weights
    (speed and counts do not depend on the values)."""
    torch.manual_seed(0)
    if name in ("base", "base-v1"):
        from chromaflow.core import registry

        return registry.load(name).eval()
    from chromaflow.core.nets.zhang import build_zhang

    return build_zhang(name).eval()


def model_inputs(batch: int, side: int, device: torch.device | str, dtype: torch.dtype) -> list[Tensor]:
    """L* (seeded random in [0, 100]) and the empty hint planes (no hints: the benchmark's case)."""
    gen = torch.Generator().manual_seed(side * 100 + batch)
    l = (torch.rand(batch, 1, side, side, generator=gen) * 100).to(device=device, dtype=dtype)
    ab = torch.zeros(batch, 2, side, side, device=device, dtype=dtype)
    mask = torch.zeros(batch, 1, side, side, device=device, dtype=dtype)
    return [l, ab, mask]


def count_on_meta(name: str, side: int, dtype: torch.dtype) -> ModelCount:
    """Counts for ``name`` at ``side`` without computing anything (meta tensors)."""
    net = build_model(name).to(device="meta", dtype=dtype)
    if hasattr(net, "refine_hints"):
        net.refine_hints = (
            False  # without hints the residual step returns at once; on meta it cannot test that
        )
    return count_model(net, model_inputs(1, side, "meta", dtype))


# --------------------------------------------------------------------------------------------- timing


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def best_time(
    fn: Callable[[], object], device: torch.device, reps: int, min_time: float = 0.0, warmup: bool = True
) -> float:
    """Best wall time of ``fn`` over at least ``reps`` runs (more while their sum is under ``min_time``)."""
    if warmup:
        fn()
    times: list[float] = []
    while len(times) < reps or sum(times) < min_time:
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
        if len(times) >= 50:
            break
    return min(times)


def measure_copy(device: torch.device, nbytes: int, reps: int) -> dict[str, float]:
    """GB/s of ``dst.copy_(src)`` on one contiguous buffer, counting the read and the write."""
    src = torch.ones(nbytes // 4, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    seconds = best_time(lambda: dst.copy_(src), device, reps)
    return {"bytes": float(nbytes), "seconds": seconds, "gb_per_s": 2 * nbytes / seconds / 1e9}


def measure_matmul(device: torch.device, n: int, dtype: torch.dtype, reps: int) -> dict[str, float]:
    """TFLOP/s of an ``n`` x ``n`` x ``n`` matrix product (2 n^3 FLOPs)."""
    gen = torch.Generator().manual_seed(n)
    a = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(n, n, generator=gen).to(device=device, dtype=dtype)
    seconds = best_time(lambda: a @ b, device, reps)
    return {"n": float(n), "seconds": seconds, "tflops": 2 * n**3 / seconds / 1e12}


def measure_peaks(
    device: torch.device, copy_bytes: int, n: int, dtypes: Sequence[torch.dtype], reps: int
) -> dict[str, dict[str, float]]:
    """The copy bandwidth and the matmul throughput at each of ``dtypes``."""
    log(f"peak copy {copy_bytes >> 20} MiB ...")
    peaks = {"copy": measure_copy(device, copy_bytes, max(reps, 10))}
    for dtype in dtypes:
        log(f"peak matmul {n}^2 {dtype} ...")
        peaks[f"matmul_{str(dtype).split('.')[-1]}"] = measure_matmul(device, n, dtype, max(reps, 5))
    return peaks


def _peak_value(run: dict[str, float]) -> float:
    return run.get("gb_per_s", 0.0) + run.get("tflops", 0.0)


def time_model(
    net: nn.Module, device: torch.device, side: int, batch: int, reps: int, min_time: float
) -> dict[str, float]:
    """Frames/s of the forward pass as the engine runs it on ``device``."""
    amp = device.type == "cuda"

    def forward(n: int) -> Callable[[], object]:
        inputs = [
            t.contiguous(memory_format=torch.channels_last)
            for t in model_inputs(n, side, device, torch.float32)
        ]

        def run() -> object:
            with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
                return net(*inputs)

        return run

    forward(
        1
    )()  # a cheap first pass (kernel selection, allocator) before the timed batch and its own warm-up
    seconds = best_time(forward(batch), device, reps, min_time, warmup=amp)
    return {"batch": float(batch), "seconds_per_batch": seconds, "fps": batch / seconds}


# ----------------------------------------------------------------------------- full-resolution stages


def sample_luma(height: int, width: int, fmt: YCbCrFormat) -> Tensor:
    """An 8-bit Y' plane ``(1, H, W)``: a DAVIS frame resized to the size, or a seeded synthetic picture."""
    frames = sorted((shared_dir() / "data" / "davis-dev" / "dog").glob("*.jpg"))
    if frames:
        import cv2

        bgr = cv2.imread(str(frames[0]), cv2.IMREAD_COLOR)
        rgb = cv2.resize(bgr[:, :, ::-1], (width, height), interpolation=cv2.INTER_AREA)
        image = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).float() / 255.0
    else:
        gen = torch.Generator().manual_seed(height)
        image = F.interpolate(torch.rand(1, 3, 9, 16, generator=gen), (height, width), mode="bicubic")[0]
        image = image.clamp(0, 1)
    y = rgb_to_ycbcr(image, fmt)[0]
    return y.round().clamp(0, 255).to(torch.uint8)[None]


def stage_functions(
    y: Tensor, ab_small: Tensor, fmt: YCbCrFormat
) -> dict[str, tuple[Callable[[], Any], list[Tensor]]]:
    """The full-resolution steps around the net, as :class:`Colorizer` runs them, with their input planes."""
    height, width = y.shape[-2:]
    l = ycbcr_lightness(y, fmt)[:, None]
    side = (MODEL_SIDE, MODEL_SIDE)
    ab = F.interpolate(ab_small, (height, width), mode="bilinear", align_corners=False)
    return {
        "Y' -> L* (table)": (lambda: ycbcr_lightness(y, fmt)[:, None], [y]),
        f"L* resize to {MODEL_SIDE}": (lambda: F.interpolate(l, side, mode="bilinear", antialias=True), [l]),
        "ab upsample": (
            lambda: F.interpolate(ab_small, (height, width), mode="bilinear", align_corners=False),
            [ab_small],
        ),
        # The eager tensor form: what ycbcr_chroma ran before its join was fused, and its CUDA fallback. The fused
        # forms (numba on the CPU, torch.compile on CUDA) are timed in benchmarks/engine.py and stages.py; their
        # traffic is the stage I/O by construction (one read of L* and ab, one write of Cb, Cr).
        "in-gamut join -> Y'CbCr 4:2:0 (eager)": (lambda: _eager_chroma(l, ab, fmt), [l, ab]),
    }


def _eager_chroma(l: Tensor, ab: Tensor, fmt: YCbCrFormat) -> Tensor:
    return quantize(downsample_chroma(eager_join_chroma(l, ab, fmt), (2, 2), "left"), 8)


@dataclass
class StageCount:
    name: str
    stage_io_bytes: int  # planes in + planes out at their dtypes
    eager_bytes: int  # every operator's reads and writes
    rough_flops: int  # one per element written by a computing operator
    seconds: float = math.nan
    ops: int = 0  # operators run
    top_ops: dict[str, int] = field(default_factory=dict)  # the operators moving the most bytes


def count_stages(
    y: Tensor, ab_small: Tensor, fmt: YCbCrFormat, device: torch.device, reps: int, min_time: float = 0.0
) -> list[StageCount]:
    """Counts (on the CPU copy) and times (on ``device``: best of ``reps`` runs, more while under ``min_time``
    seconds) of each full-resolution stage for one frame."""
    counts = []
    for name, (fn, planes) in stage_functions(y, ab_small, fmt).items():
        counter = TrafficCounter()
        with counter:
            out = fn()
        io = sum(touched_bytes(t) for t in planes) + sum(
            touched_bytes(t) for t in tree_flatten(out)[0] if isinstance(t, Tensor)
        )
        ranked = sorted(counter.traffic.by_op.items(), key=lambda kv: -kv[1])[:8]
        counts.append(
            StageCount(
                name,
                io,
                counter.traffic.bytes,
                counter.traffic.elements,
                ops=counter.traffic.ops,
                top_ops=dict(ranked),
            )
        )
    on_device = stage_functions(y.to(device), ab_small.to(device), fmt)
    for count in counts:
        fn = on_device[count.name][0]
        count.seconds = best_time(fn, device, reps, min_time)
    return counts


# ----------------------------------------------------------------------------------------------- report


def describe_machine(device: torch.device) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    machine: dict[str, Any] = {
        "cpu": cpu,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "device": str(device),
    }
    if device.type == "cuda":
        machine["gpu"] = torch.cuda.get_device_name(device)
        machine["cuda"] = torch.version.cuda
    return machine


def fmt_num(x: float, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "-"
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def markdown(headers: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--sizes", default="256,512", help="model input sides to count")
    parser.add_argument(
        "--batches", default="", help="batch sizes of the achieved runs (default: 8; CUDA: 8,64)"
    )
    parser.add_argument("--quick", action="store_true", help="smaller peaks, batch 2 on the CPU, one rep")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
        if device.type == "cuda" and not torch.cuda.is_available():
            log("--device cuda: no CUDA device is visible to torch; run with --device cpu")
            return 2
    cuda = device.type == "cuda"
    models = [m for m in args.models.split(",") if m]
    sizes = [int(s) for s in args.sizes.split(",") if s]
    if args.batches:
        batches = [int(b) for b in args.batches.split(",")]
    else:
        batches = [8, 64] if cuda else ([2] if args.quick else [8])
    reps = 1 if args.quick else (20 if cuda else 3)
    model_reps = reps if cuda else 1  # a CPU forward of batch 8 takes tens of seconds
    act_dtype = torch.bfloat16 if cuda else torch.float32
    itemsize = torch.empty((), dtype=act_dtype).element_size()
    machine = describe_machine(device)
    log(f"roofline on {machine.get('gpu', machine['cpu'])} ({device}), activations {act_dtype}")

    # --- peaks, measured before and after the runs below; the better of the two is the peak (on a shared machine
    # a burst of other work during one measurement would otherwise lower the roof)
    copy_bytes = (1 << 30) if cuda else ((64 << 20) if args.quick else (256 << 20))
    n_mm = 8192 if cuda else (1024 if args.quick else 2048)
    mm_dtypes = [torch.bfloat16] if cuda else [torch.float32, torch.bfloat16]
    peak_runs = [measure_peaks(device, copy_bytes, n_mm, mm_dtypes, reps)]
    vendor_flops = H100_SXM_VENDOR["bf16_dense_tflops"] * 1e12
    vendor_bw = H100_SXM_VENDOR["hbm3_tb_per_s"] * 1e12

    # --- models: counts (meta, free) and achieved throughput (real)
    model_rows: list[dict[str, Any]] = []
    counts: dict[tuple[str, int], ModelCount] = {}
    for name in models:
        for side in sizes:
            count = count_on_meta(name, side, act_dtype)
            bf16 = count_on_meta(name, side, torch.bfloat16) if not cuda else count
            row: dict[str, Any] = {
                "model": name,
                "side": side,
                "gflop_per_frame": count.flops / 1e9,
                "weight_mb": count.weight_elements * itemsize / 1e6,
                "activation_mb_per_frame": count.activation_elements * itemsize / 1e6,
                "eager_all_ops_mb_per_frame": count.eager_bytes / 1e6,
                "itemsize": itemsize,
                "mb_per_frame": {b: count.bytes_per_frame(itemsize, b) / 1e6 for b in AMORTISE_BATCHES},
                "intensity": {b: count.intensity(itemsize, b) for b in AMORTISE_BATCHES},
                "h100_vendor_bound_fps_bf16_b8": roofline_fps(
                    bf16.flops, bf16.bytes_per_frame(2, 8), vendor_flops, vendor_bw
                ),
                "h100_vendor_bound_by_b8": "compute"
                if bf16.intensity(2, 8) >= vendor_flops / vendor_bw
                else "bandwidth",
                "achieved": [],
            }
            counts[(name, side)] = count
            if side == MODEL_SIDE:
                net = build_model(name).to(device).to(memory_format=torch.channels_last)
                for batch in batches:
                    log(f"{name} {side} batch {batch} forward ...")
                    timing = time_model(net, device, side, batch, model_reps, 0.0 if args.quick else 2.0)
                    row["achieved"].append(timing)
                del net
            model_rows.append(row)

    # --- full-resolution stages around the net (the base net's 64x64 ab, the default model)
    fmt = YCbCrFormat("709", full_range=False, bits=8)
    stage_runs: list[tuple[str, float, list[StageCount], int]] = []
    base = build_model("base")
    for label, (height, width) in RESOLUTIONS.items():
        log(f"stages at {label} ...")
        y = sample_luma(height, width, fmt)
        l = ycbcr_lightness(y, fmt)[:, None]
        small = F.interpolate(l, (MODEL_SIDE, MODEL_SIDE), mode="bilinear", antialias=True)
        with torch.inference_mode():
            ab_small = base(*[small, *model_inputs(1, MODEL_SIDE, "cpu", torch.float32)[1:]]).float()
        stages = count_stages(y, ab_small, fmt, device, reps, 0.0 if args.quick else 1.0)
        ab_full = F.interpolate(ab_small, (height, width), mode="bilinear", align_corners=False)
        rgb = lab_to_rgb(torch.cat((l, ab_full), dim=1), clip=False)
        outside = float(((rgb < -1e-5) | (rgb > 1 + 1e-5)).any(dim=1).float().mean())
        log(f"  {outside:.1%} of the pixels are out of gamut (they take the bisection path)")
        total = StageCount(
            "all four stages",
            sum(s.stage_io_bytes for s in stages),
            sum(s.eager_bytes for s in stages),
            sum(s.rough_flops for s in stages),
            sum(s.seconds for s in stages),
            sum(s.ops for s in stages),
        )
        floor = height * width + 2 * (height // 2) * (width // 2)  # Y' in, Cb/Cr 4:2:0 out, 8-bit
        stage_runs.append((label, outside, [*stages, total], floor))

    # --- the peaks again, then everything that depends on them
    peak_runs.append(measure_peaks(device, copy_bytes, n_mm, mm_dtypes, reps))
    peaks = {key: max((run[key] for run in peak_runs), key=_peak_value) for key in peak_runs[0]}
    peak_key = "matmul_bfloat16" if cuda else "matmul_float32"
    peak_flops = peaks[peak_key]["tflops"] * 1e12
    peak_bw = peaks["copy"]["gb_per_s"] * 1e9
    ridge = peak_flops / peak_bw
    for row in model_rows:
        count = counts[(row["model"], row["side"])]
        row["bound_fps_b8"] = roofline_fps(
            count.flops, count.bytes_per_frame(itemsize, 8), peak_flops, peak_bw
        )
        row["bound_by_b8"] = "compute" if count.intensity(itemsize, 8) >= ridge else "bandwidth"
        for a in row["achieved"]:
            batch, fps = int(a["batch"]), a["fps"]
            bytes_b = count.bytes_per_frame(itemsize, batch)
            a["achieved_tflops"] = fps * count.flops / 1e12
            a["achieved_gb_per_s"] = fps * bytes_b / 1e9
            a["bound_fps"] = roofline_fps(count.flops, bytes_b, peak_flops, peak_bw)
            a["bound_by"] = "compute" if count.intensity(itemsize, batch) >= ridge else "bandwidth"
            a["gap"] = a["bound_fps"] / fps
    stage_rows: list[dict[str, Any]] = []
    for label, outside, stage_counts, floor in stage_runs:
        for s in stage_counts:
            fps = 1.0 / s.seconds
            stage_rows.append(
                {
                    "resolution": label,
                    "stage": s.name,
                    "out_of_gamut_fraction": outside,
                    "top_ops_mb": {k: v / 1e6 for k, v in s.top_ops.items()},
                    "eager_ops": s.ops,
                    "stage_io_mb": s.stage_io_bytes / 1e6,
                    "eager_mb": s.eager_bytes / 1e6,
                    "rough_mflop": s.rough_flops / 1e6,
                    "intensity_eager": s.rough_flops / s.eager_bytes if s.eager_bytes else 0.0,
                    "fps": fps,
                    "achieved_gb_per_s_eager": fps * s.eager_bytes / 1e9,
                    "bound_fps_stage_io": peak_bw / s.stage_io_bytes,
                    "bound_fps_eager": peak_bw / s.eager_bytes if s.eager_bytes else math.inf,
                    "gap_vs_stage_io": peak_bw / s.stage_io_bytes / fps,
                    "h100_vendor_bound_fps_eager": vendor_bw / s.eager_bytes if s.eager_bytes else math.inf,
                }
            )
        stage_rows.append(
            {
                "resolution": label,
                "stage": "fused floor (Y' in, 4:2:0 Cb/Cr out, 8-bit)",
                "stage_io_mb": floor / 1e6,
                "bound_fps_stage_io": peak_bw / floor,
                "h100_vendor_bound_fps_eager": vendor_bw / floor,
            }
        )

    # --- tables
    dev_name = machine.get("gpu", machine["cpu"])
    print(f"\n### Peaks measured on {dev_name} ({device}, torch {torch.__version__})\n")
    peak_table = [
        ["copy_ (read + write)", f"{copy_bytes >> 20} MiB", f"{peaks['copy']['gb_per_s']:.1f} GB/s"]
    ]
    for key, value in peaks.items():
        if key.startswith("matmul"):
            peak_table.append(
                [key.replace("_", " "), f"{int(value['n'])}^2", f"{value['tflops']:.3g} TFLOP/s"]
            )
    print(markdown(["measurement", "size", "peak"], peak_table))
    print(f"\nridge point: {ridge:.1f} FLOP/byte ({peak_key.split('_')[1]} matmul / copy)\n")

    print(f"### Models, batch-1 counts; achieved at input {MODEL_SIDE} ({act_dtype}, channels_last)\n")
    headers = [
        "model",
        "input",
        "GFLOP/frame",
        "weights MB",
        "act. MB/frame",
        "FLOP/B @1/8/64",
        "batch",
        "bound f/s",
        "achieved f/s",
        "TFLOP/s",
        "GB/s",
        "gap",
        "H100 vendor bound f/s",
    ]
    rows = []
    for r in model_rows:
        inten = "/".join(fmt_num(r["intensity"][b], 3) for b in AMORTISE_BATCHES)
        base_cells = [
            r["model"],
            str(r["side"]),
            fmt_num(r["gflop_per_frame"]),
            fmt_num(r["weight_mb"]),
            fmt_num(r["activation_mb_per_frame"]),
            inten,
        ]
        vendor = f"{fmt_num(r['h100_vendor_bound_fps_bf16_b8'])} ({r['h100_vendor_bound_by_b8'][0]})"
        if not r["achieved"]:
            bound = f"{fmt_num(r['bound_fps_b8'])} ({r['bound_by_b8'][0]})"
            rows.append([*base_cells, "8", bound, "-", "-", "-", "-", vendor])
        for a in r["achieved"]:
            rows.append(
                [
                    *base_cells,
                    str(int(a["batch"])),
                    f"{fmt_num(a['bound_fps'])} ({a['bound_by'][0]})",
                    fmt_num(a["fps"]),
                    fmt_num(a["achieved_tflops"]),
                    fmt_num(a["achieved_gb_per_s"]),
                    f"{a['gap']:.1f}x",
                    vendor,
                ]
            )
    print(markdown(headers, rows))

    print("\n### Full-resolution stages around the net (one frame; base's 64x64 ab)\n")
    headers = [
        "resolution",
        "stage",
        "stage I/O MB",
        "as-coded MB",
        "~MFLOP",
        "FLOP/B",
        "bound f/s (I/O)",
        "achieved f/s",
        "GB/s (as coded)",
        "gap (I/O)",
        "H100 vendor bound f/s (as coded)",
    ]
    rows = []
    for r in stage_rows:
        rows.append(
            [
                r["resolution"],
                r["stage"],
                fmt_num(r["stage_io_mb"]),
                fmt_num(r.get("eager_mb", math.nan)),
                fmt_num(r.get("rough_mflop", math.nan)),
                fmt_num(r.get("intensity_eager", math.nan)),
                fmt_num(r["bound_fps_stage_io"]),
                fmt_num(r.get("fps", math.nan)),
                fmt_num(r.get("achieved_gb_per_s_eager", math.nan)),
                f"{r['gap_vs_stage_io']:.0f}x" if "gap_vs_stage_io" in r else "-",
                fmt_num(r["h100_vendor_bound_fps_eager"]),
            ]
        )
    print(markdown(headers, rows))

    # --- JSON: this device's run merged into the file
    run = {
        "machine": machine,
        "quick": args.quick,
        "activation_dtype": str(act_dtype),
        "flop_convention": "multiply-add = 2 FLOPs (torch.utils.flop_counter); conv/matmul only",
        "peaks": peaks,
        "peak_runs": peak_runs,
        "peak_flops_used": peak_key,
        "ridge_flop_per_byte": ridge,
        "models": model_rows,
        "stages": stage_rows,
        "h100_sxm_vendor_figures": H100_SXM_VENDOR,
    }
    data: dict[str, Any] = {"benchmark": "roofline", "runs": {}}
    if args.out.is_file():
        try:
            data = json.loads(args.out.read_text())
            data.setdefault("runs", {})
        except (OSError, json.JSONDecodeError):
            data = {"benchmark": "roofline", "runs": {}}
    data["runs"][device.type] = run
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(args.out.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, default=_json_default) + "\n")
    tmp.replace(args.out)
    log(f"wrote {args.out}")
    return 0


def _json_default(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if hasattr(x, "__dataclass_fields__"):
        return asdict(x)
    raise TypeError(type(x).__name__)


if __name__ == "__main__":
    raise SystemExit(main())
