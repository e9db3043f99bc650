"""User colour hints (SIGGRAPH17 style): parsing, and conversion to the net's ab-hint and mask inputs.

A hint is a point ``x,y`` in pixel coordinates of the original image (pixel ``(x, y)`` spans ``[x, x+1) x [y, y+1)``),
a colour ``#RRGGBB`` and an optional radius in original-image pixels. At the model's resolution it covers the model
pixel containing the point plus every model pixel whose centre lies within ``radius`` of the point's centre; there
the mask is 1 and the ab hint holds the colour's CIE a*, b* (its lightness is not used: luma comes from the image).
Later hints overwrite earlier ones where they overlap.
"""

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from chromaflow.core.colour import rgb_to_lab
from chromaflow.core.errors import InputError, UsageError

_HEX = re.compile(r"^#?([0-9a-fA-F]{6})$")
HINT_SYNTAX = "x,y,#RRGGBB or x,y,#RRGGBB,radius (x, y and radius in pixels of the original image)"
# No image the tools can open has a side this long (the image verb's default cap is 100 megapixels), so larger
# coordinates or radii are typing mistakes; refusing them also keeps the arithmetic far from float overflow.
MAX_HINT_PIXELS = 1_000_000


@dataclass(frozen=True)
class Hint:
    """One colour point."""

    x: float
    y: float
    rgb: tuple[int, int, int]
    radius: float = 0.0

    @property
    def ab(self) -> tuple[float, float]:
        """The colour's CIE a*, b* (D65)."""
        rgb = torch.tensor(self.rgb, dtype=torch.float64).view(3, 1, 1) / 255.0
        lab = rgb_to_lab(rgb).flatten()
        return float(lab[1]), float(lab[2])


def parse_colour(text: str) -> tuple[int, int, int]:
    """``#RRGGBB`` (the ``#`` is optional) to an (R, G, B) triple of 0..255."""
    match = _HEX.match(text.strip())
    if match is None:
        raise UsageError(f"bad hint colour {text!r}: write it as #RRGGBB, for example #ff8800")
    digits = match.group(1)
    r, g, b = (int(digits[i : i + 2], 16) for i in (0, 2, 4))
    return r, g, b


def _number(text: Any, what: str, source: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise UsageError(f"bad hint {source!r}: {what} {text!r} is not a number; use {HINT_SYNTAX}") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise UsageError(f"bad hint {source!r}: {what} must be finite")
    return value


def _pixels(text: Any, what: str, source: str) -> float:
    """A coordinate or radius in pixels: finite, 0 or more and at most :data:`MAX_HINT_PIXELS`."""
    value = _number(text, what, source)
    if not 0 <= value <= MAX_HINT_PIXELS:
        raise UsageError(
            f"bad hint {source!r}: {what} {value:g} must be between 0 and {MAX_HINT_PIXELS} pixels of the image; "
            f"use {HINT_SYNTAX}"
        )
    return value


def _make(x: Any, y: Any, colour: Any, radius: Any, source: str) -> Hint:
    if not isinstance(colour, str):
        raise UsageError(f"bad hint {source!r}: the colour must be a string #RRGGBB")
    r = _pixels(radius, "radius", source)
    return Hint(_pixels(x, "x", source), _pixels(y, "y", source), parse_colour(colour), r)


def parse_hint(text: str) -> Hint:
    """Parse ``x,y,#RRGGBB[,radius]``."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) not in (3, 4):
        raise UsageError(f"bad hint {text!r}: use {HINT_SYNTAX}")
    return _make(parts[0], parts[1], parts[2], parts[3] if len(parts) == 4 else 0, text)


def hints_from_json(data: Any) -> list[Hint]:
    """Hints from decoded JSON: a list whose items are ``"x,y,#RRGGBB[,r]"`` strings, ``[x, y, "#RRGGBB"(, r)]``
    lists or ``{"x": .., "y": .., "color": "#RRGGBB", "radius": ..}`` objects (``colour`` is accepted too)."""
    if not isinstance(data, list):
        raise UsageError(
            'hints JSON must be a list of hints, for example [{"x": 10, "y": 20, "color": "#ff0000"}]'
        )
    hints = []
    for item in data:
        if isinstance(item, str):
            hints.append(parse_hint(item))
        elif isinstance(item, list) and len(item) in (3, 4):
            hints.append(_make(item[0], item[1], item[2], item[3] if len(item) == 4 else 0, json.dumps(item)))
        elif isinstance(item, dict) and {"x", "y"} <= item.keys() and ("color" in item or "colour" in item):
            colour = item.get("color", item.get("colour"))
            hints.append(_make(item["x"], item["y"], colour, item.get("radius", 0), json.dumps(item)))
        else:
            raise UsageError(
                f"bad hint {json.dumps(item)} in JSON: use {HINT_SYNTAX}, or an object with x, y, color"
            )
    return hints


def load_hints_json(path: str | Path) -> list[Hint]:
    """Hints from a JSON file (see :func:`hints_from_json`)."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise InputError(f"cannot read hints file {path}: {err.strerror or err}") from err
    except json.JSONDecodeError as err:
        raise InputError(f"hints file {path} is not valid JSON: {err}") from err
    return hints_from_json(data)


def _model_grid(n_model: int, n_image: int) -> Tensor:
    """Centres of the model pixels, in original-image coordinates (float64)."""
    return (torch.arange(n_model, dtype=torch.float64) + 0.5) * (n_image / n_model)


def hint_tensors(
    hints: Iterable[Hint],
    image_size: tuple[int, int],
    model_size: int | tuple[int, int],
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> tuple[Tensor, Tensor]:
    """The ab-hint ``(1, 2, h, w)`` and mask ``(1, 1, h, w)`` tensors for an image of ``image_size`` (H, W)."""
    height, width = image_size
    h, w = (model_size, model_size) if isinstance(model_size, int) else model_size
    ab = torch.zeros(2, h, w, dtype=torch.float64)
    mask = torch.zeros(1, h, w, dtype=torch.float64)
    cy, cx = _model_grid(h, height), _model_grid(w, width)
    reach = math.hypot(width, height) + 1.0  # a radius beyond the diagonal covers the whole image
    for hint in hints:
        if not (0 <= hint.x < width and 0 <= hint.y < height):
            raise InputError(
                f"hint at ({hint.x:g}, {hint.y:g}) lies outside the {width}x{height} image; "
                f"x must be in [0, {width}) and y in [0, {height})"
            )
        px, py = hint.x + 0.5, hint.y + 0.5
        region = ((cx[None, :] - px) ** 2 + (cy[:, None] - py) ** 2) <= min(hint.radius, reach) ** 2
        region[min(int(py * h / height), h - 1), min(int(px * w / width), w - 1)] = True
        a, b = hint.ab
        ab[0][region] = a
        ab[1][region] = b
        mask[0][region] = 1.0
    return ab[None].to(device=device, dtype=dtype), mask[None].to(device=device, dtype=dtype)


def collect_hints(strings: Sequence[str] = (), json_path: str | Path | None = None) -> list[Hint]:
    """Hints from command-line strings and an optional JSON file, in that order."""
    hints = [parse_hint(s) for s in strings]
    if json_path is not None:
        hints += load_hints_json(json_path)
    return hints
