"""Training ``base-v2`` on a CPU: decoder first on cached encoder features, then the encoder's last stages.

Why two phases: the ImageNet encoder already knows what things are; what it lacks is colour. Training only the
decoder (plus the stride-32 stages run from the cached stride-16 map, frozen) costs a fraction of a full step, so a
2-core CPU gets through thousands of steps; the last ``finetune_steps`` of the run then also train the encoder's
stride-32 stages (:data:`~chromaflow.core.nets.base_v2.FINETUNE_FROM` onwards) at ``finetune_lr`` (linear warm-up,
cosine decay), still on the cache, while the decoder's rate keeps following :meth:`Trainer.lr_at`. The encoder's
batch-norm statistics never change (see :meth:`BaseV2ColorNet.train`).

Batches stay a pure function of ``(seed, step)`` (crop indices and hints drawn from that generator), and the
optimiser holds both parameter groups from the start, so a run resumed from its checkpoint continues bit for bit,
in either phase. ``--gan``, ``--hints`` and ``--rebalance`` work as for ``base`` (:class:`Trainer`).
"""

import math
from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from chromaflow.core.colour import rgb_to_lab
from chromaflow.core.errors import UsageError
from chromaflow.core.nets.base_v2 import FINETUNE_FROM, BaseV2ColorNet, build_base_v2
from chromaflow.core.nets.mobilenet_v2 import REGISTRY_NAME, imagenet_state, load_imagenet
from chromaflow.core.training.config import TrainConfig
from chromaflow.core.training.data import ImageBank
from chromaflow.core.training.feature_cache import FeatureCache, open_or_build
from chromaflow.core.training.simulated_hints import sample_hints
from chromaflow.core.training.trainer import StepResult, Trainer

ENCODER_MODEL = REGISTRY_NAME  # the registry entry of the ImageNet weights


def pretrained_encoder(net: BaseV2ColorNet, progress: bool = True) -> BaseV2ColorNet:
    """Fill ``net``'s encoder with torchvision's ImageNet MobileNetV2 (:func:`imagenet_state`: fetched into the
    model cache first when absent)."""
    load_imagenet(net.encoder, imagenet_state(progress))
    return net


def pretrained_base_v2(width: int, progress: bool = True) -> BaseV2ColorNet:
    """A fresh ``base-v2`` net (training mode) on the ImageNet encoder."""
    return pretrained_encoder(build_base_v2(width), progress)


class EncoderTrainer(Trainer):
    """A :class:`Trainer` for ``base-v2``: optional feature cache and a final encoder fine-tuning phase."""

    net: BaseV2ColorNet

    def __init__(
        self,
        config: TrainConfig,
        train_bank: ImageBank,
        val_bank: ImageBank | None,
        device: torch.device,
        net: nn.Module | None = None,
        progress: bool = True,
    ) -> None:
        super().__init__(config, train_bank, val_bank, device, net)
        if not isinstance(self.net, BaseV2ColorNet):
            raise UsageError(f"the encoder phases are for --arch base-v2, not {config.arch}")
        if not 0 <= config.finetune_steps <= config.steps:
            raise UsageError(f"--finetune-steps {config.finetune_steps}: use 0 to --steps ({config.steps})")
        if config.crops_per_image < 1 or config.finetune_lr < 0:
            raise UsageError("--crops-per-image must be positive and --finetune-lr not negative")
        tuned = [p for block in self.net.encoder.features[FINETUNE_FROM:] for p in block.parameters()]
        decoder = [p for n, p in self.net.named_parameters() if not n.startswith("encoder.")]
        self.opt = torch.optim.AdamW(
            [{"params": decoder}, {"params": tuned}], lr=config.lr, weight_decay=config.weight_decay
        )
        self.progress = progress
        self._cache: FeatureCache | None = None
        self._maps: dict[int, Tensor] | None = None  # the cached maps of the batch being trained on

    # phases --------------------------------------------------------------------------------------------------
    def finetuning(self, step: int) -> bool:
        """Whether ``step`` is in the final phase that also trains the encoder's stride-32 stages."""
        return self.config.finetune_steps > 0 and step >= self.config.steps - self.config.finetune_steps

    def finetune_lr_at(self, step: int) -> float:
        """The encoder's rate: 0 before its phase, then a warm-up over 5% of it and a cosine decay to 5%."""
        if not self.finetuning(step):
            return 0.0
        total = self.config.finetune_steps
        k = step - (self.config.steps - total)
        warm = max(1, total // 20)
        if k < warm:
            return self.config.finetune_lr * (k + 1) / warm
        t = (k - warm) / max(1, total - warm)
        return self.config.finetune_lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    def set_lr(self, step: int) -> None:
        decoder, encoder = self.opt.param_groups
        decoder["lr"] = self.lr_at(step)
        encoder["lr"] = self.finetune_lr_at(step)

    def train_step(self) -> StepResult:
        self.net.freeze_encoder(FINETUNE_FROM if self.finetuning(self.step) else None)
        return super().train_step()

    # data ----------------------------------------------------------------------------------------------------
    @property
    def cache(self) -> FeatureCache | None:
        """The feature cache (built on first use), or None when the run has none."""
        if self._cache is None and self.config.feature_cache:
            self._cache = open_or_build(
                Path(self.config.feature_cache),
                self.net,
                self.train_bank,
                self.config.crops_per_image,
                self.config.seed,
                self.device,
                progress=self.progress,
            )
        return self._cache

    def batch_at(self, step: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """As :meth:`Trainer.batch_at`, but from the cache when there is one (its crops, and their maps kept for
        :meth:`net_logits`)."""
        cache = self.cache
        if cache is None:
            self._maps = None
            return super().batch_at(step)
        rng = np.random.default_rng([self.config.seed, step])
        rgb, maps = cache.batch(rng.integers(len(cache), size=self.config.batch))
        lab = rgb_to_lab(rgb)
        l, ab = lab[:, :1], lab[:, 1:]
        if self.config.hints:
            hint, mask = sample_hints(ab, rng, self.config.hint_free_fraction)
        else:
            hint, mask = torch.zeros_like(ab), torch.zeros_like(l)
        self._maps = {s: m.to(self.device) for s, m in maps.items()}
        return l.to(self.device), hint.to(self.device), mask.to(self.device), ab.to(self.device)

    def net_logits(self, l: Tensor, hint: Tensor, mask: Tensor) -> Tensor:
        maps, self._maps = self._maps, None
        if maps is None:
            return self.net.logits(l, hint, mask)
        maps[32] = self.net.encoder.run_blocks(maps[16], FINETUNE_FROM, (32,))[32]
        return self.net.decode_features(maps, l, hint, mask)
