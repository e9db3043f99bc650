"""`chromaflow bench`: how fast the engine colorizes on this machine (the repository's benchmarks/ go further)."""

import argparse
import json
import time
from typing import TYPE_CHECKING, Any

from chromaflow.core.errors import UsageError
from chromaflow.core.nets import builders

if TYPE_CHECKING:
    import torch

    from chromaflow.core.colorizer import Colorizer


def _parse_ints(text: str, what: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v]
    except ValueError:
        raise UsageError(f"{what} must be comma-separated whole numbers, as in 1,8; got {text!r}") from None
    if not values or min(values) < 1:
        raise UsageError(f"{what} must be positive whole numbers, as in 1,8; got {text!r}")
    return values


def _parse_frame_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    if len(parts) != 2 or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise UsageError(f"--frame-size must look like 854x480, got {text!r}")
    return int(parts[0]), int(parts[1])


def _seconds_per_step(colorizer: "Colorizer", l_star: "torch.Tensor", repeats: int) -> float:
    import torch

    device = colorizer.placement.device

    def step() -> None:
        colorizer.colorize_luma(l_star)
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    step()  # warm-up: allocations, kernel selection
    start = time.perf_counter()
    for _ in range(repeats):
        step()
    return (time.perf_counter() - start) / repeats


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Frames/s of the whole colorization step (L* in, RGB out) for each batch size, frames already in memory."""
    import torch

    from chromaflow.core.colorizer import Colorizer
    from chromaflow.core.colour import rgb_to_lab

    width, height = _parse_frame_size(args.frame_size)
    rows = []
    for batch in _parse_ints(args.batch, "--batch"):
        colorizer = Colorizer(
            args.model, args.device, args.precision, size=args.size, arch=args.arch, batch_size=batch
        )
        device = colorizer.placement.device
        gen = torch.Generator().manual_seed(0)
        frames = torch.rand(batch, 3, height, width, generator=gen).to(device)
        l_star = rgb_to_lab(frames)[:, :1]

        seconds = _seconds_per_step(colorizer, l_star, args.repeats)
        rows.append(
            {
                "model": args.model,
                "size": colorizer.size if len(colorizer.sizes) == 1 else "+".join(map(str, colorizer.sizes)),
                "frame": f"{width}x{height}",
                "batch": batch,
                "device": str(device),
                "precision": str(colorizer.placement.dtype).removeprefix("torch."),
                "frames_per_s": round(batch / seconds, 2),
            }
        )
    return rows


def run(args: argparse.Namespace) -> int:
    if args.repeats < 1:
        raise UsageError("--repeats must be at least 1")
    rows = measure(args)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'model':<12}{'size':>8}{'frame':>11}{'batch':>6}  {'device':<8}{'precision':<10}{'frames/s':>9}")
    for r in rows:
        print(
            f"{r['model']:<12}{r['size']!s:>8}{r['frame']:>11}{r['batch']:>6}  {r['device']:<8}"
            f"{r['precision']:<10}{r['frames_per_s']:>9.2f}"
        )
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "bench",
        help="measure colorization speed on this machine",
        description="Measure the colorization engine's frames/s (luma in, colour out, frames in memory) on "
        "this machine. The repository's benchmarks/ folder measures everything else (make bench).",
    )
    parser.add_argument(
        "--model", default="base", help="registry name, .pt file, or two as A+B (a mix) (default: base)"
    )
    parser.add_argument(
        "--arch",
        default=None,
        help=f"architecture of a .pt --model file: {', '.join(builders.archs('colorizer'))}",
    )
    parser.add_argument(
        "--size", type=int, default=None, help="model input side (default: the model's own, 256 for base)"
    )
    parser.add_argument(
        "--frame-size", default="854x480", help="WIDTHxHEIGHT of the frames (default 854x480)"
    )
    parser.add_argument("--batch", default="1,8", help="batch sizes, comma-separated (default 1,8)")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per batch size (default 3)")
    parser.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")
    parser.add_argument("--precision", default=None, help="auto, fp32, fp16 or bf16")
    parser.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    parser.set_defaults(func=run)
