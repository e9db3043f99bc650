"""Decoding image files under a pixel cap, for every reader of stills (`chromaflow image`, reference keyframes).

A file's header is read first (:mod:`chromaflow.core.image_header`), so a picture that claims more pixels than the
cap is refused before OpenCV allocates for it; OpenCV's own refusals become the project's error, not a traceback.
"""

from pathlib import Path

import cv2
import numpy as np

from chromaflow.core.errors import InputError
from chromaflow.core.image_header import image_size

# The largest image decoded unless the caller says otherwise: 100 megapixels is a 12000x8000 photo; decoding,
# colour conversion and the output take about 40 bytes a pixel (4 GB here).
DEFAULT_MAX_PIXELS = 100_000_000


def _too_big(path: Path, width: int, height: int, max_pixels: int, how_to_allow: str) -> InputError:
    cap = f"{how_to_allow} {max_pixels}" if how_to_allow else f"the limit of {max_pixels} pixels"
    allow = f", or raise {how_to_allow} if this machine has the memory" if how_to_allow else ""
    return InputError(
        f"{path} is {width}x{height} ({width * height} pixels), more than {cap}; scale it down first{allow}"
    )


def imread_capped(
    path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS, how_to_allow: str = ""
) -> np.ndarray | None:
    """``cv2.imread(path, IMREAD_UNCHANGED)``, or None where OpenCV cannot read the file; :class:`InputError` for a
    picture over ``max_pixels`` (``how_to_allow`` names the option that raises the cap, if the caller has one)."""
    p = Path(path)
    size = image_size(p)
    if size is not None and size[0] * size[1] > max_pixels:
        raise _too_big(p, size[0], size[1], max_pixels, how_to_allow)
    try:
        image = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    except cv2.error as err:  # OpenCV's own limits (CV_IO_MAX_IMAGE_PIXELS) and damaged headers
        reason = str(err).strip().splitlines()[-1] if str(err).strip() else "refused"
        raise InputError(f"cannot read {p} as an image: OpenCV says {reason}") from err
    if image is not None and image.shape[0] * image.shape[1] > max_pixels:
        raise _too_big(p, image.shape[1], image.shape[0], max_pixels, how_to_allow)
    return image
