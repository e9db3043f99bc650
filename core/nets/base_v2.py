"""``base-v2``: ``base``'s contract and colour head on an ImageNet-pretrained MobileNetV2 encoder.

Same protocol as :mod:`chromaflow.core.nets.base` (``forward(l, ab_hint, mask)`` -> ab at S/4, hints accepted,
classification over the same 16 x 16 ab bins, annealed-mean decoding at ``temperature``, the cross-bilateral
hint refinement at inference), so the Colorizer and the trainer run it exactly as ``base``.

Why this shape: ``base`` learned its features from a few hundred photos and overfits; ImageNet features tell roads
from water. The encoder (:class:`~chromaflow.core.nets.mobilenet_v2.MobileNetV2Features`) sees L* as a normalised
gray RGB image and is kept frozen (batch-norm statistics included) except for its last stages, which training may
fine-tune at a low rate. Hints never enter the encoder (its input is ImageNet's): they reach the light U-Net decoder
at every scale, as parameter-free propagated colours (:func:`~chromaflow.core.nets.base.hint_features`) at S/32,
S/16, S/8 and S/4, and through a small full-resolution branch on (L*, ab hints, mask) that brings point hints and
fine luma edges to S/4.
"""

from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chromaflow.core.errors import ModelError
from chromaflow.core.nets.base import (
    AB_NORM,
    GRID,
    L_CENTRE,
    L_NORM,
    TEMPERATURE_KEY,
    ab_bin_centres,
    annealed_mean,
    hint_features,
    propagate_hint_residual,
)
from chromaflow.core.nets.mobilenet_v2 import (
    CHANNELS,
    TAPS,
    MobileNetV2Features,
    imagenet_gray,
    imagenet_state,
)
from chromaflow.core.weights_io import load_state_dict

ARCH = "base-v2"
DEFAULT_WIDTH = 32
INPUT_SIZE = 256
HINT_CHANNELS = 9  # hint_features' output
FINETUNE_FROM = TAPS[16] + 1  # the first encoder block fine-tuned by default: the stride-32 stages
ENCODER_PREFIX = "encoder."  # the MobileNetV2 trunk's tensors in a state_dict


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


def _up(x: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(x, size=like.shape[2:], mode="bilinear", align_corners=False)


class BaseV2ColorNet(nn.Module):
    """MobileNetV2 encoder (stride 4/8/16/32 maps) + hint-aware U-Net decoder + ab-bin classification head."""

    accepts_hints = True
    output_stride = 4
    input_size = INPUT_SIZE
    centres: Tensor

    def __init__(self, width: int = DEFAULT_WIDTH, temperature: float = 0.4) -> None:
        super().__init__()
        w = width
        self.temperature = temperature
        self.refine_hints = True  # see propagate_hint_residual
        self.encoder = MobileNetV2Features()
        self.local = nn.Sequential(_conv(4, w // 2, 2), _conv(w // 2, w // 2, 2))  # (L, ab hint, mask) -> S/4
        self.bottleneck = nn.Sequential(
            nn.Conv2d(CHANNELS[32] + HINT_CHANNELS, 4 * w, 1, bias=False),
            nn.BatchNorm2d(4 * w),
            nn.ReLU(True),
        )
        self.context = nn.Sequential(nn.Linear(4 * w, 4 * w), nn.ReLU(inplace=True), nn.Linear(4 * w, 4 * w))
        self.dec16 = nn.Sequential(_conv(4 * w + CHANNELS[16] + HINT_CHANNELS, 3 * w), _conv(3 * w, 3 * w))
        self.dec8 = nn.Sequential(_conv(3 * w + CHANNELS[8] + HINT_CHANNELS, 2 * w), _conv(2 * w, 2 * w))
        self.dec4 = nn.Sequential(
            _conv(2 * w + CHANNELS[4] + HINT_CHANNELS + w // 2, 2 * w), _conv(2 * w, 2 * w)
        )
        self.head = nn.Conv2d(2 * w, GRID * GRID, 1)
        self.register_buffer("centres", ab_bin_centres(), persistent=False)
        self.freeze_encoder(None)
        self.encoder.eval()  # see train()

    # the encoder ---------------------------------------------------------------------------------------------
    def freeze_encoder(self, trainable_from: int | None) -> None:
        """Let encoder blocks ``trainable_from`` onwards learn (None: none of them); the rest stay fixed."""
        for i, block in enumerate(self.encoder.features):
            learn = trainable_from is not None and i >= trainable_from
            for p in block.parameters():
                p.requires_grad_(learn)

    def train(self, mode: bool = True) -> "BaseV2ColorNet":
        """As nn.Module.train, but the encoder's batch norms keep their ImageNet statistics in every mode (so a
        cached feature map equals a fresh one, and small batches cannot spoil them)."""
        super().train(mode)
        self.encoder.eval()
        return self

    def features(self, l: Tensor) -> dict[int, Tensor]:
        """The encoder's {4, 8, 16, 32}-stride maps of L* ``l`` (N, 1, S, S)."""
        return self.encoder(imagenet_gray(l))

    # the decoder ---------------------------------------------------------------------------------------------
    def decode_features(
        self, feats: Mapping[int, Tensor], l: Tensor, ab_hint: Tensor, mask: Tensor
    ) -> Tensor:
        """Bin logits (N, GRID*GRID, S/4, S/4) from encoder maps ``feats`` (as :meth:`features` gives) and the
        inputs; the step that trains on cached features."""
        e4, e8, e16, e32 = feats[4], feats[8], feats[16], feats[32]
        dtype = e4.dtype
        hint_f, mask_f = ab_hint.float(), mask.float()

        def hints_like(x: Tensor) -> Tensor:
            return hint_features(hint_f, mask_f, (x.shape[2], x.shape[3])).to(dtype)

        x = torch.cat(((l - L_CENTRE) / L_NORM, ab_hint * mask / AB_NORM, mask), dim=1).to(dtype)
        local = self.local(x)
        c = self.bottleneck(torch.cat((e32, hints_like(e32)), dim=1))
        c = c + self.context(c.mean(dim=(2, 3)))[:, :, None, None]
        d16 = self.dec16(torch.cat((_up(c, e16), e16, hints_like(e16)), dim=1))
        d8 = self.dec8(torch.cat((_up(d16, e8), e8, hints_like(e8)), dim=1))
        local = _up(local, e4) if local.shape[2:] != e4.shape[2:] else local
        d4 = self.dec4(torch.cat((_up(d8, e4), e4, hints_like(e4), local), dim=1))
        return self.head(d4)

    # base's contract -----------------------------------------------------------------------------------------
    @property
    def bin_centres(self) -> Tensor:
        """The ab centres of the classification bins, (GRID*GRID, 2) in ab units, on the net's device."""
        return self.centres

    def logits(self, l: Tensor, ab_hint: Tensor, mask: Tensor) -> Tensor:
        """Per-pixel scores over the ab bins at S/4: (N, GRID*GRID, S/4, S/4)."""
        return self.decode_features(self.features(l), l, ab_hint, mask)

    def decode(self, logits: Tensor, temperature: float | None = None) -> Tensor:
        """Annealed mean of the bin distribution, in ab units: (N, 2, h, w)."""
        return annealed_mean(logits, self.centres, self.temperature if temperature is None else temperature)

    def forward(self, l: Tensor, ab_hint: Tensor, mask: Tensor) -> Tensor:
        ab = self.decode(self.logits(l, ab_hint, mask))
        if self.refine_hints:
            l_small = F.adaptive_avg_pool2d(l, (ab.shape[2], ab.shape[3]))
            ab = propagate_hint_residual(ab, l_small, ab_hint, mask)
        return ab


def width_of(state_dict: Mapping[str, Tensor]) -> int:
    """The decoder ``width`` a BaseV2ColorNet state_dict was trained with."""
    return int(state_dict["local.0.0.weight"].shape[0]) * 2


def build_base_v2(
    width: int = DEFAULT_WIDTH, state_dict: Mapping[str, Tensor] | None = None
) -> BaseV2ColorNet:
    """A fresh ``base-v2`` net (training mode; its encoder random until ImageNet weights are loaded into it, see
    :func:`chromaflow.core.training.encoder_phases.pretrained_base_v2`), or one in eval mode filled from
    ``state_dict`` (a saved net; encoder tensors it leaves out are ImageNet's, see :func:`shipped_state`)."""
    if state_dict is None:
        return BaseV2ColorNet(width=width)
    state = {k: v.float() for k, v in state_dict.items()}
    temperature = state.pop(TEMPERATURE_KEY, None)
    net = BaseV2ColorNet(width=width_of(state))
    absent = [k for k in net.state_dict() if k.startswith(ENCODER_PREFIX) and k not in state]
    if absent:
        state.update(imagenet_encoder_tensors(absent))
    net.load_state_dict(state)
    if temperature is not None:
        net.temperature = float(temperature)
    return net.eval()


def imagenet_encoder_tensors(keys: Iterable[str]) -> dict[str, Tensor]:
    """The ImageNet values of encoder tensors ``keys`` (as ``encoder.features.*`` names).

    A shipped ``base-v2`` file leaves out the encoder blocks that training kept frozen (:func:`shipped_state`):
    they are torchvision's weights, which chromaflow does not redistribute, so they come from the registry's
    SHA-256-checked copy (fetched into the model cache on first use)."""
    imagenet = imagenet_state(progress=False)
    out = {}
    for key in keys:
        source = key.removeprefix(ENCODER_PREFIX)
        if source not in imagenet:
            raise ModelError(f"the weights file lacks {key!r}, which is not a tensor of the ImageNet encoder")
        out[key] = imagenet[source].float()
    return out


def shipped_state(net: BaseV2ColorNet, imagenet: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """``net``'s state_dict without the encoder tensors that still equal ``imagenet``'s (torchvision's
    MobileNetV2 state_dict): what chromaflow trained, and all it ships; :func:`build_base_v2` restores the rest."""
    state = net.state_dict()
    kept = {}
    for key, value in state.items():
        source = key.removeprefix(ENCODER_PREFIX)
        if key.startswith(ENCODER_PREFIX) and source in imagenet and torch.equal(value, imagenet[source]):
            continue
        kept[key] = value
    return kept


def load_base_v2(path: str | Path) -> BaseV2ColorNet:
    """The ``base-v2`` net in eval mode from a state_dict file (tensors only, never unpickled code)."""
    state = load_state_dict(path)
    try:
        return build_base_v2(state_dict=state)
    except (RuntimeError, KeyError) as err:
        reason = " ".join(str(err).split())[:300] or type(err).__name__
        raise ModelError(f"the weights do not fit the 'base-v2' architecture: {reason}") from err
