"""The frames the studio shows: one video or still, decoded once into gray previews, with its scene cuts.

Why previews: the page edits at preview resolution (longer side :data:`PREVIEW_SIDE`) so a hint is re-coloured at
once; the full-resolution frame is decoded only to bake a keyframe. A video is decoded once, on first use, and its
previews stay in memory (refused past :data:`MAX_PREVIEW_BYTES`, with what to do).
"""

import itertools
import threading
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np
from numpy.typing import NDArray

from chromaflow.core.errors import InputError
from chromaflow.core.image_files import imread_capped
from chromaflow.core.scenecut import SceneCutDetector
from chromaflow.plugins.studio.sandbox import IMAGE_SUFFIXES

PREVIEW_SIDE = 480
THUMB_SIDE = 96
MAX_PREVIEW_BYTES = 1 << 30
U8 = NDArray[np.uint8]


def fit(width: int, height: int, side: int) -> tuple[int, int]:
    """``(w, h)`` of a frame scaled so its longer side is at most ``side`` (never enlarged)."""
    scale = min(1.0, side / max(width, height))
    return max(1, round(width * scale)), max(1, round(height * scale))


def _gray(rgb: NDArray[np.uint8]) -> U8:
    return np.ascontiguousarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=np.uint8)


@dataclass
class Footage:
    """One source: size, rate, gray previews of every frame, scene cuts (frames that start a shot)."""

    path: Path
    width: int
    height: int
    fps: float
    previews: list[U8]
    cuts: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def num_frames(self) -> int:
        return len(self.previews)

    @property
    def preview_size(self) -> tuple[int, int]:
        """``(w, h)`` of the previews."""
        h, w = self.previews[0].shape
        return w, h

    def check(self, n: int) -> int:
        if not 0 <= n < self.num_frames:
            raise InputError(f"frame {n} is outside {self.path.name} (0 .. {self.num_frames - 1})")
        return n

    def preview(self, n: int) -> U8:
        return self.previews[self.check(n)]

    def thumbnail(self, n: int) -> U8:
        g = self.preview(n)
        w, h = fit(g.shape[1], g.shape[0], THUMB_SIDE)
        return np.asarray(cv2.resize(g, (w, h), interpolation=cv2.INTER_AREA), dtype=np.uint8)

    def full_rgb(self, n: int) -> U8:
        """Frame ``n`` at full resolution, RGB (decoded again: only a bake needs it)."""
        self.check(n)
        if self.path.suffix.lower() in IMAGE_SUFFIXES:
            return _read_image(self.path)
        with self._lock, av.open(str(self.path)) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i == n:
                    return np.asarray(frame.to_ndarray(format="rgb24"), dtype=np.uint8)
        raise InputError(f"frame {n} of {self.path.name} could not be decoded again")

    def shot_of(self, n: int) -> tuple[int, int]:
        """``(start, end)`` of the shot holding frame ``n`` (end exclusive)."""
        self.check(n)
        bounds = [0, *self.cuts, self.num_frames]
        for a, b in itertools.pairwise(bounds):
            if a <= n < b:
                return a, b
        return 0, self.num_frames


def _read_image(path: Path) -> U8:
    """A still as RGB uint8 (16-bit scaled down, alpha dropped, gray repeated)."""
    img = imread_capped(path)
    if img is None:
        raise InputError(f"cannot read {path.name} as an image; use PNG, JPEG or TIFF")
    if img.dtype != np.uint8:
        img = (img.astype(np.float32) * (255.0 / np.iinfo(img.dtype).max)).round()
    if img.ndim == 2:
        img = img[..., None]
    bgr = np.repeat(img, 3, axis=2) if img.shape[2] == 1 else img[..., :3]
    return np.ascontiguousarray(bgr[..., ::-1], dtype=np.uint8)


def open_footage(path: Path) -> Footage:
    """Decode ``path`` into previews and find its cuts (:class:`InputError` for what cannot be read)."""
    if path.suffix.lower() in IMAGE_SUFFIXES:
        rgb = _read_image(path)
        h, w = rgb.shape[:2]
        pw, ph = fit(w, h, PREVIEW_SIDE)
        small = np.asarray(cv2.resize(rgb, (pw, ph), interpolation=cv2.INTER_AREA), dtype=np.uint8)
        return Footage(path, w, h, 0.0, [_gray(small)])
    previews: list[U8] = []
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise InputError(f"{path.name} has no video stream")
            stream = container.streams.video[0]
            fps = float(stream.average_rate or stream.guessed_rate or 25)
            width, height = stream.codec_context.width, stream.codec_context.height
            pw, ph = fit(width, height, PREVIEW_SIDE)
            for frame in container.decode(video=0):
                previews.append(
                    _gray(np.asarray(frame.to_ndarray(format="rgb24", width=pw, height=ph), np.uint8))
                )
                if len(previews) * pw * ph > MAX_PREVIEW_BYTES:
                    raise InputError(
                        f"{path.name} is too long for the studio's previews ({len(previews)}+ frames); cut the "
                        "part to colour (ffmpeg -ss .. -t ..) and open that"
                    )
    except av.error.FFmpegError as err:
        raise InputError(f"cannot read {path.name} as a video: {err}") from err
    if not previews:
        raise InputError(f"{path.name} has no frames that can be decoded")
    footage = Footage(path, width, height, fps, previews)
    footage.cuts = SceneCutDetector().detect(footage.thumbnail(n) for n in range(footage.num_frames))
    return footage
