"""The protocols colour nets follow, so the Colorizer and the trainer use a net's abilities by type, not by probing.

Every colour net takes ``(l, ab_hint, mask)``: ``l`` ``(N, 1, S, S)`` CIE L* in [0, 100], ``ab_hint`` ``(N, 2, S, S)`` in
ab units, ``mask`` ``(N, 1, S, S)`` in {0, 1}, and returns ab in ab units, ``(N, 2, h, w)`` with ``h, w <= S`` (the
Colorizer upsamples). ``accepts_hints`` says whether it uses the hint inputs.
"""

from typing import ClassVar, Protocol, runtime_checkable

from torch import Tensor


@runtime_checkable
class ColorNet(Protocol):
    """A colour net (see the module docstring)."""

    accepts_hints: ClassVar[bool]

    def __call__(self, l: Tensor, ab_hint: Tensor, mask: Tensor) -> Tensor: ...


@runtime_checkable
class BinnedColorNet(Protocol):
    """A colour net that classifies each pixel over ab bins (``base``): training scores its bin logits directly
    (cross-entropy against soft-encoded targets) and decodes them at a chosen temperature.

    (Members are methods and properties: a runtime protocol check looks attributes up on the class, where a
    module's buffers are not.)
    """

    @property
    def bin_centres(self) -> Tensor: ...

    def logits(self, l: Tensor, ab_hint: Tensor, mask: Tensor) -> Tensor: ...

    def decode(self, logits: Tensor, temperature: float | None = None) -> Tensor: ...
