"""Colorizer throughput: images/s per model at model input 256 and 512, batch 1 and 8, on CPU and CUDA.

Each measurement runs the whole :class:`Colorizer` path (L* of an RGB batch, resize, net, ab upsampling, gamut-safe
join) on random RGB images as large as the model input. Speed does not depend on the weights' values, so models
whose weights are absent run with random weights (recorded as ``"weights": "random"``).

    .venv/bin/python benchmarks/colorize.py [--devices cpu,cuda] [--models eccv16,siggraph17,base]
                                            [--sizes 256,512] [--batches 1,8] [--settings 256x1,512x8]
                                            [--min-time 2] [--quick]

Prints a table (progress on stderr, table on stdout) and writes benchmarks/results/colorize.json.
"""

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from chromaflow.core import registry
from chromaflow.core.colorizer import Colorizer, load_net
from chromaflow.core.device import Placement

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks" / "results" / "colorize.json"


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def build(name: str) -> tuple[nn.Module, str]:
    """The named model with its real weights when present, else the same architecture with random weights."""
    if registry.is_present(name):
        return load_net(name), "official" if name != "base" else "bundled"
    torch.manual_seed(0)
    if name == "base":
        from chromaflow.core.nets.base import build_base

        return build_base().eval(), "random"
    from chromaflow.core.nets.zhang import build_zhang

    return build_zhang(name), "random"


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(colorizer: Colorizer, size: int, batch: int, min_time: float, max_reps: int) -> dict[str, float]:
    device = colorizer.placement.device
    gen = torch.Generator().manual_seed(batch * 1000 + size)
    images = torch.rand(batch, 3, size, size, generator=gen).to(device)
    times = []
    while len(times) < max_reps and sum(times) < min_time:
        _sync(device)
        start = time.perf_counter()
        colorizer.colorize(images)
        _sync(device)
        times.append(time.perf_counter() - start)
    best = min(times)
    return {"reps": len(times), "seconds_per_batch": best, "images_per_s": batch / best}


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--devices", default="cpu,cuda")
    parser.add_argument("--models", default="eccv16,siggraph17,base")
    parser.add_argument("--sizes", default="256,512")
    parser.add_argument("--batches", default="1,8")
    parser.add_argument(
        "--settings",
        default="",
        help="explicit SIZExBATCH list (e.g. 256x1,256x8,512x1) instead of sizes x batches",
    )
    parser.add_argument(
        "--min-time", type=float, default=2.0, help="seconds of timed runs per setting (at least 1)"
    )
    parser.add_argument("--quick", action="store_true", help="one timed run per setting")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    max_reps = 1 if args.quick else 20
    settings: dict[int, list[int]] = {}
    if args.settings:
        for item in args.settings.split(","):
            size, batch = item.lower().split("x")
            settings.setdefault(int(size), []).append(int(batch))
    else:
        for size in args.sizes.split(","):
            settings[int(size)] = [int(b) for b in args.batches.split(",")]
    devices = [d for d in args.devices.split(",") if d and (d == "cpu" or torch.cuda.is_available())]
    rows: list[dict[str, Any]] = []
    for dev in devices:
        placement = Placement.resolve(dev, None)
        for name in args.models.split(","):
            try:
                net, weights = build(name)
            except Exception as err:  # a model that cannot be built here is reported, not fatal
                log(f"skip {name}: {err}")
                continue
            for size, batches in settings.items():
                colorizer = Colorizer(net, device=dev, size=size)
                colorizer.name = name
                colorizer.colorize(torch.rand(1, 3, size, size).to(placement.device))  # warm-up
                for batch in batches:
                    log(f"{dev} {name} {size} x{batch} ...")
                    result = measure(colorizer, size, batch, args.min_time, max_reps)
                    rows.append(
                        {
                            "device": placement.describe(),
                            "model": name,
                            "weights": weights,
                            "size": size,
                            "batch": batch,
                            **result,
                        }
                    )
    report = {
        "benchmark": "colorize",
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpu_count": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__,
        },
        "quick": args.quick,
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(report, indent=2))
    os.replace(tmp, args.out)
    print(f"{'device':<28} {'model':<11} {'weights':<8} {'size':>5} {'batch':>5} {'img/s':>9} {'s/batch':>9}")
    for r in rows:
        print(
            f"{r['device']:<28} {r['model']:<11} {r['weights']:<8} {r['size']:>5} {r['batch']:>5} "
            f"{r['images_per_s']:>9.2f} {r['seconds_per_batch']:>9.3f}"
        )
    log(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
