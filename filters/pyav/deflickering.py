"""DeflickerNode: remove colour flicker from PyAV video that is already in colour, keeping its luma bit for bit.

A thin host over :class:`~chromaflow.core.deflicker.DeflickerStream`: each frame's Y'CbCr planes become full-size
L* and ab (:func:`~chromaflow.core.colorizer.ycbcr_lab`), the stream returns the frames whose smoothed colour is
ready (frame ``n`` after frame ``n + radius`` went in), and :func:`~chromaflow.core.deflicker.deflickered_chroma`
adds the change of colour to the frame's own chroma planes. The Y' plane (and alpha) is copied bit for bit, and a
frame whose colour did not move comes back unchanged.

Input formats: planar Y'CbCr (any subsampling, 8-16 bit, with or without alpha) keeps its format; other colour
formats (NV12, P010, RGB, ...) are unpacked to planar Y'CbCr first, as
:class:`~chromaflow.filters.pyav.colorization.ColorizeNode` does; gray video has no colour to deflicker and is
refused.
"""

from collections.abc import Iterable

import av
import numpy as np

from chromaflow.core.colorizer import ycbcr_lab
from chromaflow.core.colour import Siting, YCbCrFormat
from chromaflow.core.deflicker import Deflickered, DeflickerStream, deflickered_chroma
from chromaflow.core.errors import InputError
from chromaflow.core.options import DeflickerOptions
from chromaflow.filters.pyav.frames import (
    copy_props,
    layout_of,
    plane_view,
    siting_of,
    to_planar,
    ycbcr_format_of,
)
from chromaflow.filters.pyav.node_options import node_options
from chromaflow.filters.pyav.nodes import FrameNode

GRAY_MESSAGE = (
    "gray video has no colour to deflicker; colorize it first with `chromaflow colorize` "
    "(its temporal smoothing already keeps the colour steady)"
)


class DeflickerNode(FrameNode):
    """Smooth each frame's colour over ``radius`` frames on either side (motion-compensated, stopping at scene
    cuts); a frame comes out after :attr:`delay` more pushes.

    ``strength`` (>= 0) scales the neighbours' weight (0 leaves every frame as it was); ``scene_cut_threshold``:
    the scene-cut detector's threshold (``None``: the core default); ``max_side``: the longer side of the working
    resolution the smoothing runs at (the correction is brought back to full size). ``options``: a
    :class:`~chromaflow.core.options.DeflickerOptions` whole, instead of these keywords (giving both is refused).
    """

    def __init__(
        self,
        radius: int = DeflickerOptions.radius,
        strength: float = DeflickerOptions.strength,
        scene_cut_threshold: float | None = DeflickerOptions.scene_cut_threshold,
        max_side: int = DeflickerOptions.max_side,
        *,
        options: DeflickerOptions | None = None,
    ) -> None:
        super().__init__()
        opts = node_options(
            "DeflickerNode",
            DeflickerOptions,
            options,
            radius=radius,
            strength=strength,
            scene_cut_threshold=scene_cut_threshold,
            max_side=max_side,
        )
        self.options = opts
        self.stream = DeflickerStream(opts)
        # frame index -> (planar source frame, its chroma planes, L*, ab); only frames not yet emitted
        self._held: dict[int, tuple[av.VideoFrame, np.ndarray, np.ndarray, np.ndarray]] = {}
        self._first: tuple[int, int, str] | None = None
        self._fmt = YCbCrFormat()
        self._factors = (1, 1)
        self._siting: Siting = "left"
        self._count = 0

    @property
    def delay(self) -> int:
        return self.stream.lookahead

    @property
    def held(self) -> int:
        """Frames taken in and not yet given out."""
        return len(self._held)

    def _accept(self, frame: av.VideoFrame) -> Iterable[av.VideoFrame]:
        if layout_of(frame.format).kind == "gray":
            raise InputError(GRAY_MESSAGE)
        planar, layout = to_planar(frame)
        shape = (planar.width, planar.height, layout.name)
        if self._first is None:
            self._first = shape
            self._fmt = ycbcr_format_of(planar, layout)
            self._factors = layout.factors
            self._siting = siting_of(planar)
        elif shape != self._first:
            w, h, name = self._first
            raise InputError(
                f"video frame {self._count} is {planar.width}x{planar.height} {layout.name}, but the stream started "
                f"with {w}x{h} {name}; add a scale/format filter first"
            )
        chroma = self._chroma(planar)
        l_star, ab = ycbcr_lab(plane_view(planar, 0), chroma, self._fmt, self._factors, self._siting)
        self._held[self._count] = (planar, chroma, l_star, ab)
        self._count += 1
        return self._build(self.stream.push(l_star, ab))

    def _finish(self) -> Iterable[av.VideoFrame]:
        return self._build(self.stream.flush()) if self._count else []

    @staticmethod
    def _chroma(frame: av.VideoFrame) -> np.ndarray:
        return np.stack((plane_view(frame, 1), plane_view(frame, 2)))

    def _build(self, ready: list[Deflickered]) -> list[av.VideoFrame]:
        out = []
        for item in ready:
            src, chroma_in, l_star, ab_old = self._held.pop(item.frame_index)
            chroma = deflickered_chroma(
                chroma_in, l_star, ab_old, item.ab, self._fmt, self._factors, self._siting
            )
            out.append(self._frame(src, chroma.astype(plane_view(src, 1).dtype)))
        return out

    @staticmethod
    def _frame(src: av.VideoFrame, chroma: np.ndarray) -> av.VideoFrame:
        out = copy_props(src, av.VideoFrame(src.width, src.height, src.format.name))
        for index in [0] + ([3] if len(src.planes) > 3 else []):
            plane_view(out, index)[:] = plane_view(src, index)
        plane_view(out, 1)[:] = chroma[0]
        plane_view(out, 2)[:] = chroma[1]
        return out
