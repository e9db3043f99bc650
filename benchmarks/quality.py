#!/usr/bin/env python3
"""Image colorization quality on CBSD68: PSNR, SSIM and colourfulness of ``base`` against the gray baseline.

The gray input is the L* plane of each ground-truth photo. ``base`` runs at ``--size`` (default 256) on the
whole image, its ab is upsampled bilinearly to full resolution and joined with the full-resolution L*. With
``--hints N`` (default 5) it also runs with N hint points per image: 3x3 squares at seeded random positions of the
net's input grid, carrying the ground truth's mean ab there (SIGGRAPH17-style).
Prints a table (stderr) and writes JSON to benchmarks/results/quality.json (stdout: the JSON path).

``--weights`` is a registry name (default ``base``; ``base-v1`` for the first one) or a weights file of ``--arch``.
Targets (issue 19): PSNR >= gray + 1.5 dB with colourfulness >= 60% of the ground truth's; with 5 hints PSNR >=
gray + 4 dB.

``--model NAME[,NAME...]`` measures registry models instead (or mixes ``A+B``), each through the engine every host
uses (:class:`~chromaflow.core.colorizer.Colorizer` at the model's own side, or ``--size``; in-gamut join), on the
CPU: PSNR, SSIM and colourfulness against the same gray baseline. A model whose weights are not in the model cache
is reported as "weights absent" (get them with ``chromaflow models download NAME``). Results are merged by model
name into benchmarks/results/quality_models.json, so models measured in separate runs share one table.
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from chromaflow.core import registry
from chromaflow.core.colorizer import Colorizer
from chromaflow.core.colour import lab_to_rgb, rgb_to_lab
from chromaflow.core.metrics import colorfulness, psnr, ssim
from chromaflow.core.mixing import members_of
from chromaflow.core.training import points_hints

REPO = Path(__file__).resolve().parent.parent


def to_uint8(rgb: torch.Tensor) -> np.ndarray:
    return (rgb.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


@torch.no_grad()
def colorize(net: torch.nn.Module, lab: torch.Tensor, size: int, hints: int, seed: int) -> torch.Tensor:
    """Full-resolution sRGB (3, H, W) from the L* of ``lab`` (3, H, W), optionally with ground-truth hints."""
    l_full = lab[None, :1]
    small = F.interpolate(lab[None], size=(size, size), mode="area")
    l = small[:, :1]
    if hints:
        hint, mask = points_hints(small[:, 1:], hints, np.random.default_rng(seed))
    else:
        hint, mask = torch.zeros_like(small[:, 1:]), torch.zeros_like(l)
    ab = net(l, hint, mask).float()
    ab = F.interpolate(ab, size=l_full.shape[2:], mode="bilinear", align_corners=False)
    return lab_to_rgb(torch.cat((l_full, ab), dim=1))[0]


def evaluate(weights: str, data: Path, size: int, hints: int, arch: str | None = None) -> dict:
    net = registry.load(weights, arch=arch, kind="colorizer")
    files = sorted(data.glob("*.png"))
    if not files:
        raise SystemExit(f"no PNG files in {data}")
    rows: dict[str, list[tuple[float, float, float]]] = {
        "gt": [],
        "gray": [],
        "base": [],
        f"base+{hints}hints": [],
    }
    started = time.monotonic()
    for i, f in enumerate(files):
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        rgb = torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1).float() / 255
        gt8 = to_uint8(rgb)
        lab = rgb_to_lab(rgb)
        gray = lab_to_rgb(torch.cat((lab[:1], torch.zeros_like(lab[1:])), dim=0))
        outputs = {"gray": gray, "base": colorize(net, lab, size, 0, i)}
        if hints:
            outputs[f"base+{hints}hints"] = colorize(net, lab, size, hints, i)
        rows["gt"].append((float("inf"), 1.0, colorfulness(gt8)))
        for name, out in outputs.items():
            o8 = to_uint8(out)
            rows[name].append((psnr(o8, gt8), ssim(o8, gt8, channel_axis=-1), colorfulness(o8)))
    seconds = time.monotonic() - started
    summary = {}
    for name, vals in rows.items():
        if not vals:
            continue
        arr = np.array(vals)
        summary[name] = {
            "psnr": float(arr[:, 0].mean()) if name != "gt" else None,
            "ssim": float(arr[:, 1].mean()),
            "colorfulness": float(arr[:, 2].mean()),
        }
    gt_cf = summary["gt"]["colorfulness"]
    gray_psnr = summary["gray"]["psnr"]
    for name in summary:
        if name != "gt":
            summary[name]["colorfulness_ratio"] = summary[name]["colorfulness"] / gt_cf
            summary[name]["psnr_gain_db"] = summary[name]["psnr"] - gray_psnr
    targets = {
        "auto_psnr_gain>=1.5": summary["base"]["psnr_gain_db"] >= 1.5,
        "auto_colorfulness_ratio>=0.6": summary["base"]["colorfulness_ratio"] >= 0.6,
    }
    if hints:
        targets[f"{hints}hints_psnr_gain>=4.0"] = summary[f"base+{hints}hints"]["psnr_gain_db"] >= 4.0
    return {
        "dataset": str(data),
        "images": len(files),
        "size": size,
        "hints": hints,
        "weights": weights,
        "temperature": getattr(net, "temperature", None),
        "seconds": seconds,
        "machine": f"{platform.machine()} CPU, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "results": summary,
        "targets_met": targets,
    }


def _absent(name: str) -> str | None:
    """The first member of ``name`` (a model or a mix) whose weights are not in the cache, or None."""
    for member in members_of(name):
        spec = registry.MODELS.get(str(member).strip().lower())
        if spec is not None and not registry.is_present(spec.name):
            return spec.name
    return None


def evaluate_models(names: list[str], data: Path, size: int | None) -> dict:
    """Each model through the Colorizer on the images of ``data``: mean PSNR, SSIM, colourfulness (and vs gray)."""
    files = sorted(data.glob("*.png"))
    if not files:
        raise SystemExit(f"no PNG files in {data}")
    images = []
    for f in files:
        bgr = cv2.imread(str(f), cv2.IMREAD_COLOR)
        images.append(torch.from_numpy(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)).permute(2, 0, 1).float() / 255)
    gt8 = [to_uint8(rgb) for rgb in images]
    gt_cf = float(np.mean([colorfulness(g) for g in gt8]))
    gray_psnr = float(
        np.mean(
            [
                psnr(to_uint8(lab_to_rgb(torch.cat((lab[:1], torch.zeros_like(lab[1:]))))), g)
                for lab, g in zip((rgb_to_lab(rgb) for rgb in images), gt8, strict=True)
            ]
        )
    )
    results: dict[str, dict] = {}
    for name in names:
        missing = _absent(name)
        if missing is not None:
            results[name] = {"weights": "absent", "missing": missing}
            print(f"{name}: weights absent (chromaflow models download {missing})", file=sys.stderr)
            continue
        colorizer = Colorizer(name, device="cpu", size=size)
        started = time.monotonic()
        scores = []
        for rgb, g in zip(images, gt8, strict=True):
            o8 = to_uint8(colorizer.colorize(rgb))
            scores.append((psnr(o8, g), ssim(o8, g, channel_axis=-1), colorfulness(o8)))
        arr = np.array(scores)
        results[name] = {
            "weights": "present",
            "side": "+".join(map(str, colorizer.sizes)),
            "psnr": float(arr[:, 0].mean()),
            "psnr_gain_db": float(arr[:, 0].mean()) - gray_psnr,
            "ssim": float(arr[:, 1].mean()),
            "colorfulness": float(arr[:, 2].mean()),
            "colorfulness_ratio": float(arr[:, 2].mean()) / gt_cf,
            "seconds": round(time.monotonic() - started, 1),
        }
        r = results[name]
        print(
            f"{name}: PSNR {r['psnr']:.2f} dB ({r['psnr_gain_db']:+.2f} vs gray), SSIM {r['ssim']:.4f}, "
            f"colourfulness {r['colorfulness_ratio']:.0%} of ground truth",
            file=sys.stderr,
        )
    return {
        "dataset": str(data),
        "images": len(files),
        "gray_psnr": gray_psnr,
        "gt_colorfulness": gt_cf,
        "machine": f"{platform.machine()} CPU, torch {torch.__version__}, {torch.get_num_threads()} threads",
        "models": results,
    }


def _write(path: Path, report: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(report, indent=2) + "\n")
    tmp.replace(path)
    print(str(path))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weights", default="base", help="registry name, or a weights file (default: base)")
    parser.add_argument("--arch", default=None, help="the architecture of a --weights file (base, base-v2)")
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared/data/images-dev/CBSD68")
    parser.add_argument(
        "--size", type=int, default=None, help="model input side (default: 256 for base, each --model's own)"
    )
    parser.add_argument("--hints", type=int, default=5)
    parser.add_argument(
        "--model", default="", metavar="NAME[,NAME]", help="registry models or A+B mixes, through the engine"
    )
    parser.add_argument(
        "--out", type=Path, default=None, help="default: results/quality.json (--model: quality_models.json)"
    )
    parser.add_argument("--threads", type=int, default=0)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.model:
        out = args.out or REPO / "benchmarks/results/quality_models.json"
        report = evaluate_models(
            [m.strip() for m in args.model.split(",") if m.strip()], args.data, args.size
        )
        if out.is_file():  # earlier runs' models stay; this run's replace theirs
            report["models"] = {**json.loads(out.read_text()).get("models", {}), **report["models"]}
        _write(out, report)
        return 0
    args.out = args.out or REPO / "benchmarks/results/quality.json"
    report = evaluate(args.weights, args.data, args.size or 256, args.hints, args.arch)
    print(f"{'method':<14}{'PSNR dB':>9}{'gain':>7}{'SSIM':>8}{'colourf.':>10}{'ratio':>7}", file=sys.stderr)
    for name, r in report["results"].items():
        p = "" if r["psnr"] is None else f"{r['psnr']:.2f}"
        g = f"{r['psnr_gain_db']:+.2f}" if "psnr_gain_db" in r else ""
        ratio = f"{r['colorfulness_ratio']:.2f}" if "colorfulness_ratio" in r else ""
        print(f"{name:<14}{p:>9}{g:>7}{r['ssim']:>8.4f}{r['colorfulness']:>10.2f}{ratio:>7}", file=sys.stderr)
    print(f"targets: {report['targets_met']}", file=sys.stderr)
    _write(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
