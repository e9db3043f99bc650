"""Throughput of the device-resident colorize engine (issue 11's engine target) at 854x480 and 1920x1080.

Rows, per device, model (``base`` with its real weights; ``siggraph17`` with random weights when the official ones
are absent: speed does not depend on the values), model input 256 and batch size:

- ``model``: :meth:`Colorizer.predict_ab` on L* already at 256 on the device (the net alone);
- ``engine``: :meth:`DeviceColorizer.chroma`, Y' code values already on the device -> chroma code values on the
  device (L* table, shrink, net, guided upsampling, in-gamut join, 4:2:0); the issue's "frames already on the GPU";
- ``host planes``: :class:`DeviceColorizerStream` fed uint8 Y' planes from host memory and returning chroma planes
  to it (pinned buffers, copy stream, one batch in flight).

Peak device memory per row on CUDA. ``--compile MODE`` wraps the net in ``torch.compile`` (e.g. ``default``,
``reduce-overhead`` for CUDA graphs, ``max-autotune``) to see whether it pays.

    .venv/bin/python benchmarks/engine.py [--devices cpu,cuda] [--models base,siggraph17] [--batches 8,32]
                                          [--resolutions 480p,1080p] [--min-time 2] [--compile MODE] [--quick]

Prints a table and writes benchmarks/results/engine.json.
"""

import argparse
import json
import sys
from collections.abc import Callable
from pathlib import Path

import torch

from chromaflow.core.colorizer import Colorizer
from chromaflow.core.colour import YCbCrFormat
from chromaflow.core.device_engine import ChromaLayout, DeviceColorizer, DeviceColorizerStream

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine
from _harness import measure as throughput
from colorize import build

RESULTS = Path(__file__).resolve().parent / "results"
RESOLUTIONS = {"480p": (480, 854), "1080p": (1080, 1920)}


def _luma(batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(batch, 1, height // 8, width // 8, generator=gen)
    smooth = torch.nn.functional.interpolate(noise, (height, width), mode="bilinear", align_corners=False)
    return (16 + 219 * smooth[:, 0]).round().to(torch.uint8).to(device)


def measure(
    model: str, device: torch.device, res: str, batch: int, min_time: float, compile_mode: str
) -> list[dict]:  # type: ignore[type-arg]
    net, weights = build(model)
    colorizer = Colorizer(net, device=device)
    colorizer.batch_size = batch
    if compile_mode:
        colorizer.net = torch.compile(colorizer.net, mode=compile_mode)
    engine = DeviceColorizer(colorizer)
    layout = ChromaLayout(YCbCrFormat("709", full_range=False, bits=8), (2, 2), "left")
    height, width = RESOLUTIONS[res]
    y = _luma(batch, height, width, device)
    l_small = torch.rand(batch, 1, colorizer.size, colorizer.size, device=device) * 100
    host = [p.numpy() for p in y.cpu()]

    def host_planes() -> None:
        stream = DeviceColorizerStream(engine, layout, batch_size=batch)
        for _ in range(2):  # two batches: the second's upload overlaps the first's compute
            for i, plane in enumerate(host):
                stream.push(i, plane)
        stream.flush()

    cases: dict[str, tuple[Callable[[], object], int]] = {
        "model": (lambda: colorizer.predict_ab(l_small), batch),
        "engine": (lambda: engine.chroma(y, layout), batch),
        "host planes": (host_planes, 2 * batch),
    }
    rows = []
    for name, (fn, items) in cases.items():
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        fps = throughput(fn, items, min_time=min_time, repeats=1, device=device).items_per_s
        row = {
            "path": name,
            "model": model,
            "weights": weights,
            "resolution": res if name != "model" else f"{colorizer.size}x{colorizer.size}",
            "device": str(device),
            "precision": str(colorizer.placement.dtype).removeprefix("torch."),
            "batch": batch,
            "compile": compile_mode or None,
            "frames_per_s": fps,
        }
        if device.type == "cuda":
            row["peak_device_mib"] = torch.cuda.max_memory_allocated(device) / 2**20
        rows.append(row)
        print(f"  {model} {res} {device} batch {batch} {name}: {fps:.1f} frames/s", file=sys.stderr)
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", default="base,siggraph17")
    parser.add_argument("--batches", default="")
    parser.add_argument("--resolutions", default="480p,1080p")
    parser.add_argument("--min-time", type=float, default=2.0)
    parser.add_argument("--compile", default="", metavar="MODE", help="torch.compile mode for the net")
    parser.add_argument("--quick", action="store_true", help="batch 4 on the CPU, 0.5 s per row")
    parser.add_argument("--out", type=Path, default=RESULTS / "engine.json")
    args = parser.parse_args(argv)
    min_time = 0.5 if args.quick else args.min_time
    rows = []
    for dev_name in args.devices.split(","):
        device = torch.device(dev_name)
        default_batches = "8,32" if device.type == "cuda" else ("4" if args.quick else "4,8")
        for model in args.models.split(","):
            for res in args.resolutions.split(","):
                for batch in (int(b) for b in (args.batches or default_batches).split(",")):
                    rows += measure(model, device, res, batch, min_time, args.compile)
    print(
        f"{'path':<12}{'model':<11}{'input':<11}{'device':<8}{'prec':<10}{'batch':>6}{'frames/s':>10}{'MiB':>8}"
    )
    for r in rows:
        mib = f"{r['peak_device_mib']:.0f}" if "peak_device_mib" in r else "-"
        print(
            f"{r['path']:<12}{r['model']:<11}{r['resolution']:<11}{r['device']:<8}{r['precision']:<10}"
            f"{r['batch']:>6}{r['frames_per_s']:>10.1f}{mib:>8}"
        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=1) + "\n")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
