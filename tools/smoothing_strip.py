"""Make the README's "how much smoothing" picture: ``docs/images/smoothing-strip.webp``.

A synthetic clip (a smooth random texture panning right, coloured from its own lightness) gets a per-frame colour
flicker: every frame's a*b* shifted by a seeded random amount, as a per-frame colorizer does to a whole region. Rows:
the flickering input, then :func:`~chromaflow.core.temporal.smooth_sequence` at radius 1, 2 (the default) and 4,
and at radius 2 with strength 0.5; the columns are consecutive frames. Generated, so nothing from ``../shared``
goes into it; written under a temporary name and renamed.

    python tools/smoothing_strip.py [--out docs/images/smoothing-strip.webp]
"""

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import torch

from chromaflow.core.colour import lab_to_rgb
from chromaflow.core.temporal import smooth_sequence

REPO = Path(__file__).resolve().parent.parent
OUT = REPO / "docs" / "images" / "smoothing-strip.webp"
H, W, FRAMES, SHOWN = 72, 96, 14, 8
ROWS = (
    ("input", None, None),
    ("r=1", 1, 1.0),
    ("r=2 (default)", 2, 1.0),
    ("r=4", 4, 1.0),
    ("r=2, 0.5", 2, 0.5),
)


def clip(seed: int = 3) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """L* and flickering ab planes of the synthetic pan."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 1, (H // 8 + 3, (W + 2 * FRAMES) // 8 + 3)).astype(np.float32)
    big = cv2.resize(coarse, (W + 2 * FRAMES + 24, H + 24), interpolation=cv2.INTER_CUBIC)[12:-12, 12:-12]
    big = 25 + 60 * (big - big.min()) / (big.max() - big.min())
    lumas, abs_ = [], []
    for t in range(FRAMES):
        luma = np.ascontiguousarray(big[:, 2 * t : 2 * t + W], dtype=np.float32)
        ab = np.stack([0.6 * (luma - 55), 25 - 0.4 * luma]) + rng.normal(0, 9, (2, 1, 1))
        lumas.append(luma)
        abs_.append(ab.astype(np.float32))
    return lumas, abs_


def render(luma: np.ndarray, ab: np.ndarray) -> np.ndarray:
    rgb = lab_to_rgb(torch.from_numpy(np.concatenate([luma[None], ab]))).numpy().transpose(1, 2, 0)
    return np.clip(rgb * 255 + 0.5, 0, 255).astype(np.uint8)


def strip() -> np.ndarray:
    lumas, abs_ = clip()
    first = (FRAMES - SHOWN) // 2
    rows = []
    for label, radius, strength in ROWS:
        out = abs_ if radius is None else smooth_sequence(lumas, abs_, radius=radius, strength=strength)
        tiles = [render(lumas[t], out[t]) for t in range(first, first + SHOWN)]
        row = np.concatenate(
            [np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in tiles], axis=1
        )
        head = np.full((row.shape[0], 120, 3), 255, np.uint8)
        cv2.putText(head, label, (4, row.shape[0] // 2 + 5), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1)
        rows.append(np.concatenate([head, row], axis=1))
    return np.concatenate(rows, axis=0)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args(argv)
    image = strip()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_name(f".{args.out.stem}.partial{args.out.suffix}")
    if not cv2.imwrite(str(tmp), cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, 90]):
        print(f"could not write {tmp}", file=sys.stderr)
        return 1
    tmp.replace(args.out)
    print(f"wrote {args.out} ({image.shape[1]}x{image.shape[0]})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
