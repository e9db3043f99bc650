"""The DFDC winner's face classifier (Seferbekov, Deepfake Detection Challenge 2020; selimsef/dfdc_deepfake_challenge,
MIT): an EfficientNet-B7 (noisy-student weights, built by ``timm``) as the encoder, global average pooling, dropout
and one linear unit giving the logit of P(FAKE).

Facts (their ``training/zoo/classifiers.py`` ``DeepFakeClassifier`` and ``kernel_utils.py``): the encoder is timm's
``tf_efficientnet_b7_ns`` (named ``tf_efficientnet_b7.ns_jft_in1k`` in today's timm; same modules), used through
``forward_features`` (its own 1000-class head stays in the module, unused, because the published checkpoints
carry it); 2560 features; dropout 0 at inference; parameter names ``encoder.*`` and ``fc.*``. Input: 380 x 380 RGB
face crops, pixels / 255 normalised with the ImageNet mean and std. Checkpoints are ``{"state_dict": ...,
"epoch": ..., "bce_best": ...}`` with every key prefixed ``module.`` (saved from a data-parallel wrapper).
"""

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from chromaflow.core.errors import ModelError
from chromaflow.core.nets.face_input import IMAGENET_MEAN, IMAGENET_STD, FaceInput
from chromaflow.core.weights_io import load_state_dict

ARCH = "effnet-b7-dfdc"
ENCODER = "tf_efficientnet_b7.ns_jft_in1k"  # timm's name for the authors' tf_efficientnet_b7_ns
FEATURES = 2560
INPUT_SIZE = 380
MARGIN_DIVISOR = 3  # the MTCNN box widened by width // 3 (height // 3) on each side
TRAIN_DROP_PATH = 0.2  # the authors' stochastic depth while training (no effect at inference)
FACE_INPUT = FaceInput(
    INPUT_SIZE, IMAGENET_MEAN, IMAGENET_STD, logit_of="fake", margin_divisor=MARGIN_DIVISOR, precision="auto"
)


def _encoder(drop_path_rate: float) -> Any:  # a timm EfficientNet (its forward_features is not nn.Module's)
    import timm  # a runtime dependency, imported when an EfficientNet is built

    return timm.create_model(ENCODER, pretrained=False, drop_path_rate=drop_path_rate)


class DFDCClassifier(nn.Module):
    """EfficientNet-B7 features -> global average pool -> dropout -> linear; returns ``(N, 1)`` logits of P(FAKE)."""

    face_input = FACE_INPUT

    def __init__(self, drop_path_rate: float = 0.0, dropout: float = 0.0) -> None:
        super().__init__()
        self.encoder = _encoder(drop_path_rate)
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(FEATURES, 1)

    def forward(self, x: Tensor) -> Tensor:
        features = self.encoder.forward_features(x)
        return self.fc(self.dropout(self.avg_pool(features).flatten(1)))


def build(train: bool = False) -> DFDCClassifier:
    """A freshly initialised classifier; ``train`` gives it the authors' training stochastic depth."""
    net = DFDCClassifier(drop_path_rate=TRAIN_DROP_PATH if train else 0.0)
    return net.train(train)


def unwrap(state_dict: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The authors' parameter names: the ``module.`` prefix of their data-parallel checkpoints removed (the
    ``{"state_dict": ...}`` container is opened by :func:`~chromaflow.core.weights_io.load_state_dict`)."""
    return {k.removeprefix("module."): v for k, v in state_dict.items()}


def from_state_dict(state_dict: Mapping[str, Tensor], source: str = "the weights") -> DFDCClassifier:
    """A classifier in eval mode holding ``state_dict`` (authors' names, with or without ``module.``)."""
    state = unwrap(state_dict)
    with torch.device("meta"):  # no initialisation: every tensor comes from the file
        net = DFDCClassifier()
    try:
        net.load_state_dict(state, strict=True, assign=True)
    except RuntimeError as err:
        first = " ".join(str(err).splitlines()[:3])
        raise ModelError(
            f"{source} do not fit the DFDC EfficientNet-B7 classifier ({first[:400]}); use one of the seven "
            "published checkpoints (chromaflow models download effnet-b7-dfdc) or a file saved from this "
            "architecture"
        ) from err
    return net.eval()


def load(path: str | Path) -> DFDCClassifier:
    """A classifier in eval mode from one of the authors' checkpoint files (read with ``weights_only=True``)."""
    return from_state_dict(load_state_dict(path), str(path))
