"""The studio's colour: hinted previews, baked keyframes and propagation strips, from the same core objects the
render uses (:class:`~chromaflow.core.colorizer.Colorizer`, :class:`~chromaflow.core.video.VideoColorizer`).

Why a preview can be fast: it colours the gray preview (longer side 480) with the hints scaled to it, one model call;
one :class:`Colorizer` per model is kept and used by one request at a time.
"""

import threading
from collections.abc import Sequence

import cv2
import numpy as np

from chromaflow.core import registry
from chromaflow.core.colorizer import Colorizer
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.hints import Hint
from chromaflow.core.options import ColorizeOptions
from chromaflow.core.transfer import check_transfer_mode
from chromaflow.core.video import VideoColorizer
from chromaflow.plugins.studio.footage import U8, Footage

STRIP_FRAMES = 8  # frames after a keyframe the propagation strip shows


def colour_models() -> list[str]:
    """The colour models whose weights are present (``base`` first): what the page offers."""
    names = [
        n for n in registry.names() if registry.get_spec(n).kind == "colorizer" and registry.is_present(n)
    ]
    return sorted(names, key=lambda n: (n != "base", n))


def inside(hints: Sequence[Hint], footage: Footage) -> Sequence[Hint]:
    """``hints``, each checked to lie inside the frame (as the render will check them)."""
    for h in hints:
        if not (0 <= h.x < footage.width and 0 <= h.y < footage.height):
            raise InputError(
                f"hint at ({h.x:g}, {h.y:g}) lies outside the {footage.width}x{footage.height} frame"
            )
    return hints


def scaled(hints: Sequence[Hint], factor: float, width: int, height: int) -> list[Hint]:
    """``hints`` in the pixels of a frame ``factor`` times the size (kept inside its ``width`` x ``height``)."""
    return [
        Hint(min(h.x * factor, width - 0.5), min(h.y * factor, height - 0.5), h.rgb, h.radius * factor)
        for h in hints
    ]


def _rgb8(image: np.ndarray) -> U8:
    return np.clip(np.rint(np.asarray(image) * 255.0), 0, 255).astype(np.uint8)


class Palette:
    """Colorizers by model name, built on first use; each serves one request at a time."""

    def __init__(self, device: str | None = None) -> None:
        self.device = device
        self._models: dict[tuple[str, int | None], tuple[Colorizer, threading.Lock]] = {}
        self._lock = threading.Lock()

    def colorizer(self, model: str, size: int | None = None) -> tuple[Colorizer, threading.Lock]:
        if model not in colour_models():
            raise UsageError(
                f"model {model!r} is not available here; pick one of {', '.join(colour_models())} "
                f"(chromaflow models download NAME fetches others)"
            )
        with self._lock:
            key = (model, size)
            if key not in self._models:
                built = ColorizeOptions(model=model, size=size, device=self.device).new_colorizer()
                assert built is not None
                self._models[key] = (built, threading.Lock())
            return self._models[key]

    def preview(self, footage: Footage, n: int, hints: Sequence[Hint], model: str, size: int | None) -> U8:
        """Frame ``n`` coloured at preview resolution with ``hints`` (in full-frame pixels)."""
        gray = footage.preview(n)
        h, w = gray.shape
        colorizer, lock = self.colorizer(model, size)
        with lock:
            return colorizer.colorize(gray, scaled(inside(hints, footage), w / footage.width, w, h) or None)

    def bake(self, footage: Footage, n: int, hints: Sequence[Hint], model: str, size: int | None) -> U8:
        """Frame ``n`` coloured at full resolution with ``hints``: a keyframe reference."""
        rgb = footage.full_rgb(n)
        gray = np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY))
        colorizer, lock = self.colorizer(model, size)
        with lock:
            return colorizer.colorize(gray, list(inside(hints, footage)) or None)

    def strip(
        self,
        footage: Footage,
        key: int,
        reference: U8,
        model: str | None,
        transfer: str,
        count: int = STRIP_FRAMES,
    ) -> list[U8]:
        """The keyframe and up to ``count`` next frames of its shot coloured by carrying ``reference`` (RGB uint8
        at any size of the frame's aspect) with ``transfer``, at preview resolution."""
        check_transfer_mode(transfer)
        _start, end = footage.shot_of(key)
        frames = list(range(key, min(end, key + count + 1)))
        w, h = footage.preview_size
        ref = cv2.resize(reference, (w, h), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
        colorizer, lock = self.colorizer(model, None) if model else (None, threading.Lock())
        options = ColorizeOptions(model=model, transfer=transfer, smooth=0, detect_cuts=False)
        engine = VideoColorizer(
            len(frames),
            lambda i: footage.preview(frames[i]),
            options,
            colorizer=colorizer,
            references={0: ref},
        )
        with lock:
            return [_rgb8(engine.rgb(i)) for i in range(len(frames))]
