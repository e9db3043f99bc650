"""Colour-conversion throughput (frames/s) at 854x480 and 1920x1080, on the CPU and on CUDA when present.

Includes the in-gamut join to 8-bit 4:2:0 chroma twice: as whole-frame tensor operations (``join_420_eager``) and
as :func:`ycbcr_chroma` runs it, fused (numba on the CPU, ``torch.compile`` on CUDA; ``join_420_fused``).

Writes benchmarks/results/colour.json.
"""

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from chromaflow.core import colour
from chromaflow.core.colorizer import eager_join_chroma, ycbcr_chroma

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = {"480p": (480, 854), "1080p": (1080, 1920)}


def _time(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    fn()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return (time.perf_counter() - start) / repeats


def _cases(rgb: torch.Tensor) -> dict[str, Callable[[], object]]:
    fmt = colour.YCbCrFormat("709", full_range=False, bits=8)
    lab = colour.rgb_to_lab(rgb)
    codes = colour.rgb_to_ycbcr(rgb, fmt)
    l, ab = lab[:, :1], lab[:, 1:]
    return {
        "rgb_to_lab": lambda: colour.rgb_to_lab(rgb),
        "lab_to_rgb": lambda: colour.lab_to_rgb(lab),
        "rgb_to_ycbcr": lambda: colour.rgb_to_ycbcr(rgb, fmt),
        "ycbcr_to_rgb": lambda: colour.ycbcr_to_rgb(codes, fmt),
        "downsample_420": lambda: colour.downsample_chroma(codes[:, 1:]),
        # L* + ab -> in-gamut 8-bit 4:2:0 chroma: the eager tensor join against the fused one ycbcr_chroma runs
        "join_420_eager": lambda: colour.quantize(colour.downsample_chroma(eager_join_chroma(l, ab, fmt)), 8),
        "join_420_fused": lambda: ycbcr_chroma(l, ab, fmt, (2, 2)),
    }


def run(device: torch.device, dtype: torch.dtype, batch: int, repeats: int) -> list[dict[str, object]]:
    rows = []
    for size_name, (h, w) in SIZES.items():
        rgb = torch.rand(batch, 3, h, w, device=device, dtype=dtype)
        for name, fn in _cases(rgb).items():
            seconds = _time(fn, device, repeats)
            rows.append(
                {
                    "op": name,
                    "size": size_name,
                    "device": str(device),
                    "dtype": str(dtype).removeprefix("torch."),
                    "batch": batch,
                    "frames_per_s": batch / seconds,
                }
            )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="fewer repeats")
    args = parser.parse_args()
    repeats = 2 if args.quick else 5
    rows = run(torch.device("cpu"), torch.float32, 4, repeats)
    if torch.cuda.is_available():
        dev = torch.device("cuda")
        rows += run(dev, torch.float32, 16, repeats * 4) + run(dev, torch.float16, 16, repeats * 4)
    print(f"{'op':<16}{'size':<8}{'device':<9}{'dtype':<10}{'frames/s':>10}")
    for r in rows:
        print(f"{r['op']:<16}{r['size']:<8}{r['device']:<9}{r['dtype']:<10}{r['frames_per_s']:>10.1f}")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "colour.json").write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
