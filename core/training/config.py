"""The options of one training run (all of them are stored in its checkpoint)."""

from dataclasses import dataclass, field
from typing import Any

from chromaflow.core.nets.builders import archs, builder_for

# the architectures `chromaflow train colorizer --arch` accepts
ARCHS = tuple(a for a in archs("colorizer") if builder_for(a).trainable)


@dataclass
class TrainConfig:
    """Options of one training run (all of them are stored in the checkpoint)."""

    arch: str = "base"
    width: int = 24  # base; base-v2: its decoder (the CLI gives it 32)
    size: int = 128
    steps: int = 1000
    batch: int = 12
    lr: float = 1e-3
    weight_decay: float = 1e-4
    gan: bool = False
    gan_start: int = 0  # 0: half of the steps
    critic_warmup: int = 0  # 0: a tenth of the steps
    gan_weight: float = 0.01
    hints: bool = True
    hint_free_fraction: float = 0.5
    huber_weight: float = 1.0
    rebalance: float = 0.0  # 0: off; else Zhang et al.'s lambda (0.5): rare colours weigh more in the CE
    seed: int = 0
    val_every: int = 250
    val_fraction: float = 0.05
    checkpoint_every: int = 250
    max_side: int = 512
    init: str = ""
    # base-v2 (chromaflow.core.training.encoder_phases): cached encoder features, then the encoder's last stages
    feature_cache: str = ""  # folder of cached features ("": compute the encoder every step)
    crops_per_image: int = 8  # augmented crops cached per training image
    finetune_steps: int = 0  # the last steps of the run also train the encoder's stride-32 stages
    finetune_lr: float = 5e-5  # their learning rate (peak; warm-up and cosine over the fine-tune steps)
    extra: dict[str, Any] = field(default_factory=dict)
