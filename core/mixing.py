"""Two colour models as one: their ab combined once per frame by a rule the user names.

HAVC users colour a film with DeOldify and DDColor together; chromaflow does the same inside one
:class:`~chromaflow.core.colorizer.Colorizer` (``Colorizer("ddcolor-modelscope+deoldify-video")``, ``--model A+B``,
VapourSynth ``model=("A", "B")``). Each member runs at its own input side, its ab is brought to the frame's size,
and :meth:`MixRule.combine` makes one ab of the two. Everything after the Colorizer (smoothing, keyframe fallback,
the luma kept bit for bit, the device engine) sees one colour model, so it applies unchanged.

Rules:

- ``mean``: the weighted mean ``W * ab_first + (1 - W) * ab_second`` (``W``: ``--mix``, default 0.5). ``W = 1``
  gives the first model's ab exactly, ``W = 0`` the second's.
- ``saturated`` ("more saturated wins"): per pixel, the ab of the model whose chroma ``sqrt(a*^2 + b*^2)`` is larger
  (the first on ties). Automatic colorizers fail towards gray (sepia), so where one of them dares a colour and the
  other does not, the colour is kept. ``softness`` S (ab units, ``--mix-softness``) blends instead of picking: the
  first model's weight is ``sigmoid((C_first - C_second) / S)``, so where the two chromas differ by much more than
  S the stronger one is taken whole, and where they are close both are mixed, which avoids speckle at the seams.
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from chromaflow.core.errors import UsageError

MIX_RULES: tuple[str, ...] = ("mean", "saturated")
SEPARATOR = "+"
DEFAULT_WEIGHT = 0.5

Member = str | Path | nn.Module
Models = Member | tuple[Member, ...]  # one model, or two as a pair (``"A+B"`` is a str)


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class MixRule:
    """How two models' ab become one (module docstring). ``weight``: the first model's share under ``mean``;
    ``softness``: the blend width in ab units under ``saturated`` (0 = pick per pixel)."""

    rule: str = "mean"
    weight: float = DEFAULT_WEIGHT
    softness: float = 0.0

    def __post_init__(self) -> None:
        if self.rule not in MIX_RULES:
            raise UsageError(f"unknown mix rule {self.rule!r}: use {' or '.join(MIX_RULES)}")
        if not _number(self.weight) or not 0.0 <= self.weight <= 1.0:
            raise UsageError(
                f"--mix {self.weight!r} is not a weight: give the first model's share, from 0 to 1 (0.5: equal)"
            )
        if not _number(self.softness) or self.softness < 0:
            raise UsageError(
                f"--mix-softness {self.softness!r}: give a blend width in ab units >= 0 (0 picks per pixel)"
            )

    def combine(self, first: Tensor, second: Tensor) -> Tensor:
        """One ab ``(N, 2, H, W)`` from two of the same shape (float32, same device)."""
        if self.rule == "mean":
            return torch.lerp(
                second, first, self.weight
            )  # exact at the ends: weight 1 is `first`, 0 `second`
        c_first = torch.linalg.vector_norm(first, dim=1, keepdim=True)
        c_second = torch.linalg.vector_norm(second, dim=1, keepdim=True)
        if self.softness == 0:
            return torch.where(c_first >= c_second, first, second)
        return torch.lerp(second, first, torch.sigmoid((c_first - c_second) / self.softness))


def mix_rule(weight: float | None, rule: str | None, softness: float | None) -> MixRule:
    """The rule of a pair from the hosts' three options (None: the default), refusing options of the other rule."""
    chosen = rule if rule is not None else "mean"
    if chosen == "saturated" and weight is not None:
        raise UsageError(
            "--mix weighs the mean rule; the saturated rule picks per pixel (soften it with --mix-softness)"
        )
    if chosen == "mean" and softness is not None:
        raise UsageError(
            "--mix-softness belongs to --mix-rule saturated; the mean rule is weighed with --mix"
        )
    return MixRule(
        chosen, DEFAULT_WEIGHT if weight is None else weight, 0.0 if softness is None else softness
    )


def members_of(model: Any) -> tuple[Any, ...]:
    """The models a ``model`` argument names: two for ``"A+B"`` or a pair ``("A", "B")``, else the one.

    A path that exists is one model even when its name holds a ``+``. More than two, or an empty member, is a
    :class:`UsageError` that says how to write a pair.
    """
    if isinstance(model, tuple | list):
        items: tuple[Any, ...] = tuple(model)
    elif isinstance(model, str | Path) and SEPARATOR in str(model) and not Path(model).expanduser().exists():
        items = tuple(part.strip() for part in str(model).split(SEPARATOR))
    else:
        return (model,)
    if len(items) > 2:
        raise UsageError(
            f"{len(items)} models given ({', '.join(map(str, items))}); a mix takes two: --model A+B "
            "(VapourSynth and Python: model=('A', 'B'))"
        )
    if not items or any(isinstance(m, str) and not m for m in items):
        raise UsageError(f"{model!r} has an empty model name: write a mix as A+B, e.g. base+eccv16")
    for item in items:
        if not isinstance(item, str | Path | nn.Module):
            raise UsageError(
                f"a mix member must be a model name, a weights file or a colour net, not {type(item).__name__}"
            )
    return items


def is_mix(model: Any) -> bool:
    """Whether ``model`` names two models."""
    return len(members_of(model)) == 2


def mix_name(members: Sequence[Member]) -> str:
    """The name a mix is reported under (``ChromaflowModel``, ``--json``): its members' names joined by ``+``."""
    return SEPARATOR.join(type(m).__name__ if isinstance(m, nn.Module) else str(m) for m in members)
