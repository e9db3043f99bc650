"""Zhang et al.'s colorization networks, ECCV16 and SIGGRAPH17, compatible with the official checkpoints.

Module names, layer positions and shapes are chosen so that ``state_dict()`` has exactly the keys and shapes of
the official PyTorch releases (``colorization_release_v2-9b330a0b.pth`` and ``siggraph17-df00044c.pth``), so those
files load unchanged. ``width`` scales every hidden channel count (64 is the official size); smaller widths give
tiny networks with the same key names, for tests and experiments.

Both follow the project's colour-net protocol: ``forward(l, ab_hint, mask) -> ab``, with ``l`` the CIE L* plane in
[0, 100], ``ab_hint`` in ab units, ``mask`` in {0, 1}, all ``(N, C, S, S)``; the result is ab in ab units at the
network's own output resolution (S/4 for ECCV16, S for SIGGRAPH17). ``S`` must be a multiple of 8.

Facts (R. Zhang, P. Isola, A. Efros, ECCV 2016; R. Zhang, J.-Y. Zhu et al., SIGGRAPH 2017; the reference
package ``rz-colorization``): inputs are normalised as L' = (L - 50) / 100 and ab' = ab / 110, and the output is
110 times the network output. ECCV16 predicts a 313-bin distribution at 1/4 resolution and takes its expectation
with a fixed 1x1 projection (``model_out``); SIGGRAPH17 is a U-Net with a tanh regression head.
"""

from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn

from chromaflow.core.errors import ModelError
from chromaflow.core.weights_io import load_state_dict

L_CENTRE = 50.0
L_SCALE = 100.0
AB_SCALE = 110.0
ECCV16_BINS = 313
SIGGRAPH17_CLASSES = 529
DEFAULT_WIDTH = 64  # the published nets' width


def _conv(c_in: int, c_out: int, stride: int = 1, dilation: int = 1) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, kernel_size=3, stride=stride, padding=dilation, dilation=dilation)


def _up(c_in: int, c_out: int) -> nn.ConvTranspose2d:
    """A 2x learned upsampling."""
    return nn.ConvTranspose2d(c_in, c_out, kernel_size=4, stride=2, padding=1)


def _stage(
    c_in: int,
    c_out: int,
    depth: int,
    *,
    last_stride: int = 1,
    dilation: int = 1,
    lead_relu: bool = False,
) -> nn.Sequential:
    """``depth`` 3x3 convolutions, each followed by a ReLU, then batch norm.

    ``lead_relu`` puts a ReLU first (the decoder stages of SIGGRAPH17 start from a sum of two branches).
    """
    layers: list[nn.Module] = [nn.ReLU(inplace=True)] if lead_relu else []
    for i in range(depth):
        stride = last_stride if i == depth - 1 else 1
        layers += [_conv(c_in if i == 0 else c_out, c_out, stride, dilation), nn.ReLU(inplace=True)]
    layers.append(nn.BatchNorm2d(c_out))
    return nn.Sequential(*layers)


def _normalised_l(l: Tensor) -> Tensor:
    return (l - L_CENTRE) / L_SCALE


class ECCV16(nn.Module):
    """ "Colorful Image Colorization": L* in, ab out at 1/4 of the input resolution. Ignores hints."""

    accepts_hints = False
    output_stride = 4

    def __init__(self, width: int = DEFAULT_WIDTH) -> None:
        super().__init__()
        w = width
        self.model1 = _stage(1, w, 2, last_stride=2)
        self.model2 = _stage(w, 2 * w, 2, last_stride=2)
        self.model3 = _stage(2 * w, 4 * w, 3, last_stride=2)
        self.model4 = _stage(4 * w, 8 * w, 3)
        self.model5 = _stage(8 * w, 8 * w, 3, dilation=2)
        self.model6 = _stage(8 * w, 8 * w, 3, dilation=2)
        self.model7 = _stage(8 * w, 8 * w, 3)
        self.model8 = nn.Sequential(
            _up(8 * w, 4 * w),
            nn.ReLU(inplace=True),
            _conv(4 * w, 4 * w),
            nn.ReLU(inplace=True),
            _conv(4 * w, 4 * w),
            nn.ReLU(inplace=True),
            nn.Conv2d(4 * w, ECCV16_BINS, kernel_size=1),
        )
        # Fixed projection from the bin distribution to its expected ab (the bin centres / 110).
        self.model_out = nn.Conv2d(ECCV16_BINS, 2, kernel_size=1, bias=False)

    def forward(self, l: Tensor, ab_hint: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        x = _normalised_l(l)
        for stage in (self.model1, self.model2, self.model3, self.model4, self.model5, self.model6):
            x = stage(x)
        logits = self.model8(self.model7(x))
        return AB_SCALE * self.model_out(torch.softmax(logits, dim=1))


class SIGGRAPH17(nn.Module):
    """ "Real-Time User-Guided Image Colorization": L*, ab hints and hint mask in, ab out at full resolution."""

    accepts_hints = True
    output_stride = 1

    def __init__(self, width: int = DEFAULT_WIDTH, classes: int = SIGGRAPH17_CLASSES) -> None:
        super().__init__()
        w = width
        # Encoder (downsampling between stages is a stride-2 pick, done in forward).
        self.model1 = _stage(4, w, 2)
        self.model2 = _stage(w, 2 * w, 2)
        self.model3 = _stage(2 * w, 4 * w, 3)
        self.model4 = _stage(4 * w, 8 * w, 3)
        self.model5 = _stage(8 * w, 8 * w, 3, dilation=2)
        self.model6 = _stage(8 * w, 8 * w, 3, dilation=2)
        self.model7 = _stage(8 * w, 8 * w, 3)
        # Decoder: each level adds an upsampled path and a shortcut from the encoder.
        self.model8up = nn.Sequential(_up(8 * w, 4 * w))
        self.model3short8 = nn.Sequential(_conv(4 * w, 4 * w))
        self.model8 = _stage(4 * w, 4 * w, 2, lead_relu=True)
        self.model9up = nn.Sequential(_up(4 * w, 2 * w))
        self.model2short9 = nn.Sequential(_conv(2 * w, 2 * w))
        self.model9 = _stage(2 * w, 2 * w, 1, lead_relu=True)
        self.model10up = nn.Sequential(_up(2 * w, 2 * w))
        self.model1short10 = nn.Sequential(_conv(w, 2 * w))
        self.model10 = nn.Sequential(nn.ReLU(inplace=True), _conv(2 * w, 2 * w), nn.LeakyReLU(0.2))
        # The classification head is part of the checkpoint but unused at inference.
        self.model_class = nn.Sequential(nn.Conv2d(4 * w, classes, kernel_size=1))
        self.model_out = nn.Sequential(nn.Conv2d(2 * w, 2, kernel_size=1), nn.Tanh())

    def forward(self, l: Tensor, ab_hint: Tensor | None = None, mask: Tensor | None = None) -> Tensor:
        if ab_hint is None:
            ab_hint = l.new_zeros((l.shape[0], 2, *l.shape[2:]))
        if mask is None:
            mask = l.new_zeros(l.shape)
        x = torch.cat((_normalised_l(l), ab_hint / AB_SCALE, mask), dim=1)
        f1 = self.model1(x)
        f2 = self.model2(f1[:, :, ::2, ::2])
        f3 = self.model3(f2[:, :, ::2, ::2])
        x = self.model4(f3[:, :, ::2, ::2])
        x = self.model7(self.model6(self.model5(x)))
        x = self.model8(self.model8up(x) + self.model3short8(f3))
        x = self.model9(self.model9up(x) + self.model2short9(f2))
        x = self.model10(self.model10up(x) + self.model1short10(f1))
        return AB_SCALE * self.model_out(x)


ARCHITECTURES: dict[str, type[nn.Module]] = {"eccv16": ECCV16, "siggraph17": SIGGRAPH17}


def width_of(state_dict: Mapping[str, Tensor]) -> int:
    """The ``width`` a Zhang-family state_dict was built with (64 for the official files)."""
    weight = state_dict.get("model1.0.weight")
    if weight is None:
        raise ModelError("this file is not an ECCV16/SIGGRAPH17 state_dict (no 'model1.0.weight' tensor)")
    return int(weight.shape[0])


def load_zhang_state(net: nn.Module, state_dict: Mapping[str, Tensor]) -> nn.Module:
    """Load a state_dict strictly; batch-norm step counters absent from older files are filled in."""
    state = dict(state_dict)
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = torch.zeros_like(value)
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as err:
        first = str(err).splitlines()[0:3]
        raise ModelError(
            f"the weights do not fit the {type(net).__name__} architecture ({' '.join(first)}); "
            "check that the file is the right model"
        ) from err
    return net


def build_zhang(
    arch: str, state_dict: Mapping[str, Tensor] | None = None, *, width: int = DEFAULT_WIDTH
) -> nn.Module:
    """An ECCV16 or SIGGRAPH17 net in eval mode, sized to and loaded from ``state_dict`` when given (else of
    ``width``)."""
    if arch not in ARCHITECTURES:
        raise ModelError(f"unknown Zhang architecture {arch!r}: use one of {', '.join(ARCHITECTURES)}")
    net = ARCHITECTURES[arch](width=width_of(state_dict) if state_dict is not None else width)
    if state_dict is not None:
        load_zhang_state(net, state_dict)
    return net.eval()


def load_zhang(arch: str, path: str | Path) -> nn.Module:
    """An ECCV16 or SIGGRAPH17 net in eval mode from a state_dict file (tensors only, never unpickled code)."""
    return build_zhang(arch, load_state_dict(path))
