"""DDColor (Kang et al., "DDColor: Towards Photo-Realistic Image Colorization via Dual Decoders", ICCV 2023),
written for this project so that the authors' checkpoints load unchanged with ``load_state_dict(strict=True)``.

The network: a ConvNeXt encoder (tiny or large) gives four feature maps (strides 4, 8, 16, 32, each layer-normed);
a pixel decoder climbs back with three pixel-shuffle U-Net blocks (strides 16, 8, 4) and a final 4x pixel shuffle
to full resolution; a colour decoder refines 100 learned colour queries with 9 transformer layers (cross-attention
to the three decoder scales in turn, then self-attention, then a feed-forward layer), and each query's embedding
dotted with the full-resolution pixel features gives one "colour map"; a 1x1 convolution over those maps and the
normalised input image gives ab. All convolutions of the decoders are spectrally normalised.

Facts taken from the authors' published code and settings (piddnad/DDColor ``ddcolor/pipeline.py``, MODEL_ZOO.md,
and the ``vsddcolor`` package): 100 queries, 3 scales, 9 decoder layers, ``nf`` 512, spectral norm on the last
upsampler, ImageNet normalisation of the input inside the network, output ab in CIE Lab units. The input is the
sRGB image of the L* plane with a* = b* = 0 (the authors' inference takes L* of the resized image and converts
(L*, 0, 0) back to RGB). Every spatial side must be a multiple of 32 (the encoder's total stride): the decoder
joins each upsampled map with the encoder map of the same size.

Spectral normalisation here is the inference form: the weight is divided by ``u . (W v)`` with the stored vectors
``weight_u`` and ``weight_v``, as PyTorch's ``spectral_norm`` does in eval mode; the power iteration that training
runs is not part of this port (it runs the authors' nets, it does not train them).
"""

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chromaflow.core.colour.lab import gray_to_rgb
from chromaflow.core.errors import ModelError, UsageError
from chromaflow.core.weights_io import load_tensors

SIDE_MULTIPLE = 32  # the encoder's total stride
DEFAULT_SIDE = 512  # the side the authors' inference uses
NUM_QUERIES = 100
NUM_SCALES = 3
DEC_LAYERS = 9
NF = 512  # pixel decoder width
HIDDEN = 256  # colour decoder width
HEADS = 8
FFN_WIDTH = 2048
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
_EPS_LN = 1e-6
_LAYER_SCALE_INIT = 1e-6
# Containers the authors' and common training code wrap a state_dict in (BasicSR saves {"params": ...}).
_CONTAINER_KEYS = ("params", "params_ema", "state_dict", "model")
# Entries that are fixed constants: filled in when a file lacks them (as are batch-norm step counters).
_DEFAULTS = {
    "mean": lambda: torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1),
    "std": lambda: torch.tensor(IMAGENET_STD).view(1, 3, 1, 1),
}


@dataclass(frozen=True)
class Variant:
    """One encoder size: blocks per stage and channels per stage."""

    depths: tuple[int, int, int, int]
    dims: tuple[int, int, int, int]


VARIANTS: dict[str, Variant] = {
    "ddcolor-tiny": Variant((3, 3, 9, 3), (96, 192, 384, 768)),  # ConvNeXt-T
    "ddcolor-large": Variant((3, 3, 27, 3), (192, 384, 768, 1536)),  # ConvNeXt-L
}


def check_side(height: int, width: int | None = None) -> None:
    """Refuse a model side the network cannot take (each side a positive multiple of 32)."""
    for side in (height, height if width is None else width):
        if side < SIDE_MULTIPLE or side % SIDE_MULTIPLE:
            raise UsageError(
                f"DDColor needs a model side that is a multiple of {SIDE_MULTIPLE} (got {side}); use 512 (its "
                "default) or 256, or another multiple of 32"
            )


# ------------------------------------------------------------------------------------------ building blocks


class SpectralConv2d(nn.Module):
    """A convolution whose weight is divided by its largest singular value, estimated from the stored vectors
    ``weight_u`` and ``weight_v`` (the names PyTorch's ``spectral_norm`` gives them in a checkpoint)."""

    weight_u: Tensor
    weight_v: Tensor

    def __init__(self, c_in: int, c_out: int, kernel: int, bias: bool) -> None:
        super().__init__()
        self.padding = kernel // 2
        self.weight_orig = nn.Parameter(torch.empty(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        self.register_buffer("weight_u", torch.empty(c_out))
        self.register_buffer("weight_v", torch.empty(c_in * kernel * kernel))
        nn.init.kaiming_normal_(self.weight_orig)
        self.reset_vectors()

    @torch.no_grad()
    def reset_vectors(self, iterations: int = 3) -> None:
        """Fresh singular-vector estimates (a few power iterations from random vectors)."""
        if self.weight_orig.is_meta:
            return
        matrix = self.weight_orig.flatten(1)
        u = F.normalize(torch.randn_like(self.weight_u), dim=0)
        v = F.normalize(torch.randn_like(self.weight_v), dim=0)
        for _ in range(iterations):
            v = F.normalize(matrix.t() @ u, dim=0)
            u = F.normalize(matrix @ v, dim=0)
        self.weight_u.copy_(u)
        self.weight_v.copy_(v)

    def forward(self, x: Tensor) -> Tensor:
        weight = self.weight_orig
        sigma = torch.dot(self.weight_u, torch.mv(weight.flatten(1), self.weight_v))
        return F.conv2d(x, weight / sigma, self.bias, padding=self.padding)


class ChannelNorm(nn.Module):
    """Layer norm over the channels of an ``(N, C, H, W)`` map."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: Tensor) -> Tensor:
        y = F.layer_norm(x.permute(0, 2, 3, 1), self.weight.shape, self.weight, self.bias, _EPS_LN)
        return y.permute(0, 3, 1, 2)


class ConvNeXtBlock(nn.Module):
    """Depthwise 7x7, layer norm, 4x wider pointwise MLP with GELU, per-channel scale, residual."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.dwconv = nn.Conv2d(dim, dim, kernel_size=7, padding=3, groups=dim)
        self.norm = nn.LayerNorm(dim, eps=_EPS_LN)
        self.pwconv1 = nn.Linear(dim, 4 * dim)
        self.pwconv2 = nn.Linear(4 * dim, dim)
        self.gamma = nn.Parameter(torch.full((dim,), _LAYER_SCALE_INIT))

    def forward(self, x: Tensor) -> Tensor:
        y = self.dwconv(x).permute(0, 2, 3, 1)
        y = self.pwconv2(F.gelu(self.pwconv1(self.norm(y)))) * self.gamma
        return x + y.permute(0, 3, 1, 2)


class ConvNeXt(nn.Module):
    """The encoder: a 4x4 patchify stem, then four stages (2x downsampling between them); returns each stage's
    output through its own layer norm (``norm0`` .. ``norm3``). The pooled-feature norm ``norm`` of the
    classification network is part of the checkpoint but unused here."""

    def __init__(self, variant: Variant) -> None:
        super().__init__()
        dims = variant.dims
        stem = nn.Sequential(nn.Conv2d(3, dims[0], kernel_size=4, stride=4), ChannelNorm(dims[0]))
        downs = [
            nn.Sequential(ChannelNorm(dims[i]), nn.Conv2d(dims[i], dims[i + 1], kernel_size=2, stride=2))
            for i in range(3)
        ]
        self.downsample_layers = nn.ModuleList([stem, *downs])
        self.stages = nn.ModuleList(
            nn.Sequential(*(ConvNeXtBlock(dim) for _ in range(depth)))
            for depth, dim in zip(variant.depths, dims, strict=True)
        )
        for i, dim in enumerate(dims):
            self.add_module(f"norm{i}", ChannelNorm(dim))
        self.norm = nn.LayerNorm(dims[-1], eps=_EPS_LN)

    def forward(self, x: Tensor) -> list[Tensor]:
        features = []
        for i in range(4):
            x = self.stages[i](self.downsample_layers[i](x))
            features.append(getattr(self, f"norm{i}")(x))
        return features


class Encoder(nn.Module):
    """Holds the ConvNeXt under the name the checkpoints use (``encoder.arch``)."""

    def __init__(self, variant: Variant) -> None:
        super().__init__()
        self.arch = ConvNeXt(variant)

    def forward(self, x: Tensor) -> list[Tensor]:
        return self.arch(x)


class ShuffleUp(nn.Module):
    """1x1 convolution to ``scale**2`` times the channels (batch norm when ``batch_norm``), ReLU, pixel shuffle,
    then a 2x2 box blur over a one-pixel replicated top-left border (against checkerboard artefacts)."""

    def __init__(self, c_in: int, c_out: int, scale: int, batch_norm: bool) -> None:
        super().__init__()
        wide = c_out * scale * scale
        layers: list[nn.Module] = [SpectralConv2d(c_in, wide, 1, bias=not batch_norm)]
        if batch_norm:
            layers.append(nn.BatchNorm2d(wide))
        self.conv = nn.Sequential(*layers)
        self.scale = scale

    def forward(self, x: Tensor) -> Tensor:
        x = F.pixel_shuffle(F.relu(self.conv(x)), self.scale)
        return F.avg_pool2d(F.pad(x, (1, 0, 1, 0), mode="replicate"), kernel_size=2, stride=1)


class UpBlock(nn.Module):
    """One pixel-decoder step: upsample 2x, join the batch-normed encoder map of that size, 3x3 convolution."""

    def __init__(self, c_up: int, c_skip: int, c_out: int) -> None:
        super().__init__()
        self.shuf = ShuffleUp(c_up, c_out, 2, batch_norm=True)
        self.bn = nn.BatchNorm2d(c_skip)
        self.conv = nn.Sequential(
            SpectralConv2d(c_out + c_skip, c_out, 3, bias=False), nn.ReLU(), nn.BatchNorm2d(c_out)
        )

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        return self.conv(F.relu(torch.cat((self.shuf(x), self.bn(skip)), dim=1)))


def sine_positions(height: int, width: int, like: Tensor, channels: int = HIDDEN) -> Tensor:
    """The fixed 2-D sine position code of an ``height`` x ``width`` map, ``(1, height * width, channels)``:
    half the channels encode the row, half the column, each position scaled to (0, 2 pi] and paired
    (sin, cos) over geometric frequencies 10000 ** (2k / half)."""
    half = channels // 2
    dev = like.device
    rows = torch.arange(1, height + 1, device=dev, dtype=torch.float32) / (height + 1e-6) * (2 * math.pi)
    cols = torch.arange(1, width + 1, device=dev, dtype=torch.float32) / (width + 1e-6) * (2 * math.pi)
    freq = 10000.0 ** (2 * (torch.arange(half, device=dev, dtype=torch.float32) // 2) / half)

    def code(t: Tensor) -> Tensor:
        angles = t[:, None] / freq  # (n, half); each frequency appears twice in a row
        return torch.stack((angles[:, 0::2].sin(), angles[:, 1::2].cos()), dim=-1).flatten(1)

    y = code(rows)[:, None, :].expand(height, width, half)
    x = code(cols)[None, :, :].expand(height, width, half)
    return torch.cat((y, x), dim=-1).reshape(1, height * width, channels).to(like.dtype)


class CrossAttentionLayer(nn.Module):
    """Queries attend to one scale of image features; residual, then layer norm."""

    def __init__(self) -> None:
        super().__init__()
        self.multihead_attn = nn.MultiheadAttention(HIDDEN, HEADS, batch_first=True)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(self, queries: Tensor, query_pos: Tensor, memory: Tensor, memory_pos: Tensor) -> Tensor:
        out = self.multihead_attn(queries + query_pos, memory + memory_pos, memory, need_weights=False)[0]
        return self.norm(queries + out)


class SelfAttentionLayer(nn.Module):
    """Queries attend to each other; residual, then layer norm."""

    def __init__(self) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(HIDDEN, HEADS, batch_first=True)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(self, queries: Tensor, query_pos: Tensor) -> Tensor:
        keyed = queries + query_pos
        return self.norm(queries + self.self_attn(keyed, keyed, queries, need_weights=False)[0])


class FeedForwardLayer(nn.Module):
    """A two-layer ReLU MLP per query; residual, then layer norm."""

    def __init__(self) -> None:
        super().__init__()
        self.linear1 = nn.Linear(HIDDEN, FFN_WIDTH)
        self.linear2 = nn.Linear(FFN_WIDTH, HIDDEN)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(self, queries: Tensor) -> Tensor:
        return self.norm(queries + self.linear2(F.relu(self.linear1(queries))))


class QueryMLP(nn.Module):
    """Three linear layers (ReLU between) from a refined query to its colour embedding."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(HIDDEN, HIDDEN) for _ in range(3))

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == len(self.layers) - 1 else F.relu(layer(x))
        return x


class ColourDecoder(nn.Module):
    """Learned colour queries refined against the pixel decoder's three coarser scales, in turn; returns one
    map per query: the query's embedding dotted with each full-resolution pixel feature."""

    def __init__(self, in_channels: Sequence[int], num_queries: int, dec_layers: int) -> None:
        super().__init__()
        self.transformer_self_attention_layers = nn.ModuleList(
            SelfAttentionLayer() for _ in range(dec_layers)
        )
        self.transformer_cross_attention_layers = nn.ModuleList(
            CrossAttentionLayer() for _ in range(dec_layers)
        )
        self.transformer_ffn_layers = nn.ModuleList(FeedForwardLayer() for _ in range(dec_layers))
        self.decoder_norm = nn.LayerNorm(HIDDEN)
        self.query_feat = nn.Embedding(num_queries, HIDDEN)
        self.query_embed = nn.Embedding(num_queries, HIDDEN)
        self.level_embed = nn.Embedding(len(in_channels), HIDDEN)
        self.input_proj = nn.ModuleList(nn.Conv2d(c, HIDDEN, kernel_size=1) for c in in_channels)
        self.color_embed = QueryMLP()

    def forward(self, scales: Sequence[Tensor], pixels: Tensor) -> Tensor:
        memories, positions = [], []
        for i, feature in enumerate(scales):
            projected = self.input_proj[i](feature).flatten(2) + self.level_embed.weight[i][None, :, None]
            memories.append(projected.transpose(1, 2))  # (N, HW, C)
            positions.append(sine_positions(feature.shape[-2], feature.shape[-1], projected))
        n = pixels.shape[0]
        query_pos = self.query_embed.weight.unsqueeze(0).expand(n, -1, -1)
        queries = self.query_feat.weight.unsqueeze(0).expand(n, -1, -1)
        for i, (cross, self_attn, ffn) in enumerate(
            zip(
                self.transformer_cross_attention_layers,
                self.transformer_self_attention_layers,
                self.transformer_ffn_layers,
                strict=True,
            )
        ):
            level = i % len(memories)
            queries = cross(queries, query_pos, memories[level], positions[level])
            queries = ffn(self_attn(queries, query_pos))
        embedding = self.color_embed(self.decoder_norm(queries))  # (N, Q, C)
        maps = torch.bmm(embedding, pixels.flatten(2))  # (N, Q, HW)
        return maps.view(n, -1, *pixels.shape[-2:])


class DualDecoder(nn.Module):
    """The pixel decoder (three U-Net steps and a 4x upsampler) and the colour decoder it feeds."""

    def __init__(self, dims: Sequence[int], num_queries: int, dec_layers: int) -> None:
        super().__init__()
        widths = (NF, NF, NF // 2)  # out of the steps to strides 16, 8, 4
        ups = (dims[3], *widths[:2])
        skips = (dims[2], dims[1], dims[0])
        self.layers = nn.ModuleList(UpBlock(u, s, w) for u, s, w in zip(ups, skips, widths, strict=True))
        self.last_shuf = ShuffleUp(NF // 2, NF // 2, 4, batch_norm=False)
        self.color_decoder = ColourDecoder(widths, num_queries, dec_layers)

    def forward(self, features: Sequence[Tensor]) -> Tensor:
        x = features[3]
        scales = []
        for layer, skip in zip(self.layers, (features[2], features[1], features[0]), strict=True):
            x = layer(x, skip)
            scales.append(x)
        return self.color_decoder(scales, self.last_shuf(x))


# ------------------------------------------------------------------------------------------------ the net


class DDColor(nn.Module):
    """DDColor as a chromaflow colour net: ``forward(l, ab_hint, mask)`` takes CIE L* ``(N, 1, H, W)`` in
    [0, 100] (H and W multiples of 32; hints are not used) and returns ab ``(N, 2, H, W)`` in Lab units.

    :meth:`forward_rgb` is the authors' network itself: RGB in [0, 1] in, ab out.
    """

    accepts_hints: ClassVar[bool] = False
    output_stride: ClassVar[int] = 1
    input_size: ClassVar[int] = DEFAULT_SIDE  # the side an engine runs it at unless told otherwise

    mean: Tensor
    std: Tensor

    def __init__(
        self, arch: str = "ddcolor-large", num_queries: int = NUM_QUERIES, dec_layers: int = DEC_LAYERS
    ) -> None:
        super().__init__()
        if arch not in VARIANTS:
            raise ModelError(f"unknown DDColor architecture {arch!r}: use one of {', '.join(VARIANTS)}")
        self.arch = arch
        variant = VARIANTS[arch]
        self.encoder = Encoder(variant)
        self.decoder = DualDecoder(variant.dims, num_queries, dec_layers)
        self.refine_net = nn.Sequential(nn.Sequential(SpectralConv2d(num_queries + 3, 2, 1, bias=True)))
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1))

    def forward_rgb(self, rgb: Tensor) -> Tensor:
        """ab ``(N, 2, H, W)`` for sRGB ``(N, 3, H, W)`` in [0, 1] (normalised here with ImageNet statistics)."""
        x = (rgb - self.mean) / self.std
        colour_maps = self.decoder(self.encoder(x))
        return self.refine_net(torch.cat((colour_maps, x), dim=1))

    def forward(self, l: Tensor, ab_hint: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        check_side(l.shape[-2], l.shape[-1])
        return self.forward_rgb(gray_to_rgb(l).to(self.mean.dtype))


# ------------------------------------------------------------------------------------------------ loading


def unwrap_checkpoint(data: Any, source: str = "the checkpoint") -> dict[str, Tensor]:
    """The state_dict inside a DDColor checkpoint: the authors' ``{"params": ...}`` (BasicSR's container; also
    ``params_ema``, ``state_dict``, ``model``) or a bare state_dict, with any ``module.`` prefix removed."""
    if isinstance(data, Mapping):
        for key in _CONTAINER_KEYS:
            nested = data.get(key)
            if isinstance(nested, Mapping):
                data = nested
                break
    if not isinstance(data, Mapping) or not data:
        raise ModelError(f"{source} does not hold a state_dict (a mapping of names to tensors)")
    state: dict[str, Tensor] = {}
    for key, value in data.items():
        if not isinstance(key, str) or not isinstance(value, Tensor):
            raise ModelError(f"{source} is not a state_dict: entry {key!r} is not a named tensor")
        state[key.removeprefix("module.")] = value
    return state


def arch_of_state(state: Mapping[str, Tensor]) -> str:
    """Which DDColor size a state_dict holds (from its stem's width); a :class:`ModelError` if none."""
    stem = state.get("encoder.arch.downsample_layers.0.0.weight")
    if stem is None:
        raise ModelError(
            "this file is not a DDColor checkpoint (no 'encoder.arch.downsample_layers.0.0.weight' tensor); "
            "use the authors' ddcolor_*.pth files or a fine-tune of them"
        )
    for arch, variant in VARIANTS.items():
        if stem.shape[0] == variant.dims[0]:
            return arch
    raise ModelError(
        f"this DDColor checkpoint has an encoder of width {stem.shape[0]}, which no known size has"
    )


def _layout_of(state: Mapping[str, Tensor]) -> tuple[int, int]:
    """(queries, decoder layers) a state_dict was trained with (the authors': 100 and 9)."""
    queries = state.get("decoder.color_decoder.query_feat.weight")
    num_queries = int(queries.shape[0]) if queries is not None else NUM_QUERIES
    prefix = "decoder.color_decoder.transformer_ffn_layers."
    heads = (k[len(prefix) :].split(".")[0] for k in state if k.startswith(prefix))
    indices = {int(h) for h in heads if h.isdigit()}
    return num_queries, (max(indices) + 1 if indices else DEC_LAYERS)


def load_ddcolor_state(net: DDColor, state: Mapping[str, Tensor]) -> DDColor:
    """Load a state_dict strictly, its floating-point tensors as float32 (a fine-tune may be stored in half
    precision); the ImageNet constants and batch-norm step counters a file lacks are filled in."""
    full = {k: v.float() if v.is_floating_point() else v for k, v in state.items()}
    for key in net.state_dict():
        if key not in full and key in _DEFAULTS:
            full[key] = _DEFAULTS[key]()
        elif key not in full and key.endswith("num_batches_tracked"):
            full[key] = torch.zeros((), dtype=torch.long)
    try:
        net.load_state_dict(full, strict=True, assign=net.mean.is_meta)
    except RuntimeError as err:
        detail = " ".join(str(err).splitlines()[:3])
        raise ModelError(
            f"the weights do not fit the {net.arch} architecture ({detail[:400]}); check that the file is a "
            f"DDColor checkpoint of that size (ddcolor-tiny: ConvNeXt-T, ddcolor-large: ConvNeXt-L)"
        ) from err
    return net


def build(arch: str, state: Mapping[str, Tensor] | None = None) -> DDColor:
    """A DDColor net of size ``arch``: freshly initialised (training mode), or loaded from ``state`` (eval
    mode, with the query count and decoder depth the state was trained with)."""
    if state is None:
        return DDColor(arch).train()
    found = arch_of_state(state)
    if found != arch:
        raise ModelError(f"this file holds a {found} net, not {arch}: load it with --arch {found}")
    num_queries, dec_layers = _layout_of(state)
    with torch.device("meta"):  # no memory or initialisation for weights about to be replaced
        net = DDColor(arch, num_queries=num_queries, dec_layers=dec_layers)
    return load_ddcolor_state(net, state).eval()


def load_ddcolor(arch: str, path: str | Path) -> DDColor:
    """A DDColor net in eval mode from a weight file (tensors only, never unpickled code)."""
    return build(arch, unwrap_checkpoint(load_tensors(path), str(path)))
