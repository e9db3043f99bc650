"""Training of colorizers from folders of images.

A run is a pure function of its options and device: every batch is drawn from a generator seeded with
``(seed, step)``, and a run resumed from its checkpoint continues bit for bit. Loss: Huber on ab (normalised by
110) for every architecture; nets with colour bins (:class:`~chromaflow.core.nets.colour_net.BinnedColorNet`, as
``base``) add the cross-entropy against Gaussian soft-encoded ab targets (Zhang et al. 2016). ``gan=True`` adds a
PatchGAN critic on (L, ab) with a generator-first schedule: the generator alone until ``gan_start``, then the critic
alone for ``critic_warmup`` steps, then both. Simulated user hints (``hints=True``) are points or small patches
carrying the ground truth's mean ab, as in SIGGRAPH17, so that hint-following is learned.

Modules: :mod:`.config` (the options), :mod:`.data` (images), :mod:`.simulated_hints`, :mod:`.losses`,
:mod:`.validation`, :mod:`.trainer` (the run), :mod:`.checkpoints` (saving and export), :mod:`.start` (setting a
run up), :mod:`.feature_cache` and :mod:`.encoder_phases` (``base-v2``: cached encoder features, then fine-tuning).
The names below are the public surface of ``chromaflow.core.training``.
"""

from chromaflow.core.training.checkpoints import atomic_save, export_weights, load_checkpoint
from chromaflow.core.training.config import ARCHS, TrainConfig
from chromaflow.core.training.data import IMAGE_SUFFIXES, ImageBank, list_images, load_rgb, split_files
from chromaflow.core.training.encoder_phases import EncoderTrainer, pretrained_base_v2
from chromaflow.core.training.losses import AB_NORM, PatchCritic, soft_targets
from chromaflow.core.training.simulated_hints import points_hints, sample_hints
from chromaflow.core.training.start import init_from_registry, prepare
from chromaflow.core.training.trainer import StepResult, Trainer, build_net

__all__ = [
    "AB_NORM",
    "ARCHS",
    "IMAGE_SUFFIXES",
    "EncoderTrainer",
    "ImageBank",
    "PatchCritic",
    "StepResult",
    "TrainConfig",
    "Trainer",
    "atomic_save",
    "build_net",
    "export_weights",
    "init_from_registry",
    "list_images",
    "load_checkpoint",
    "load_rgb",
    "points_hints",
    "prepare",
    "pretrained_base_v2",
    "sample_hints",
    "soft_targets",
    "split_files",
]
