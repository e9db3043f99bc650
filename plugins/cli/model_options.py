"""The model flags `chromaflow image` and `chromaflow colorize` share: architecture, input side, and mixing.

Defaults are :class:`~chromaflow.core.options.ColorizeOptions`'s (None: the model's own side, an equal mean), and the
values are checked when the verb builds its options, so the rules live in one place.
"""

import argparse

from chromaflow.core.mixing import MIX_RULES
from chromaflow.core.nets import builders


def add_model_arguments(group: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """``--arch``, ``--size``, ``--render-factor``, ``--mix``, ``--mix-rule`` and ``--mix-softness``."""
    group.add_argument(
        "--arch",
        metavar="ARCH",
        help=f"architecture of a .pt --model file that does not record it: {', '.join(builders.archs('colorizer'))}",
    )
    group.add_argument(
        "--size",
        type=int,
        default=None,
        help="model input side in pixels, a multiple of 8 (default: the model's own, `chromaflow models list` "
        "shows it: 256 for base and the Zhang nets)",
    )
    group.add_argument(
        "--render-factor",
        type=int,
        default=None,
        metavar="N",
        help="DeOldify's spelling of the input side: --size 16*N (DeOldify's defaults: 35 artistic and stable, "
        "21 video); not with --size",
    )
    group.add_argument(
        "--mix",
        type=float,
        default=None,
        metavar="W",
        help="with --model A+B and the mean rule: the weight of A in [0, 1] (default 0.5; 1 = A alone)",
    )
    group.add_argument(
        "--mix-rule",
        choices=MIX_RULES,
        default=None,
        help="how --model A+B combines the two colours once per frame: mean (weighted by --mix; default) or "
        "saturated (per pixel the more saturated colour wins)",
    )
    group.add_argument(
        "--mix-softness",
        type=float,
        default=None,
        metavar="S",
        help="with --mix-rule saturated: blend the two over a chroma difference of about S ab units instead of "
        "picking (default 0: pick per pixel)",
    )
