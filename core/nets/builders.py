"""How each architecture is made: fresh (to train) or filled from its weight file (to run).

Every entry of the model registry carries one of these builders, as torchvision's weights carry their model
builder, so :func:`chromaflow.core.registry.load` is the one dispatch from a model name (or a weight file and an
architecture name) to a ready net.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import torch
from torch import nn

from chromaflow.core.errors import UsageError
from chromaflow.core.nets import (
    base,
    base_v2,
    blazeface,
    ddcolor,
    deoldify,
    effnet_dfdc,
    mesonet,
    mtcnn,
    zhang,
)
from chromaflow.core.weights_io import checkpoint_info

NetKind = Literal["colorizer", "classifier", "detector"]
FileFormat = Literal["state_dict", "keras-h5"]


@dataclass(frozen=True)
class Builder:
    """One architecture: what it takes, what its weight file is, and how to make it.

    ``new(width)`` makes a freshly initialised net in training mode (``width``: its channel width, None for the
    architecture's default); ``from_file(path)`` makes one in eval mode filled from a weight file of
    ``file_format``, read safely (``torch.load(weights_only=True)`` for state_dicts, h5py for Keras files).
    ``width_option`` says whether ``chromaflow train --width`` sets the width (the Zhang nets keep their
    published width). ``trainable`` says whether ``chromaflow train colorizer`` offers it (the ports of published
    nets such as DDColor run the authors' weights; this project does not train them).
    """

    arch: str
    kind: NetKind
    input_size: int
    inputs: str
    file_format: FileFormat
    width_option: bool
    new: Callable[[int | None], nn.Module]
    from_file: Callable[[Path], nn.Module]
    trainable: bool = True

    def build(self, width: int | None = None) -> nn.Module:
        """A freshly initialised net (training mode)."""
        return self.new(width)

    def load(self, path: str | Path) -> nn.Module:
        """A net filled from the weight file at ``path`` (eval mode)."""
        return self.from_file(Path(path))


def _new_base(width: int | None) -> nn.Module:
    return base.build_base(base.DEFAULT_WIDTH if width is None else width)


def _new_zhang(arch: str, width: int | None) -> nn.Module:
    return zhang.build_zhang(arch, width=zhang.DEFAULT_WIDTH if width is None else width).train()


def _new_meso(arch: str, width: int | None) -> nn.Module:
    _fixed_size(arch, width)
    return mesonet.build(arch)


def _new_blazeface(width: int | None) -> nn.Module:
    _fixed_size("blazeface", width)
    return blazeface.BlazeFace()


def _fixed_size(arch: str, width: int | None) -> None:
    if width is not None:
        raise UsageError(f"the {arch} architecture has a fixed size; it takes no width")


_LAB_INPUTS = (
    "CIE L* (N, 1, S, S) in [0, 100], ab hints (N, 2, S, S) in ab units, hint mask (N, 1, S, S) in {0, 1}"
)
_MESO_INPUTS = "RGB face crops (N, 3, 256, 256), pixels / 255"


def _colorizer(
    arch: str,
    new: Callable[[int | None], nn.Module],
    from_file: Callable[[Path], nn.Module],
    width_option: bool,
) -> Builder:
    return Builder(
        arch=arch,
        kind="colorizer",
        input_size=256,
        inputs=_LAB_INPUTS,
        file_format="state_dict",
        width_option=width_option,
        new=new,
        from_file=from_file,
    )


def _mesonet(arch: str) -> Builder:
    return Builder(
        arch=arch,
        kind="classifier",
        input_size=mesonet.INPUT_SIZE,
        inputs=_MESO_INPUTS,
        file_format="keras-h5",
        width_option=False,
        new=partial(_new_meso, arch),
        from_file=partial(mesonet.load_meso, arch),
    )


BASE = _colorizer("base", _new_base, base.load_base, width_option=True)
SIGGRAPH17 = _colorizer(
    "siggraph17",
    partial(_new_zhang, "siggraph17"),
    partial(zhang.load_zhang, "siggraph17"),
    width_option=False,
)
ECCV16 = _colorizer(
    "eccv16", partial(_new_zhang, "eccv16"), partial(zhang.load_zhang, "eccv16"), width_option=False
)
MESO4 = _mesonet("meso4")
MESOINCEPTION4 = _mesonet("mesoinception4")
BLAZEFACE = Builder(
    arch="blazeface",
    kind="detector",
    input_size=blazeface.INPUT_SIZE,
    inputs="RGB (N, 3, 128, 128), pixels / 127.5 - 1",
    file_format="state_dict",
    width_option=False,
    new=_new_blazeface,
    from_file=blazeface.load_net,
)


def _new_mtcnn(net: mtcnn.NetName, width: int | None) -> nn.Module:
    _fixed_size(f"mtcnn-{net}", width)
    return mtcnn.NETS[net]()


def _mtcnn(net: mtcnn.NetName) -> Builder:
    """One of MTCNN's three nets (facenet-pytorch's parameter names); the cascade is chromaflow.core.nets.mtcnn."""
    side = mtcnn.INPUT_SIZES[net]
    return Builder(
        arch=f"mtcnn-{net}",
        kind="detector",
        input_size=side,
        inputs=f"RGB (N, 3, {side}, {side}){' or larger' if net == 'pnet' else ''}, (pixels - 127.5) / 128",
        file_format="state_dict",
        width_option=False,
        new=partial(_new_mtcnn, net),
        from_file=partial(mtcnn.load_net, net),
    )


MTCNN_PNET, MTCNN_RNET, MTCNN_ONET = _mtcnn("pnet"), _mtcnn("rnet"), _mtcnn("onet")


def _new_effnet_dfdc(width: int | None) -> nn.Module:
    _fixed_size(effnet_dfdc.ARCH, width)
    return effnet_dfdc.build(train=True)


EFFNET_B7_DFDC = Builder(
    arch=effnet_dfdc.ARCH,
    kind="classifier",
    input_size=effnet_dfdc.INPUT_SIZE,
    inputs="RGB face crops (N, 3, 380, 380), pixels / 255 normalised with the ImageNet mean and std",
    file_format="state_dict",
    width_option=False,
    new=_new_effnet_dfdc,
    from_file=effnet_dfdc.load,
)


def _new_ddcolor(arch: str, width: int | None) -> nn.Module:
    _fixed_size(arch, width)
    return ddcolor.build(arch)


def _ddcolor(arch: str) -> Builder:
    return Builder(
        arch=arch,
        kind="colorizer",
        input_size=ddcolor.DEFAULT_SIDE,
        inputs="CIE L* (N, 1, S, S) in [0, 100], S a multiple of 32 (512 by default, 256 faster); no hints",
        file_format="state_dict",
        width_option=False,
        new=partial(_new_ddcolor, arch),
        from_file=partial(ddcolor.load_ddcolor, arch),
        trainable=False,
    )


DDCOLOR_TINY = _ddcolor("ddcolor-tiny")
DDCOLOR_LARGE = _ddcolor("ddcolor-large")


def _new_deoldify(arch: str, width: int | None) -> nn.Module:
    _fixed_size(arch, width)
    return deoldify.build(arch)


def _deoldify(arch: str) -> Builder:
    """A DeOldify generator; its default side is the authors' render factor 35 (a model entry may differ)."""
    return Builder(
        arch=arch,
        kind="colorizer",
        input_size=deoldify.side_for_render_factor(deoldify.RENDER_FACTORS["artistic"]),
        inputs="CIE L* (N, 1, S, S) in [0, 100], S = 16 x render factor (560 by default); no hints",
        file_format="state_dict",
        width_option=False,
        new=partial(_new_deoldify, arch),
        from_file=partial(deoldify.load, arch),
        trainable=False,
    )


DEOLDIFY_DEEP = _deoldify("deoldify-deep")  # ResNet-34, deep decoder: ColorizeArtistic_gen.pth
DEOLDIFY_WIDE = _deoldify("deoldify-wide")  # ResNet-101, wide decoder: ColorizeStable/Video_gen.pth


def _new_base_v2(width: int | None) -> nn.Module:
    return base_v2.build_base_v2(base_v2.DEFAULT_WIDTH if width is None else width)


# base's contract on an ImageNet MobileNetV2 encoder (its pretrained file: registry entry mobilenet-v2-imagenet)
BASE_V2 = _colorizer(base_v2.ARCH, _new_base_v2, base_v2.load_base_v2, width_option=True)

BUILDERS: dict[str, Builder] = {
    b.arch: b
    for b in (
        BASE,
        SIGGRAPH17,
        ECCV16,
        DDCOLOR_TINY,
        DDCOLOR_LARGE,
        DEOLDIFY_DEEP,
        DEOLDIFY_WIDE,
        BASE_V2,
        MESO4,
        MESOINCEPTION4,
        BLAZEFACE,
        MTCNN_PNET,
        MTCNN_RNET,
        MTCNN_ONET,
        EFFNET_B7_DFDC,
    )
}


def archs(kind: NetKind | None = None) -> tuple[str, ...]:
    """The architecture names (of ``kind``, when given)."""
    return tuple(a for a, b in BUILDERS.items() if kind is None or b.kind == kind)


def builder_for(arch: str, kind: NetKind | None = None) -> Builder:
    """The builder of architecture ``arch``; a :class:`UsageError` listing the choices when there is none (of
    ``kind``)."""
    builder = BUILDERS.get(arch.strip().lower())
    if builder is None or (kind is not None and builder.kind != kind):
        raise UsageError(
            f"unknown {kind or 'model'} architecture {arch!r}: use one of {', '.join(archs(kind))}"
        )
    return builder


def arch_of_file(path: Path) -> str | None:
    """The architecture a state_dict checkpoint records under its ``arch`` entry, if any (Keras files record
    none)."""
    if path.suffix.lower() == ".h5":
        return None
    with torch.serialization.safe_globals([slice]):  # DeOldify's files hold a slice (see deoldify.load)
        arch = checkpoint_info(path).get("arch")
    return arch if isinstance(arch, str) else None
