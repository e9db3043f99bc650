#!/usr/bin/env python3
"""Turn a ``base`` or ``base-v2`` training checkpoint into a shipped weights file (``core/weights/``).

Chooses the annealing temperature on the run's own held-out split (never on ../shared evaluation data): the
highest-PSNR temperature among those whose colourfulness reaches ``--min-ratio`` of the ground truth's, stores it
in the state_dict under ``temperature``, saves fp16 and prints the SHA-256 (stdout: JSON).
Usage: ``python tools/export_base.py CKPT --data DIR [--out FILE]`` (default: the bundled file of the run's
architecture: ``base-v2.pt``, which ``base`` names, or ``base-v1.pt``).
"""

import argparse
import hashlib
import json
import sys
from pathlib import Path

import torch

from chromaflow.core import training
from chromaflow.core.nets.base import TEMPERATURE_KEY
from chromaflow.core.nets.base_v2 import BaseV2ColorNet, shipped_state
from chromaflow.core.nets.mobilenet_v2 import imagenet_state

REPO = Path(__file__).resolve().parent.parent
BUNDLED = {"base-v2": "core/weights/base-v2.pt", "base": "core/weights/base-v1.pt"}  # by architecture
TEMPERATURES = (0.05, 0.1, 0.15, 0.2, 0.3, 0.38, 0.45, 0.55, 0.7, 1.0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoint", type=Path)
    parser.add_argument("--data", type=Path, required=True, help="the training data folder of the run")
    parser.add_argument("--out", type=Path, default=None, help="default: the bundled file of the run's arch")
    parser.add_argument("--min-ratio", type=float, default=0.55)
    parser.add_argument("--size", type=int, default=0, help="validation crop size (default: the run's)")
    args = parser.parse_args(argv)
    ckpt = training.load_checkpoint(args.checkpoint)
    config = training.TrainConfig(**ckpt["config"])
    if args.out is None:
        if config.arch not in BUNDLED:
            parser.error(f"a {config.arch} checkpoint needs --out (no bundled file is of that architecture)")
        args.out = REPO / BUNDLED[config.arch]
    if args.size:
        config.size = args.size
    files = training.list_images(args.data)
    _, val_files = training.split_files(files, args.data, config.val_fraction)
    val = training.ImageBank.from_files(val_files, config.size, config.max_side)
    # base-v2's checkpoints hold its trainer's two parameter groups (decoder, fine-tuned encoder stages)
    make = training.EncoderTrainer if config.arch == "base-v2" else training.Trainer
    trainer = make(config, val, val, torch.device("cpu"))
    trainer.load_checkpoint(args.checkpoint)
    scores = {t: trainer.validate(temperature=t) for t in TEMPERATURES}
    for t, m in scores.items():
        print(f"T={t}: " + ", ".join(f"{k} {v:.3f}" for k, v in m.items()), file=sys.stderr)
    ok = [t for t, m in scores.items() if m["colourfulness_ratio"] >= args.min_ratio]
    chosen = max(ok, key=lambda t: scores[t]["psnr"]) if ok else min(TEMPERATURES)
    net_state = trainer.net.state_dict()
    if isinstance(trainer.net, BaseV2ColorNet):  # ship what chromaflow trained, never torchvision's tensors
        net_state = shipped_state(trainer.net, imagenet_state(progress=False))
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in net_state.items()}
    state[TEMPERATURE_KEY] = torch.tensor(chosen, dtype=torch.float32)
    training.atomic_save(state, args.out)
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(
        json.dumps(
            {
                "out": str(args.out),
                "sha256": digest,
                "bytes": args.out.stat().st_size,
                "temperature": chosen,
                "step": trainer.step,
                "val_images": len(val_files),
                "validation": {str(t): m for t, m in scores.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
