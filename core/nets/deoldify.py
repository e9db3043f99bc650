"""DeOldify's generators (J. Antic, jantic/DeOldify, MIT), compatible with the authors' published checkpoints.

Two architectures, named after their decoders as the authors name them (``gen_inference_deep`` / ``_wide``):

- ``deoldify-deep``: a ResNet-34 encoder and the "deep" U-Net decoder (two convolutions per level, channel factor
  1.5); the ``ColorizeArtistic_gen.pth`` checkpoint.
- ``deoldify-wide``: a ResNet-101 encoder and the "wide" U-Net decoder (one convolution per level, 1024 channels,
  factor 2); the ``ColorizeStable_gen.pth`` and ``ColorizeVideo_gen.pth`` checkpoints.

The module's own ``state_dict()`` has exactly the checkpoints' keys and shapes (fastai's ``layers.N...`` layout,
torchvision's names inside the encoder blocks, spectral-norm ``weight_orig``/``weight_u``/``weight_v`` and the final
weight-norm ``weight_g``/``weight_v``), so the files load with ``strict=True``.

Facts of the decoder (fastai v1 ``DynamicUnet`` as DeOldify configures it): every decoder convolution is
spectrally normalised (one power-iteration step per training forward; none in eval mode, where the stored ``u``
and ``v`` give sigma = u . W v); each level upsamples by a 1x1 convolution, batch norm, ReLU, pixel shuffle and a
2x2 average "blur" after a one-pixel replicate pad on the top and left (applied whatever the ``blur`` flag says);
the upsampled map is resized (nearest) to the skip's size when odd sizes make them differ, joined with the
batch-normed skip, and passed through a ReLU. The second level ends in a SAGAN self-attention. After the last
level a weight-normed pixel shuffle restores the input size, the normalised input image is concatenated, a
residual block and a 1x1 convolution give three channels, squashed by a sigmoid into (-3, 3).

Processing (the authors' ``ColorizerFilter``): the image is resized to a square of side 16 x ``render_factor``,
made gray and given to the generator as RGB normalised with the ImageNet mean and std; the output is
de-normalised, clipped to [0, 1], and only its chroma is kept on the original luma. Here the gray RGB is the
neutral sRGB of L* and the chroma kept is the output's CIE a*b*.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chromaflow.core.colour.lab import gray_to_rgb, rgb_to_lab
from chromaflow.core.errors import ModelError, UsageError
from chromaflow.core.weights_io import load_tensors

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
RENDER_BASE = 16  # model side = RENDER_BASE x render_factor
OUTPUT_RANGE = (-3.0, 3.0)  # the final sigmoid's range, in normalised RGB units
# The authors' default render factors (deoldify/visualize.py).
RENDER_FACTORS = {"artistic": 35, "stable": 35, "video": 21}
_SN_EPS = 1e-12  # torch's spectral-norm epsilon in the power iteration


def side_for_render_factor(render_factor: int) -> int:
    """The model side DeOldify uses for ``render_factor`` (16 x render_factor)."""
    if isinstance(render_factor, bool) or not isinstance(render_factor, int) or render_factor < 1:
        raise UsageError(
            f"render factor {render_factor!r} is not usable: give a whole number >= 1 (35, 21, ...)"
        )
    return RENDER_BASE * render_factor


# ------------------------------------------------------------------------------------ normalised layers


class _SpectralConv(nn.Module):
    """A 1d or 2d convolution whose weight is ``weight_orig`` divided by its largest singular value, estimated
    with the stored vectors ``weight_u``/``weight_v`` (refined by one power-iteration step per training forward,
    as torch's ``spectral_norm`` does)."""

    weight_u: Tensor
    weight_v: Tensor

    def __init__(self, c_in: int, c_out: int, kernel: int, *, bias: bool, dims: Literal[1, 2] = 2) -> None:
        super().__init__()
        self.dims = dims
        self.padding = (kernel - 1) // 2
        shape = (c_out, c_in, kernel) if dims == 1 else (c_out, c_in, kernel, kernel)
        # Allocated only: DeOldify.reset_parameters fills a fresh net, a checkpoint a loaded one.
        self.weight_orig = nn.Parameter(torch.empty(shape))
        self.bias = nn.Parameter(torch.empty(c_out)) if bias else None
        self.register_buffer("weight_u", torch.empty(c_out))
        self.register_buffer("weight_v", torch.empty(c_in * kernel**dims))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """He-normal weights (as fastai initialises them), zero bias, random unit ``u`` and ``v``."""
        nn.init.kaiming_normal_(self.weight_orig)
        if self.bias is not None:
            self.bias.zero_()
        self.weight_u.copy_(F.normalize(torch.randn_like(self.weight_u), dim=0, eps=_SN_EPS))
        self.weight_v.copy_(F.normalize(torch.randn_like(self.weight_v), dim=0, eps=_SN_EPS))

    def normalised_weight(self) -> Tensor:
        matrix = self.weight_orig.reshape(self.weight_orig.shape[0], -1)
        u, v = self.weight_u, self.weight_v
        if self.training:
            with torch.no_grad():
                v = F.normalize(matrix.t() @ u, dim=0, eps=_SN_EPS)
                u = F.normalize(matrix @ v, dim=0, eps=_SN_EPS)
                self.weight_u.copy_(u)
                self.weight_v.copy_(v)
        sigma = torch.dot(u, matrix @ v)
        return self.weight_orig / sigma

    def forward(self, x: Tensor) -> Tensor:
        conv = F.conv1d if self.dims == 1 else F.conv2d
        return conv(x, self.normalised_weight(), self.bias, padding=self.padding)


class _WeightNormConv(nn.Module):
    """A 1x1 convolution with weight = ``weight_g`` x ``weight_v`` / ||``weight_v``|| per output channel."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.empty(c_out))
        self.weight_g = nn.Parameter(torch.empty(c_out, 1, 1, 1))
        self.weight_v = nn.Parameter(torch.empty(c_out, c_in, 1, 1))

    @torch.no_grad()
    def reset_parameters(self) -> None:
        """He-normal direction, its own norm as the gain, zero bias."""
        nn.init.kaiming_normal_(self.weight_v)
        self.weight_g.copy_(torch.linalg.vector_norm(self.weight_v, dim=(1, 2, 3), keepdim=True))
        self.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        norm = torch.linalg.vector_norm(self.weight_v, dim=(1, 2, 3), keepdim=True)
        return F.conv2d(x, self.weight_v * (self.weight_g / norm), self.bias)


def _batch_norm(channels: int) -> nn.BatchNorm2d:
    """Batch norm initialised as fastai's ``batchnorm_2d`` (weight 1, bias 1e-3)."""
    bn = nn.BatchNorm2d(channels)
    nn.init.constant_(bn.bias, 1e-3)
    return bn


def _conv_block(c_in: int, c_out: int, *, attention: bool = False) -> nn.Sequential:
    """Spectral 3x3 convolution (no bias), ReLU, batch norm, and optionally self-attention."""
    layers: list[nn.Module] = [
        _SpectralConv(c_in, c_out, 3, bias=False),
        nn.ReLU(inplace=True),
        _batch_norm(c_out),
    ]
    if attention:
        layers.append(_SelfAttention(c_out))
    return nn.Sequential(*layers)


class _SelfAttention(nn.Module):
    """SAGAN self-attention over all positions, added to the input with a learned weight ``gamma`` (0 at
    initialisation)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.query = _SpectralConv(channels, channels // 8, 1, bias=False, dims=1)
        self.key = _SpectralConv(channels, channels // 8, 1, bias=False, dims=1)
        self.value = _SpectralConv(channels, channels, 1, bias=False, dims=1)
        self.gamma = nn.Parameter(torch.zeros(1))  # fastai starts without attention

    def forward(self, x: Tensor) -> Tensor:
        flat = x.flatten(2)
        q, k, v = self.query(flat), self.key(flat), self.value(flat)
        # attention[i, j]: the share of position i's value in output position j (normalised over i)
        attention = torch.softmax(torch.bmm(q.transpose(1, 2), k), dim=1)
        return (self.gamma * torch.bmm(v, attention) + flat).view_as(x)


def _blurred_shuffle(x: Tensor) -> Tensor:
    """2x pixel shuffle, then a 2x2 mean after a one-pixel replicate pad on the top and left (no checkerboard)."""
    x = F.pixel_shuffle(x, 2)
    return F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), 2, stride=1)


class _ShuffleUp(nn.Module):
    """A decoder level's 2x upsampling: spectral 1x1 convolution to 4x the channels, batch norm, ReLU, blurred
    pixel shuffle."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(_SpectralConv(c_in, 4 * c_out, 1, bias=False), _batch_norm(4 * c_out))

    def forward(self, x: Tensor) -> Tensor:
        return _blurred_shuffle(F.relu(self.conv(x)))


class _FinalShuffle(nn.Module):
    """The last 2x upsampling back to the input size: weight-normed 1x1 convolution, ReLU, blurred pixel
    shuffle."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(_WeightNormConv(channels, 4 * channels))

    def forward(self, x: Tensor) -> Tensor:
        return _blurred_shuffle(F.relu(self.conv(x)))


class _UpLevel(nn.Module):
    """One decoder level: upsample, match the skip's size, join with the batch-normed skip, ReLU, convolve."""

    shuf: _ShuffleUp
    bn: nn.BatchNorm2d

    def join(self, x: Tensor, skip: Tensor) -> Tensor:
        up = self.shuf(x)
        if up.shape[-2:] != skip.shape[-2:]:
            up = F.interpolate(up, skip.shape[-2:], mode="nearest")
        return F.relu(torch.cat((up, self.bn(skip)), dim=1))


class _DeepLevel(_UpLevel):
    """A level of the deep decoder: two convolutions to ``factor`` x the joined width (x half of it at the last
    level)."""

    def __init__(self, c_up: int, c_skip: int, *, last: bool, factor: float, attention: bool) -> None:
        super().__init__()
        self.shuf = _ShuffleUp(c_up, c_up // 2)
        self.bn = _batch_norm(c_skip)
        joined = c_up // 2 + c_skip
        self.out_channels = int((joined // 2 if last else joined) * factor)
        self.conv1 = _conv_block(joined, self.out_channels)
        self.conv2 = _conv_block(self.out_channels, self.out_channels, attention=attention)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv2(self.conv1(self.join(x, skip)))


class _WideLevel(_UpLevel):
    """A level of the wide decoder: one convolution to ``width`` / 2 channels."""

    def __init__(self, c_up: int, c_skip: int, *, width: int, attention: bool) -> None:
        super().__init__()
        half = width // 2
        self.shuf = _ShuffleUp(c_up, half)
        self.bn = _batch_norm(c_skip)
        self.out_channels = half
        self.conv = _conv_block(half + c_skip, half, attention=attention)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(self.join(x, skip))


class _ResBlock(nn.Module):
    """Two spectral 3x3 convolutions (with bias), each followed by a ReLU, added to the input."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.layers = nn.ModuleList(
            nn.Sequential(_SpectralConv(channels, channels, 3, bias=True), nn.ReLU(inplace=True))
            for _ in range(2)
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.layers[1](self.layers[0](x))


class _Marker(nn.Module):
    """A parameter-free step the generator's forward performs itself; it keeps the checkpoint's layer numbers."""

    def __init__(self, what: str) -> None:
        super().__init__()
        self.what = what

    def extra_repr(self) -> str:
        return self.what


# ---------------------------------------------------------------------------------------- the encoders


class _BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = _shortcut(c_in, planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class _Bottleneck(nn.Module):
    """torchvision's bottleneck (stride on the 3x3 convolution)."""

    expansion = 4

    def __init__(self, c_in: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, 4 * planes, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(4 * planes)
        self.downsample = _shortcut(c_in, 4 * planes, stride)

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


def _shortcut(c_in: int, c_out: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and c_in == c_out:
        return None
    return nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))


Backbone = Literal["resnet34", "resnet101"]
_RESNETS: dict[str, tuple[type[_BasicBlock] | type[_Bottleneck], tuple[int, int, int, int]]] = {
    "resnet34": (_BasicBlock, (3, 4, 6, 3)),
    "resnet101": (_Bottleneck, (3, 4, 23, 3)),
}


def _resnet_body(backbone: Backbone) -> tuple[nn.Sequential, list[int]]:
    """A ResNet without its pooling head, laid out as fastai's ``create_body`` keeps it (stem conv, bn, ReLU,
    max-pool, four stages: children 0-7), and the channels of the stem and each stage."""
    block, depths = _RESNETS[backbone]
    stem = [
        nn.Conv2d(3, 64, 7, 2, 3, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(inplace=True),
        nn.MaxPool2d(3, 2, 1),
    ]
    stages: list[nn.Module] = []
    channels = [64]
    c_in = 64
    for i, depth in enumerate(depths):
        planes = 64 * 2**i
        blocks: list[nn.Module] = []
        for j in range(depth):
            blocks.append(block(c_in, planes, 2 if (j == 0 and i > 0) else 1))
            c_in = planes * block.expansion
        stages.append(nn.Sequential(*blocks))
        channels.append(c_in)
    return nn.Sequential(*stem, *stages), channels


# --------------------------------------------------------------------------------------- the generator


@dataclass(frozen=True)
class Config:
    """One DeOldify generator: its encoder, its decoder and the decoder's channel factor."""

    backbone: Backbone
    decoder: Literal["deep", "wide"]
    nf_factor: float


ARCHITECTURES: dict[str, Config] = {
    "deoldify-deep": Config("resnet34", "deep", 1.5),
    "deoldify-wide": Config("resnet101", "wide", 2),
}


class DeOldify(nn.Module):
    """A DeOldify generator following the colour-net protocol: L* in, ab out (see the module docstring).

    ``forward_rgb`` is the authors' generator itself (ImageNet-normalised RGB in, normalised RGB out).
    """

    accepts_hints = False
    output_stride = 1

    def __init__(self, config: Config, initialise: bool = True) -> None:
        super().__init__()
        self.config = config
        encoder, channels = _resnet_body(config.backbone)
        deepest = channels[-1]
        middle = nn.Sequential(_conv_block(deepest, 2 * deepest), _conv_block(2 * deepest, deepest))
        levels: list[_UpLevel] = []
        c_up = deepest
        skips = channels[-2::-1]  # stage 3, stage 2, stage 1, stem
        for i, c_skip in enumerate(skips):
            last, attention = i == len(skips) - 1, i == len(skips) - 3
            level: _DeepLevel | _WideLevel
            if config.decoder == "deep":
                level = _DeepLevel(c_up, c_skip, last=last, factor=config.nf_factor, attention=attention)
            else:
                width = int(512 * config.nf_factor)
                level = _WideLevel(c_up, c_skip, width=width // 2 if last else width, attention=attention)
            levels.append(level)
            c_up = level.out_channels
        merged = c_up + 3
        self.layers = nn.ModuleList(
            [
                encoder,  # 0
                _batch_norm(deepest),  # 1
                nn.ReLU(),  # 2
                middle,  # 3
                *levels,  # 4-7
                _FinalShuffle(c_up),  # 8
                _Marker("concatenate the input image"),  # 9
                _ResBlock(merged),  # 10
                nn.Sequential(_SpectralConv(merged, 3, 1, bias=True)),  # 11
                _Marker(f"sigmoid into {OUTPUT_RANGE}"),  # 12
            ]
        )
        if initialise:
            self.reset_parameters()

    def reset_parameters(self) -> None:
        """Fresh weights for the decoder's normalised convolutions (torch's own layers initialise themselves)."""
        for module in self.modules():
            if isinstance(module, _SpectralConv | _WeightNormConv):
                module.reset_parameters()

    def forward_rgb(self, x: Tensor) -> Tensor:
        """The authors' generator: ImageNet-normalised RGB ``(N, 3, H, W)`` in, normalised RGB in (-3, 3) out."""
        if x.shape[-1] % 2 or x.shape[-2] % 2:
            raise UsageError(
                f"DeOldify needs an even input side (16 x render factor), got {tuple(x.shape[-2:])}"
            )
        encoder = cast(nn.Sequential, self.layers[0])
        skips: list[Tensor] = []
        y = x
        for index, child in enumerate(encoder):
            y = child(y)
            if index in (2, 4, 5, 6):  # after the stem's ReLU and after stages 1-3
                skips.append(y)
        y = self.layers[3](self.layers[2](self.layers[1](y)))
        for level, skip in zip(self.layers[4:8], reversed(skips), strict=True):
            y = level(y, skip)
        y = self.layers[8](y)
        y = self.layers[11](self.layers[10](torch.cat((y, x), dim=1)))
        low, high = OUTPUT_RANGE
        return torch.sigmoid(y) * (high - low) + low

    def forward(self, l: Tensor, ab_hint: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        """ab ``(N, 2, S, S)`` for L* ``(N, 1, S, S)`` in [0, 100] (hints are ignored)."""
        gray = gray_to_rgb(l)
        mean = gray.new_tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = gray.new_tensor(IMAGENET_STD).view(1, 3, 1, 1)
        out = self.forward_rgb((gray - mean) / std)
        rgb = (out * std + mean).clamp(0.0, 1.0)
        return rgb_to_lab(rgb)[:, 1:]


def build(arch: str, state_dict: Mapping[str, Tensor] | None = None, *, adopt: bool = False) -> DeOldify:
    """A DeOldify generator of ``arch`` (``deoldify-deep`` or ``deoldify-wide``), in eval mode and filled from
    ``state_dict`` when given, else freshly initialised in training mode.

    ``adopt`` makes the net take ``state_dict``'s tensors themselves instead of copies (half the memory while
    loading; for tensors nobody else holds, such as those just read from a file).
    """
    config = ARCHITECTURES.get(arch)
    if config is None:
        raise UsageError(f"unknown DeOldify architecture {arch!r}: use one of {', '.join(ARCHITECTURES)}")
    if state_dict is None:
        return DeOldify(config).train()
    net = DeOldify(config, initialise=False)  # the file fills every tensor
    state = {k: v.float() if v.is_floating_point() else v for k, v in state_dict.items()}
    for key in net.state_dict():  # batch-norm step counters, if a re-saved file dropped them
        if key.endswith("num_batches_tracked"):
            state.setdefault(key, torch.zeros((), dtype=torch.long))
    try:
        net.load_state_dict(state, strict=True, assign=adopt)
    except RuntimeError as err:
        other = _architecture_of(state_dict)
        hint = (
            f"this file holds a {other} generator: use --arch {other}"
            if other not in (None, arch)
            else "check that the file is a DeOldify generator (ColorizeArtistic_gen.pth: deoldify-deep; "
            "ColorizeStable_gen.pth / ColorizeVideo_gen.pth: deoldify-wide)"
        )
        first = " ".join(str(err).splitlines()[:2])
        raise ModelError(f"the weights do not fit the {arch} architecture ({first[:300]}); {hint}") from err
    return net.eval()


def _architecture_of(state_dict: Mapping[str, Tensor]) -> str | None:
    """The DeOldify architecture whose keys and shapes ``state_dict`` has, if any (built on the meta device)."""
    shapes = {k: tuple(v.shape) for k, v in state_dict.items()}
    for arch, config in ARCHITECTURES.items():
        with torch.device("meta"):
            expected = {k: tuple(v.shape) for k, v in DeOldify(config, initialise=False).state_dict().items()}
        if expected == shapes:
            return arch
    return None


def unwrap(checkpoint: Any) -> dict[str, Tensor]:
    """The generator's state_dict from a DeOldify checkpoint: fastai's ``{"model": ..., "opt": ...}`` container
    (``Learner.save``), a bare state_dict, or either with DataParallel's ``module.`` prefixes."""
    if isinstance(checkpoint, Mapping) and isinstance(checkpoint.get("model"), Mapping):
        checkpoint = checkpoint["model"]
    what = "use a DeOldify generator file (ColorizeArtistic_gen.pth, ColorizeStable_gen.pth, ColorizeVideo_gen.pth)"
    if not isinstance(checkpoint, Mapping) or not checkpoint:
        raise ModelError(f"this file is not a DeOldify state_dict (a mapping of names to tensors); {what}")
    bad = [str(k) for k, v in checkpoint.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise ModelError(
            f"this file is not a DeOldify state_dict: its entries {', '.join(bad[:3])} are not named tensors; {what}"
        )
    if all(k.startswith("module.") for k in checkpoint):
        return {k.removeprefix("module."): v for k, v in checkpoint.items()}
    return dict(checkpoint)


def load(arch: str, path: str | Path) -> DeOldify:
    """A DeOldify generator in eval mode from a checkpoint file, read with ``torch.load(weights_only=True)``.

    The authors' files were pickled with a ``slice`` object beside the tensors (Hugging Face's pickle scan of
    them lists ``__builtin__.slice``); a slice is plain data, so it is the one global allowed beyond torch's
    defaults.
    """
    with torch.serialization.safe_globals([slice]):
        checkpoint = load_tensors(path)
    try:
        state = unwrap(checkpoint)
    except ModelError as err:
        raise ModelError(f"{path}: {err}") from err
    return build(arch, state, adopt=True)
