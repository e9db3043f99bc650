"""Speed and memory of every colour model through the engine, at its own side, 480p and 1080p.

Each row runs :meth:`Colorizer.colorize_ycbcr` (8-bit Y' planes in, 4:2:0 chroma code values out: L*, the resize to
the model's side, the net, the ab upsampling, the in-gamut join) on a batch of frames already in memory, at the
model's default input side (``chromaflow models list`` shows it). Resolutions: ``side`` (a frame as large as the
model input, the net's own cost), ``480p`` (854x480) and ``1080p`` (1920x1080); batch sizes 1 and 4; the CPU in
fp32 always, CUDA in bf16 and fp16 when present.

Peak memory per row: the process's peak RSS (absolute: what a machine needs to run it) while the model is built and
one batch is coloured, and on CUDA the peak device allocation. Models whose weights are absent from the model cache
get a row that says so; ``--random-weights`` measures them with random weights of their architecture instead (speed
and memory do not depend on the values), marked ``"weights": "random"``.

    .venv/bin/python benchmarks/models.py [--models base,ddcolor-paper-tiny] [--devices cpu,cuda]
                                          [--resolutions side,480p,1080p] [--batches 1,4] [--random-weights]
                                          [--min-time 1] [--merge]

Prints a table and writes benchmarks/results/models.json; the README's Models table is made from it
(tools/perf_table.py). The default run (the models whose weights are present; on this repository's 2-core
machine only the bundled ``base``) takes about a minute.
"""

import argparse
import gc
import json
import sys
from pathlib import Path
from typing import Any

import torch
from torch import nn

from chromaflow.core import registry
from chromaflow.core.colorizer import Colorizer
from chromaflow.core.colour import YCbCrFormat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import PeakMemory, machine
from _harness import measure as throughput

RESULTS = Path(__file__).resolve().parent / "results"
RESOLUTIONS = {"480p": (480, 854), "1080p": (1080, 1920)}
FMT = YCbCrFormat("709", full_range=False, bits=8)


def colour_models() -> list[str]:
    return [n for n in registry.names() if registry.get_spec(n).kind == "colorizer"]


def facts(name: str) -> dict[str, Any]:
    """What the README's Models table shows of a model besides speed: architecture, side, parameters, licence."""
    spec = registry.get_spec(name)
    with torch.device("meta"):  # shapes only: counting parameters allocates nothing
        params = sum(p.numel() for p in spec.builder.build().parameters())
    path = registry.cached_path(name)
    return {
        "model": name,
        "arch": spec.arch,
        "input_size": spec.input_size,
        "parameters_m": round(params / 1e6, 1),
        "licence": spec.licence,
        "description": spec.description,
        "present": path.is_file(),
    }


def _net(name: str, random_weights: bool) -> tuple[nn.Module | str, str] | None:
    """The model to time (its name, or a random-weight net of its architecture) and its weights' kind."""
    if registry.is_present(name):
        return name, "bundled" if registry.get_spec(name).bundled else "official"
    if not random_weights:
        return None
    torch.manual_seed(0)
    return registry.get_spec(name).builder.build().eval(), "random"


def _planes(batch: int, height: int, width: int, device: torch.device) -> torch.Tensor:
    """Smooth 8-bit Y' planes (content does not change the cost, but flat frames would flatter the join)."""
    gen = torch.Generator().manual_seed(0)
    noise = torch.rand(batch, 1, max(1, height // 8), max(1, width // 8), generator=gen)
    smooth = torch.nn.functional.interpolate(noise, (height, width), mode="bilinear", align_corners=False)
    return (16 + 219 * smooth[:, 0]).round().to(torch.uint8).to(device)


def measure(
    name: str,
    device: torch.device,
    precision: str,
    res: str,
    batch: int,
    random_weights: bool,
    min_time: float,
) -> dict[str, Any]:
    spec = registry.get_spec(name)
    row: dict[str, Any] = {
        "model": name,
        "device": str(device),
        "precision": precision,
        "resolution": res,
        "batch": batch,
    }
    chosen = _net(name, random_weights)
    assert chosen is not None, "absent weights are reported before measuring"
    model, weights = chosen
    height, width = (spec.input_size, spec.input_size) if res == "side" else RESOLUTIONS[res]
    y = _planes(batch, height, width, device)
    with PeakMemory(cuda=device.type == "cuda") as mem:
        colorizer = Colorizer(
            model, device=device, precision=precision, size=spec.input_size, batch_size=batch
        )
        colorizer.colorize_ycbcr(y, FMT, factors=(2, 2))  # one batch: what it takes to colour a frame
    rate = throughput(
        lambda: colorizer.colorize_ycbcr(y, FMT, factors=(2, 2)),
        batch,
        min_time=min_time,
        repeats=1,
        warmup=0,
        device=device,
    )
    gc.collect()
    if device.type == "cuda":
        torch.cuda.empty_cache()
    row.update(
        weights=weights,
        size=f"{width}x{height}",
        frames_per_s=round(rate.items_per_s, 3),
        peak_rss_mib=None if mem.host_peak_mib is None else round(mem.host_peak_mib),
        peak_device_mib=None if mem.device_peak_mib is None else round(mem.device_peak_mib),
    )
    print(
        f"  {name} {res} {device} {precision} batch {batch}: {rate.items_per_s:.2f} frames/s", file=sys.stderr
    )
    return row


def _precisions(device: torch.device, wanted: str) -> list[str]:
    if device.type != "cuda":
        return ["fp32"]
    found = [p for p in wanted.split(",") if p != "bf16" or torch.cuda.is_bf16_supported()]
    return found or ["fp16"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="", help="comma-separated names (default: every colour model)")
    parser.add_argument("--devices", default="cpu,cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--precisions", default="bf16,fp16", help="on CUDA (the CPU runs fp32)")
    parser.add_argument("--resolutions", default="side,480p,1080p")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument(
        "--random-weights", action="store_true", help="time absent models with random weights"
    )
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per row (at least one batch)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=RESULTS / "models.json")
    parser.add_argument("--merge", action="store_true", help="keep --out's rows of the models not run now")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    names = [n.strip() for n in args.models.split(",") if n.strip()] or colour_models()
    for name in names:
        if registry.get_spec(name).kind != "colorizer":
            parser.error(f"{name} is not a colour model; choose from {', '.join(colour_models())}")
    rows: list[dict[str, Any]] = []
    for name in names:
        if not registry.is_present(name) and not args.random_weights:
            rows.append({"model": name, "weights": "absent"})  # one row says it
            continue
        for dev_name in args.devices.split(","):
            device = torch.device(dev_name)
            for precision in _precisions(device, args.precisions):
                for res in args.resolutions.split(","):
                    for batch in (int(b) for b in args.batches.split(",")):
                        rows.append(
                            measure(name, device, precision, res, batch, args.random_weights, args.min_time)
                        )
    print(
        f"{'model':<20}{'weights':<9}{'device':<8}{'prec':<6}{'frame':<11}{'batch':>6}{'frames/s':>10}{'RSS MiB':>9}{'dev MiB':>9}"
    )
    for r in rows:
        if r["weights"] == "absent":
            print(f"{r['model']:<20}weights absent (chromaflow models download {r['model']})")
            continue
        dev = "-" if r["peak_device_mib"] is None else str(r["peak_device_mib"])
        print(
            f"{r['model']:<20}{r['weights']:<9}{r['device']:<8}{r['precision']:<6}{r['size']:<11}{r['batch']:>6}"
            f"{r['frames_per_s']:>10.2f}{r['peak_rss_mib']!s:>9}{dev:>9}"
        )
    result = {"machine": machine(), "models": [facts(n) for n in names], "rows": rows}
    if args.merge and args.out.is_file():  # earlier runs' other models stay (same machine assumed)
        earlier = json.loads(args.out.read_text())
        kept = [m for m in earlier.get("models", []) if m["model"] not in names]
        order = {n: i for i, n in enumerate(colour_models())}
        result["models"] = sorted(kept + result["models"], key=lambda m: order.get(m["model"], len(order)))
        result["rows"] = [r for r in earlier.get("rows", []) if r["model"] not in names] + rows
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
