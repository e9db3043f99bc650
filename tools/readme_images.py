"""Make the README's pictures (``make readme-images``): small WebP files in ``docs/images/``.

Every input is a freely licensed sample shipped with scikit-image (licences from each function's docstring):

- ``camera``: a real black-and-white photograph, CC0 by Lav Varshney; it is not in the ``base`` model's training
  set (``core/weights/base-attribution.txt``).
- ``coffee``: colour photo, CC0 by Rachel Michetti. It is in ``base``'s training set, which does not matter here:
  keyframe transfer uses no learned weights.
- ``astronaut``: Eileen Collins, NASA, public domain; a real face for the deepfake overlay.

Pictures:

- ``colorize-camera.webp``: gray input | ``base`` | ``base`` with four colour hints.
- ``keyframe-transfer.webp``: a synthetic pan across ``coffee``; frame 0 is given in colour and carried to the
  other frames by :class:`~chromaflow.core.transfer.KeyframeTransfer` (``auto``, the CLI's default); rows show
  the gray input, the result and the original colours.
- ``deepfake-overlay.webp``: Haar face detection + MesoNet ``meso4-df`` score drawn by
  :func:`~chromaflow.core.overlay.draw_overlay`. MesoNet's weights are not part of this repository: they are read
  from the model cache (``chromaflow models download meso4-df``) or from ``$CHROMAFLOW_SHARED/models/mesonet``
  (default ``../shared``); without them this picture is skipped with a message.

Nothing from ``../shared/data`` goes into a picture. Logs go to stderr; files are written under a temporary name
and renamed.
"""

import argparse
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from skimage import data

from chromaflow.core import registry
from chromaflow.core.colorizer import Colorizer
from chromaflow.core.errors import ChromaflowError
from chromaflow.core.hints import Hint
from chromaflow.core.paths import shared_dir
from chromaflow.core.transfer import KeyframeTransfer

RGB = np.ndarray
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "images"
WEBP_QUALITY = 82
KEY_FRAMES = 24
STRIP_FRAMES = (0, 8, 16, 23)
PANEL = (224, 168)  # width, height of one keyframe-strip panel
CAMERA_SIDE = 320
SKY, LAWN = (100, 150, 210), (70, 115, 50)
CAMERA_HINTS = (  # (x, y) in the 512 x 512 ``camera`` photo: two points of blue sky, two of green lawn
    Hint(80.0, 60.0, SKY, 6.0),
    Hint(420.0, 60.0, SKY, 6.0),
    Hint(300.0, 470.0, LAWN, 6.0),
    Hint(470.0, 330.0, LAWN, 6.0),
)
PAN_TRAVEL = 0.6  # the pan covers this fraction of the photo's free width


def log(message: str) -> None:
    print(f"readme-images: {message}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ drawing helpers


def captioned(image: RGB, text: str, band: int = 24) -> RGB:
    """``image`` (RGB uint8) with ``text`` centred in a white band underneath."""
    h, w = image.shape[:2]
    out = np.full((h + band, w, 3), 255, np.uint8)
    out[:h] = image
    scale = 0.5
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    org = (max(2, (w - tw) // 2), h + (band + th) // 2)
    cv2.putText(out, text, org, cv2.FONT_HERSHEY_SIMPLEX, scale, (30, 30, 30), 1, cv2.LINE_AA)
    return out


def row(images: list[RGB], gap: int = 4) -> RGB:
    """Images of one height side by side, white gaps between."""
    h = images[0].shape[0]
    parts: list[RGB] = []
    for i, img in enumerate(images):
        if i:
            parts.append(np.full((h, gap, 3), 255, np.uint8))
        parts.append(img)
    return np.concatenate(parts, axis=1)


def column(images: list[RGB], gap: int = 4) -> RGB:
    """Images of one width stacked, white gaps between."""
    w = images[0].shape[1]
    parts: list[RGB] = []
    for i, img in enumerate(images):
        if i:
            parts.append(np.full((gap, w, 3), 255, np.uint8))
        parts.append(img)
    return np.concatenate(parts, axis=0)


def row_label(text: str, height: int, width: int = 92) -> RGB:
    """A white tile of ``height`` with ``text`` (lines split on ``|``) centred vertically."""
    tile = np.full((height, width, 3), 255, np.uint8)
    lines = text.split("|")
    step = 18
    y0 = (height - step * len(lines)) // 2 + 13
    for i, line in enumerate(lines):
        cv2.putText(
            tile, line, (6, y0 + i * step), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (30, 30, 30), 1, cv2.LINE_AA
        )
    return tile


def gray_rgb(rgb: RGB) -> RGB:
    """The gray picture (Rec. 601 luma, as OpenCV computes it) of an RGB uint8 image, as 3 channels."""
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    return np.repeat(gray[:, :, None], 3, axis=2)


def to_uint8(rgb_float: np.ndarray) -> RGB:
    return np.clip(np.rint(rgb_float * 255.0), 0, 255).astype(np.uint8)


def mark_hints(image: RGB, hints: tuple[Hint, ...], scale: float) -> RGB:
    """Small rings where the hints are, filled with their colour, so a reader sees what was given."""
    out = image.copy()
    for hint in hints:
        centre = (round(hint.x * scale), round(hint.y * scale))
        cv2.circle(out, centre, 6, hint.rgb, -1, cv2.LINE_AA)
        cv2.circle(out, centre, 7, (255, 255, 255), 1, cv2.LINE_AA)
    return out


# ------------------------------------------------------------------------------------------------ pictures


def colorize_picture(colorizer: Colorizer) -> RGB:
    """``camera``: gray input | base | base with hints, each ``CAMERA_SIDE`` pixels wide, captioned."""
    photo = data.camera()
    plain = colorizer.colorize(photo)
    hinted = colorizer.colorize(photo, hints=list(CAMERA_HINTS))
    side = (CAMERA_SIDE, CAMERA_SIDE)
    scale = CAMERA_SIDE / photo.shape[1]

    def small(img: RGB) -> RGB:
        rgb = img if img.ndim == 3 else np.repeat(img[:, :, None], 3, axis=2)
        return cv2.resize(rgb, side, interpolation=cv2.INTER_AREA)

    return row(
        [
            captioned(small(photo), "input (B&W photo)"),
            captioned(small(plain), "base"),
            captioned(mark_hints(small(hinted), CAMERA_HINTS, scale), f"base + {len(CAMERA_HINTS)} hints"),
        ]
    )


def pan_clip(photo: RGB, frames: int, size: tuple[int, int]) -> list[RGB]:
    """A steady left-to-right pan with a slight zoom-in across ``photo``: RGB uint8 frames of ``size`` (w, h)."""
    w, h = size
    ph, pw = photo.shape[:2]
    out = []
    for i in range(frames):
        t = i / (frames - 1)
        crop_h = int(ph * (0.78 - 0.08 * t))
        crop_w = int(crop_h * w / h)
        x0 = round((pw - crop_w) * PAN_TRAVEL * t)
        y0 = round((ph - crop_h) * (0.5 - 0.2 * t))
        view = photo[y0 : y0 + crop_h, x0 : x0 + crop_w]
        out.append(cv2.resize(view, (w, h), interpolation=cv2.INTER_AREA))
    return out


def keyframe_picture() -> RGB:
    """Gray input / keyframe transfer / original rows at ``STRIP_FRAMES`` of a pan across ``coffee``."""
    colour = pan_clip(data.coffee(), KEY_FRAMES, PANEL)
    gray = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in colour]
    transfer = KeyframeTransfer({0: colour[0]}, lambda n: gray[n], KEY_FRAMES, mode="auto")
    rows: list[RGB] = []
    labels = ("input|(gray)", "keyframe|transfer", "original|colours")
    for r, label in enumerate(labels):
        tiles = []
        for n in STRIP_FRAMES:
            if r == 0:
                tile = np.repeat(gray[n][:, :, None], 3, axis=2)
                if n == 0:
                    tile = colour[0]  # the keyframe is given in colour
                tile = captioned(tile, f"frame {n}" + (": keyframe" if n == 0 else ""))
            elif r == 1:
                tile = to_uint8(transfer.rgb(n))
            else:
                tile = colour[n]
            tiles.append(tile)
        strip = row(tiles)
        rows.append(row([row_label(label, strip.shape[0]), strip], gap=0))
    return column(rows)


def meso_weights() -> Path | None:
    """Meso4-DF weights: the model cache (as users get them), else the shared development data; None if absent."""
    cached = registry.cached_path("meso4-df")
    if cached.is_file():
        return cached
    shared = shared_dir() / "models" / "mesonet" / "Meso4_DF.h5"
    return shared if shared.is_file() else None


def deepfake_picture(weights: Path) -> RGB:
    """``astronaut`` with its face box, track id and fake score drawn by the deepfake overlay."""
    from chromaflow.core.deepfake import DeepfakeScorer
    from chromaflow.core.overlay import OverlayStyle, draw_overlay

    photo = data.astronaut()
    scorer = DeepfakeScorer("haar", "meso4-df", classifier_path=weights)
    (result,) = scorer.score_frames([photo], start_index=0)
    if not result.faces:
        raise ChromaflowError("no face found in skimage's astronaut photo; the overlay picture was not made")
    for face in result.faces:
        log(f"astronaut: face at {tuple(round(v) for v in face.box)}, fake score {face.score:.3f}")
    style = OverlayStyle(line_width=5.0, font_scale=1.5)
    return draw_overlay(photo, result.faces, style=style)


# ------------------------------------------------------------------------------------------------- output


def save_webp(rgb: RGB, path: Path, quality: int = WEBP_QUALITY) -> int:
    """Write ``rgb`` as lossy WebP under a temporary name, then rename; returns the size in bytes."""
    ok, buf = cv2.imencode(".webp", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_WEBP_QUALITY, quality])
    if not ok:
        raise ChromaflowError(f"OpenCV could not encode {path.name} as WebP")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buf.tobytes())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(buf)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for the pictures (docs/images)")
    parser.add_argument("--device", default="cpu", help="device for the colour model (default cpu)")
    args = parser.parse_args(argv)
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    colorizer = Colorizer("base", device=args.device, precision="fp32")

    jobs: list[tuple[str, Callable[[], RGB]]] = [
        ("colorize-camera.webp", lambda: colorize_picture(colorizer)),
        ("keyframe-transfer.webp", keyframe_picture),
    ]
    weights = meso_weights()
    if weights is None:
        log(
            "skipping deepfake-overlay.webp: MesoNet weights not found (run `chromaflow models download "
            "meso4-df`, or set CHROMAFLOW_SHARED to the shared data folder)"
        )
    else:
        jobs.append(("deepfake-overlay.webp", lambda: deepfake_picture(weights)))
    for name, make in jobs:
        size = save_webp(make(), out / name)
        log(f"wrote {out / name} ({size / 1024:.0f} KiB)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except ChromaflowError as err:
        print(f"readme-images: error: {err}", file=sys.stderr)
        sys.exit(err.exit_code)
