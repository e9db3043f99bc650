"""MesoNet deepfake classifiers (Afchar et al., WIFS 2018): Meso4 and MesoInception4, with a loader for the
official Keras 2.1.5 ``save_weights`` files (read with h5py, never unpickled).

Input: RGB face crops, NCHW float in [0, 1] (pixels / 255), 256 x 256. Output: the logit of P(REAL); the fake score
is ``1 - sigmoid(logit)``. Architecture facts: ``shared/reference/mesonet.md``.
"""

from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from chromaflow.core.errors import ModelError

Arch = Literal["meso4", "mesoinception4"]
ARCHS: tuple[str, ...] = ("meso4", "mesoinception4")
INPUT_SIZE = 256
KERAS_BN_EPS = 1e-3  # Keras BatchNormalization default (PyTorch uses 1e-5)
KerasLayers = tuple[list[nn.Conv2d], list[nn.BatchNorm2d], list[nn.Linear]]


def _bn(channels: int) -> nn.BatchNorm2d:
    return nn.BatchNorm2d(channels, eps=KERAS_BN_EPS)


class _Head(nn.Module):
    """Flatten (Keras order: H, W, C) -> dropout -> dense 1024->16 -> LeakyReLU(0.1) -> dropout -> dense 16->1."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(1024, 16)
        self.fc2 = nn.Linear(16, 1)
        self.drop = nn.Dropout(0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.permute(0, 2, 3, 1).flatten(1)  # NHWC flatten, as Keras does
        x = F.leaky_relu(self.fc1(self.drop(x)), 0.1)
        return self.fc2(self.drop(x)).squeeze(1)


class _ConvBlock(nn.Module):
    """conv ('same') -> ReLU -> BatchNorm -> max-pool."""

    def __init__(self, cin: int, cout: int, k: int, pool: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, padding=k // 2)
        self.bn = _bn(cout)
        self.pool = pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _pool_same(self.bn(F.relu(self.conv(x))), self.pool)


def _pool_same(x: torch.Tensor, k: int) -> torch.Tensor:
    """Keras MaxPooling2D(k, padding='same'): pads the bottom/right with -inf when the size is not a multiple."""
    h, w = x.shape[-2:]
    ph, pw = (-h) % k, (-w) % k
    if ph or pw:
        x = F.pad(x, (0, pw, 0, ph), value=float("-inf"))
    return F.max_pool2d(x, k)


class Meso4(nn.Module):
    """Meso4: four conv blocks (8, 8, 16, 16 channels) and a small dense head; returns logits of P(REAL)."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            _ConvBlock(3, 8, 3, 2), _ConvBlock(8, 8, 5, 2), _ConvBlock(8, 16, 5, 2), _ConvBlock(16, 16, 5, 4)
        )
        self.head = _Head()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))

    def keras_layers(self) -> KerasLayers:
        """The layers in the order the Keras file lists them, grouped by kind."""
        blocks = [b for b in self.blocks if isinstance(b, _ConvBlock)]
        return [b.conv for b in blocks], [b.bn for b in blocks], [self.head.fc1, self.head.fc2]


class _Inception(nn.Module):
    """Four branches: 1x1; 1x1 + 3x3; 1x1 + 3x3 dilation 2; 1x1 + 3x3 dilation 3; concatenated in that order."""

    def __init__(self, cin: int, a: int, b: int, c: int, d: int) -> None:
        super().__init__()
        self.b1 = nn.Conv2d(cin, a, 1)
        self.b2_in, self.b2 = nn.Conv2d(cin, b, 1), nn.Conv2d(b, b, 3, padding=1)
        self.b3_in, self.b3 = nn.Conv2d(cin, c, 1), nn.Conv2d(c, c, 3, padding=2, dilation=2)
        self.b4_in, self.b4 = nn.Conv2d(cin, d, 1), nn.Conv2d(d, d, 3, padding=3, dilation=3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                F.relu(self.b1(x)),
                F.relu(self.b2(F.relu(self.b2_in(x)))),
                F.relu(self.b3(F.relu(self.b3_in(x)))),
                F.relu(self.b4(F.relu(self.b4_in(x)))),
            ],
            1,
        )

    def keras_order(self) -> list[nn.Conv2d]:
        """The convs in the order Keras lists them: the three 1x1 feeding branches 2-4, branch 1, the three 3x3."""
        return [self.b2_in, self.b3_in, self.b4_in, self.b1, self.b2, self.b3, self.b4]


class MesoInception4(nn.Module):
    """MesoInception4: two inception blocks, two conv blocks and Meso4's head; returns logits of P(REAL)."""

    def __init__(self) -> None:
        super().__init__()
        self.inc1, self.bn1 = _Inception(3, 1, 4, 4, 2), _bn(11)
        self.inc2, self.bn2 = _Inception(11, 2, 4, 4, 2), _bn(12)
        self.conv3 = _ConvBlock(12, 16, 5, 2)
        self.conv4 = _ConvBlock(16, 16, 5, 4)
        self.head = _Head()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = _pool_same(self.bn1(self.inc1(x)), 2)
        x = _pool_same(self.bn2(self.inc2(x)), 2)
        return self.head(self.conv4(self.conv3(x)))

    def keras_layers(self) -> KerasLayers:
        """The layers in the order the Keras file lists them, grouped by kind."""
        convs = [*self.inc1.keras_order(), *self.inc2.keras_order(), self.conv3.conv, self.conv4.conv]
        bns = [self.bn1, self.bn2, self.conv3.bn, self.conv4.bn]
        return convs, bns, [self.head.fc1, self.head.fc2]


MesoNet = Meso4 | MesoInception4
NETWORKS: dict[str, type[MesoNet]] = {"meso4": Meso4, "mesoinception4": MesoInception4}


def build(arch: str) -> MesoNet:
    """An untrained network of the given architecture (``meso4`` or ``mesoinception4``)."""
    if arch not in NETWORKS:
        raise ModelError(f"unknown MesoNet architecture {arch!r}: use one of {', '.join(ARCHS)}")
    return NETWORKS[arch]()


def _read_keras_layers(path: Path) -> list[tuple[str, list[np.ndarray]]]:
    """(layer name, weight arrays) for every layer with weights, in the file's ``layer_names`` order."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            root = f.get("model_weights", f)
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in root.attrs["layer_names"]]
            layers = []
            for name in names:
                group = root[name]
                wnames = [w.decode() if isinstance(w, bytes) else str(w) for w in group.attrs["weight_names"]]
                if wnames:
                    layers.append((name, [np.asarray(group[w], dtype=np.float32) for w in wnames]))
            return layers
    except (OSError, KeyError, ValueError) as exc:
        raise ModelError(
            f"cannot read MesoNet weights {path}: {exc}; the file is not a Keras HDF5 weights file or is damaged. "
            "Download it again with `chromaflow models download` or import an official MesoNet .h5 file"
        ) from exc


def _assign(param: torch.Tensor | None, value: np.ndarray, where: str) -> None:
    if param is None:
        raise ModelError(f"MesoNet layer {where} has no parameter to fill (internal error)")
    if tuple(param.shape) != value.shape:
        raise ModelError(
            f"MesoNet weights do not fit the architecture at {where}: expected shape {tuple(param.shape)}, "
            f"found {value.shape}; check that the file matches the chosen architecture (Meso4 vs MesoInception4)"
        )
    with torch.no_grad():
        param.copy_(torch.from_numpy(np.ascontiguousarray(value)))


def load_keras_weights(net: MesoNet, path: str | Path) -> MesoNet:
    """Fill ``net`` (a :class:`Meso4` or :class:`MesoInception4`) from an official Keras ``.h5`` weights file."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(
            f"MesoNet weights file {path} does not exist; download it with `chromaflow models download`"
        )
    layers = _read_keras_layers(path)
    convs, bns, denses = net.keras_layers()
    conv_layers = [(n, w) for n, w in layers if len(w) == 2 and w[0].ndim == 4]
    dense_layers = [(n, w) for n, w in layers if len(w) == 2 and w[0].ndim == 2]
    bn_layers = [(n, w) for n, w in layers if len(w) == 4]
    counts = (len(conv_layers), len(bn_layers), len(dense_layers))
    if counts != (len(convs), len(bns), len(denses)) or len(layers) != sum(counts):
        raise ModelError(
            f"MesoNet weights {path} hold {counts[0]} conv, {counts[1]} batch-norm and {counts[2]} dense layers; "
            f"{type(net).__name__} needs {len(convs)}, {len(bns)} and {len(denses)}: wrong architecture or file"
        )
    for conv, (name, (kernel, bias)) in zip(convs, conv_layers, strict=True):
        _assign(conv.weight, kernel.transpose(3, 2, 0, 1), name)  # HWIO -> OIHW
        _assign(conv.bias, bias, name)
    for bn, (name, (gamma, beta, mean, var)) in zip(bns, bn_layers, strict=True):
        for p, v in ((bn.weight, gamma), (bn.bias, beta), (bn.running_mean, mean), (bn.running_var, var)):
            _assign(p, v, name)
    for fc, (name, (kernel, bias)) in zip(denses, dense_layers, strict=True):
        _assign(fc.weight, kernel.T, name)  # (in, out) -> (out, in)
        _assign(fc.bias, bias, name)
    return net.eval()


def arch_for_file(path: str | Path) -> str:
    """Guess the architecture from an official file name (``Meso4_*.h5`` or ``MesoInception_*.h5``)."""
    stem = Path(path).name.lower()
    if stem.startswith("mesoinception"):
        return "mesoinception4"
    if stem.startswith("meso4"):
        return "meso4"
    raise ModelError(f"cannot tell the MesoNet architecture of {path}: pass arch='meso4' or 'mesoinception4'")


def load_meso(arch: str | None, path: str | Path) -> MesoNet:
    """Build ``arch`` (guessed from the file name when None) and load the Keras weights at ``path``; eval mode.

    Registered classifiers load by name through :func:`chromaflow.core.registry.load`.
    """
    return load_keras_weights(build(arch or arch_for_file(path)), path)
