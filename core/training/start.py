"""How a run starts: its images found and split, its net fresh or fine-tuned from a registered model or a file."""

import logging
from pathlib import Path

import torch
from torch import nn

from chromaflow.core import registry
from chromaflow.core.errors import UsageError
from chromaflow.core.nets import base_v2
from chromaflow.core.nets.builders import builder_for
from chromaflow.core.training import encoder_phases
from chromaflow.core.training.config import TrainConfig
from chromaflow.core.training.data import ImageBank, list_images, split_files
from chromaflow.core.training.trainer import Trainer

log = logging.getLogger(__name__)


def init_from_registry(name: str, arch_hint: str = "base") -> tuple[str, nn.Module]:
    """The architecture and net (training mode) of a registered colorizer, or of a weights file of ``arch_hint``,
    with its weights, to fine-tune from."""
    if Path(name).is_file():
        builder = builder_for(arch_hint, "colorizer")
        return builder.arch, builder.load(name).train()
    return registry.get_spec(name).arch, registry.load(name, kind="colorizer").train()


def prepare(
    data: Path,
    config: TrainConfig,
    device: torch.device,
    val: Path | None = None,
    init: str | None = None,
    progress: bool = True,
) -> Trainer:
    """Build a Trainer from a data folder (and optional validation folder or registered model to start from).
    ``base-v2`` gets an :class:`~chromaflow.core.training.encoder_phases.EncoderTrainer`, on the ImageNet encoder
    unless ``init`` gives a trained net."""
    files = list_images(data)
    if val is not None:
        train_files, val_files = files, list_images(val)
    else:
        train_files, val_files = split_files(files, data, config.val_fraction)
    log.info("%d training and %d validation images", len(train_files), len(val_files))
    train_bank = ImageBank.from_files(train_files, config.size, config.max_side)
    val_bank = ImageBank.from_files(val_files, config.size, config.max_side) if val_files else None
    net = None
    if init:
        arch, net = init_from_registry(init, config.arch)
        if arch != config.arch:
            raise UsageError(f"--init {init} is a {arch} model; pass --arch {arch}")
        config.init = init
    if config.arch == base_v2.ARCH:
        if net is None:
            net = encoder_phases.pretrained_base_v2(config.width, progress)
        return encoder_phases.EncoderTrainer(config, train_bank, val_bank, device, net, progress)
    return Trainer(config, train_bank, val_bank, device, net)
