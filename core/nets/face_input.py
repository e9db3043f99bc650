"""What a deepfake classifier expects of a face crop, and what its output means.

Classifiers differ in their framing, crop side, pixel normalisation and in which class their logit is of: MesoNet
takes 256 px crops framed by the detector's own rule (``CROP_SPECS``), pixels / 255, and gives the logit of
P(REAL); the DFDC winner's EfficientNet takes 380 px crops of the box widened by a third on each side, ImageNet
normalisation, and gives the logit of P(FAKE). A net says which by a ``face_input`` attribute (a :class:`FaceInput`);
nets without one are MesoNet-like (:data:`MESONET_INPUT`), so a loaded MesoNet given as a module still works.
"""

from dataclasses import dataclass
from typing import Literal

from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


@dataclass(frozen=True)
class FaceInput:
    """``size``: crop side; ``mean``/``std``: per-channel normalisation of pixels / 255; ``logit_of``: the class the
    net's logit is of; ``margin_divisor``: None to frame the face by the detector's rule, else the DFDC rule with
    ``side // margin_divisor`` of the box added on each side; ``precision``: the default compute precision
    (``"auto"``: bf16/fp16 on CUDA, fp32 on the CPU; ``"fp32"``: always fp32, for small nets where half precision
    gains nothing)."""

    size: int
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    logit_of: Literal["real", "fake"] = "real"
    margin_divisor: int | None = None
    precision: str = "fp32"

    @property
    def plain(self) -> bool:
        """Whether this is MesoNet's input (the device-resident analysis engine makes only that one)."""
        return self == MESONET_INPUT


MESONET_INPUT = FaceInput(256)


def face_input_of(net: nn.Module) -> FaceInput:
    """The :class:`FaceInput` a classifier declares (MesoNet's when it declares none)."""
    declared = getattr(net, "face_input", None)
    return declared if isinstance(declared, FaceInput) else MESONET_INPUT
