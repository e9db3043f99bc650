"""`chromaflow train colorizer`: train or fine-tune a colorization model on a folder of images."""

import argparse
import json
import logging
import sys
from pathlib import Path

from chromaflow.core.device import resolve_device, seed_everything
from chromaflow.core.errors import OutputError, UsageError
from chromaflow.core.training.config import ARCHS

log = logging.getLogger(__name__)
_NEXT_TO_OUT = Path("\0next-to-out")  # --feature-cache without a folder


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("train", help="train colorization models")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND")
    kinds.required = True
    p = kinds.add_parser("colorizer", help="train a colorizer from a folder tree of images")
    p.add_argument(
        "--data", type=Path, required=True, help="folder tree of colour images (any format OpenCV reads)"
    )
    p.add_argument("--out", type=Path, required=True, help="weights file to write (plain state_dict, fp16)")
    p.add_argument("--arch", default="base", choices=ARCHS)
    p.add_argument("--size", type=int, default=128, help="training crop size in pixels (multiple of 16)")
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--batch", type=int, default=12)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument(
        "--gan", action="store_true", help="add a PatchGAN critic (generator first, then critic, both)"
    )
    p.add_argument("--hints", action="store_true", help="simulate user colour hints during training")
    p.add_argument(
        "--init",
        default=None,
        metavar="MODEL",
        help="start from a registered model, or a weights file of --arch (fine-tuning)",
    )
    p.add_argument(
        "--resume", type=Path, default=None, metavar="CKPT", help="continue a run from its checkpoint"
    )
    p.add_argument(
        "--checkpoint",
        type=Path,
        default=None,
        help="checkpoint file written during the run (default: OUT with .ckpt)",
    )
    p.add_argument(
        "--val", type=Path, default=None, help="validation folder (default: 5%% held out of --data)"
    )
    p.add_argument("--val-every", type=int, default=250)
    p.add_argument("--device", default=None, help="auto, cpu, cuda or cuda:N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--rebalance",
        type=float,
        default=0.0,
        help="class rebalancing of the colour-bin loss (Zhang et al.'s lambda, e.g. 0.5; 0: off)",
    )
    p.add_argument(
        "--width", type=int, default=None, help="channel width of base (default 24) or base-v2's decoder (32)"
    )
    p.add_argument(
        "--feature-cache",
        type=Path,
        nargs="?",
        const=_NEXT_TO_OUT,
        default=None,
        metavar="DIR",
        help="base-v2: cache the frozen encoder's features of augmented crops in DIR (default: OUT's name with "
        ".features) and train on them",
    )
    p.add_argument("--crops-per-image", type=int, default=8, help="base-v2: augmented crops cached per image")
    p.add_argument(
        "--finetune-steps",
        type=int,
        default=0,
        help="base-v2: the last N of --steps also train the encoder's stride-32 stages",
    )
    p.add_argument("--finetune-lr", type=float, default=5e-5, help="base-v2: their learning rate")
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="CPU threads for torch and OpenCV (0: their defaults; 1 is fastest on a busy machine)",
    )
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from chromaflow.core import training

    if args.size % 16 or args.size < 32:
        raise UsageError(f"--size {args.size}: use a multiple of 16 of at least 32")
    if args.steps < 1 or args.batch < 1 or args.lr <= 0:
        raise UsageError("--steps and --batch must be positive and --lr greater than zero")
    out: Path = args.out
    if not out.parent.is_dir():
        raise OutputError(f"folder {out.parent} does not exist; create it or choose another --out")
    device = resolve_device(args.device)
    if args.threads > 0:
        import cv2
        import torch

        torch.set_num_threads(args.threads)
        cv2.setNumThreads(args.threads)
    seed_everything(args.seed)
    ckpt_path: Path = args.checkpoint or out.with_suffix(".ckpt")
    encoder_options = args.feature_cache is not None or args.finetune_steps > 0
    if encoder_options and args.arch != "base-v2":
        raise UsageError("--feature-cache and --finetune-steps are for --arch base-v2")
    cache = out.with_suffix(".features") if args.feature_cache == _NEXT_TO_OUT else args.feature_cache
    config = training.TrainConfig(
        arch=args.arch,
        width=args.width if args.width is not None else _default_width(args.arch),
        size=args.size,
        steps=args.steps,
        batch=args.batch,
        lr=args.lr,
        gan=args.gan,
        hints=args.hints,
        rebalance=args.rebalance,
        seed=args.seed,
        val_every=args.val_every,
        feature_cache=str(cache or ""),
        crops_per_image=args.crops_per_image,
        finetune_steps=args.finetune_steps,
        finetune_lr=args.finetune_lr,
    )
    if args.resume is not None:
        saved = training.load_checkpoint(args.resume)["config"]
        saved["steps"] = args.steps  # a resumed run may be extended
        config = training.TrainConfig(**saved)
    trainer = training.prepare(
        args.data,
        config,
        device,
        val=args.val,
        init=args.init if args.resume is None else None,
        progress=not args.no_progress,
    )
    if args.resume is not None:
        trainer.load_checkpoint(args.resume)
    print(
        f"training {config.arch} on {device} for {config.steps} steps "
        f"({len(trainer.train_bank.images)} images)",
        file=sys.stderr,
    )
    trainer.run(checkpoint=ckpt_path, progress=not args.no_progress)
    training.export_weights(trainer.net, out)
    metrics = trainer.validate()
    print(json.dumps({"out": str(out), "steps": trainer.step, "checkpoint": str(ckpt_path), **metrics}))
    return 0


def _default_width(arch: str) -> int:
    from chromaflow.core.nets import base, base_v2

    return base_v2.DEFAULT_WIDTH if arch == base_v2.ARCH else base.DEFAULT_WIDTH
