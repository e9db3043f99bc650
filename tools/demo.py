"""The README's main job on the built-in default (grows with the engine).

Today: a colour-science round trip on a generated test card, written to ``demo-output/``.
"""

from pathlib import Path

import cv2
import numpy as np
import torch
from chromaflow.core import colour


def test_card(height: int = 240, width: int = 320) -> np.ndarray:
    """A smooth hue/lightness sweep, RGB float32 in [0, 1]."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    hue = x / width * 2 * np.pi
    light = 0.2 + 0.7 * (1 - y / height)
    rgb = np.stack([light + 0.3 * np.cos(hue + k * 2 * np.pi / 3) for k in range(3)], axis=-1)
    return np.clip(rgb, 0, 1)


def main() -> None:
    out = Path("demo-output")
    out.mkdir(exist_ok=True)
    rgb = torch.from_numpy(test_card()).permute(2, 0, 1)
    lab = colour.rgb_to_lab(rgb)
    back = colour.lab_to_rgb(lab)
    gray = colour.gray_to_rgb(lab[0:1])
    err = (back - rgb).abs().max().item()
    for name, img in (("card.png", rgb), ("card-gray.png", gray)):
        bgr = (img.permute(1, 2, 0).numpy()[..., ::-1] * 255 + 0.5).astype(np.uint8)
        cv2.imwrite(str(out / name), bgr)
    print(f"demo: wrote {out}/card.png and {out}/card-gray.png; sRGB->Lab->sRGB max error {err:.2e}")


if __name__ == "__main__":
    main()
