"""Reference keyframes: ``N=IMAGE`` specs read into images, and one reference made ready for transfer.

A reference is an RGB image (a path, or an array: uint8, uint16 or float in [0, 1]) that colours frame ``N``. For
transfer it becomes a :class:`Keyframe`: its L* and ab at the frame's size (propagation samples colour there) and at
the working resolution (chains compare lightness there), and its colour statistics (the global transfers).
"""

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from chromaflow.core.arrays import F32
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.transfer.global_stats import LabSamples
from chromaflow.core.transfer.lab_arrays import as_rgb_float, hwc, load_rgb, resize_plane, rgb_to_lab_planes
from chromaflow.core.transfer.propagate import KeyData

Reference = str | Path | NDArray[np.generic]
_REF_SPEC = re.compile(r"^(\d+)=(.+)$")


def load_references(specs: Iterable[str], num_frames: int | None = None) -> dict[int, F32]:
    """Parse ``N=IMAGE`` strings (N the 0-based frame index) and load the images as float RGB ``(H, W, 3)``.

    ``num_frames``: the input's length when it is known exactly (before the run); a reference past it is then
    refused at once (:class:`UsageError`) instead of at the end of the run.
    """
    refs: dict[int, F32] = {}
    for spec in specs:
        m = _REF_SPEC.match(spec.strip())
        if m is None:
            raise UsageError(
                f"bad reference {spec!r}: write N=IMAGE, N the 0-based frame index (e.g. 0=key.png)"
            )
        n = int(m.group(1))
        if n in refs:
            raise UsageError(f"frame {n} has two references; give one image per frame")
        if num_frames is not None and n >= num_frames:
            raise UsageError(
                f"reference {spec!r} is for frame {n}, but the input has {num_frames} frames (0 .. {num_frames - 1}); "
                "frame numbers start at 0"
            )
        path = Path(m.group(2))
        if path.is_dir():
            raise InputError(
                f"reference {spec!r}: {path} is a folder; give one image file per keyframe (PNG, JPEG or TIFF), "
                f"e.g. {n}={path / 'key.png'}"
            )
        refs[n] = load_rgb(path)
    if not refs:
        raise UsageError("no references given; use --ref N=IMAGE")
    return refs


def reference_rgb(image: Reference) -> F32:
    """A reference (a path, or an image array) as float RGB ``(H, W, 3)`` in [0, 1]."""
    return load_rgb(image) if isinstance(image, str | Path) else as_rgb_float(np.asarray(image))


@dataclass(frozen=True)
class Keyframe:
    """One reference ready for transfer (ab in the transfer maths' ``(H, W, 2)`` layout: package-internal)."""

    index: int
    l_full: F32  # the reference's L* at frame size
    ab_full: F32  # (H, W, 2)
    data: KeyData  # working resolution
    samples: LabSamples  # for reinhard / histogram

    @staticmethod
    def of(
        index: int, rgb: F32, size: tuple[int, int], work: tuple[int, int], same_content: bool
    ) -> "Keyframe":
        """Keyframe ``index`` from its reference ``rgb`` for frames of ``size`` (working size ``work``).

        ``same_content``: the reference must be a colouring of its frame (propagation), so its aspect ratio must
        be the frame's; references for the global modes may show anything.
        """
        samples = LabSamples.of(rgb)
        h, w = size
        rh, rw = rgb.shape[:2]
        if same_content and abs(rw / rh - w / h) > 0.01 * (w / h):
            raise InputError(
                f"reference for frame {index} is {rw}x{rh}, frames are {w}x{h}: a propagated keyframe must be a "
                "colouring of that frame (same aspect ratio); use --transfer knn for references of other content"
            )
        l_ref, ab_ref = rgb_to_lab_planes(rgb)
        l_full, ab_full = resize_plane(l_ref, (h, w)), resize_plane(hwc(ab_ref), (h, w))
        data = KeyData(resize_plane(l_full, work), resize_plane(ab_full, work))
        return Keyframe(index, l_full, ab_full, data, samples)
