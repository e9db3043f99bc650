"""DeepfakeNode: score faces in PyAV video frames, optionally drawing the overlay into them.

Frames are scored in batches (all faces of a batch go through the classifier together). With ``every=N`` only every
N-th frame is scored and the frames between show the last result. The overlay is drawn in RGB and written back only
where it changed pixels, so the rest of each Y'CbCr frame (luma and chroma) is untouched bit for bit.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from torch import nn

from chromaflow.core.colour.tags import ColourRange
from chromaflow.core.deepfake import DeepfakeScorer, FrameResult, VideoSummary
from chromaflow.core.faces import FaceDetector
from chromaflow.core.options import Aggregate, DeepfakeOptions
from chromaflow.core.overlay import OverlayStyle, draw_overlay
from chromaflow.filters.pyav.frames import (
    PlaneLayout,
    copy_props,
    is_full_range,
    matrix_of,
    planar_yuv_name,
    plane_view,
    rgb24_of,
    to_planar,
)
from chromaflow.filters.pyav.node_options import node_options
from chromaflow.filters.pyav.nodes import BatchNode


@dataclass(frozen=True)
class ScoredFrame:
    """One scored frame: its number in the stream, its time in seconds and the scorer's result."""

    frame: int
    time: float | None
    result: FrameResult

    def to_json(self) -> dict[str, object]:
        return self.result.to_json(frame=self.frame, time=self.time)


class DeepfakeNode(BatchNode):
    """Score faces; ``results`` collects a :class:`ScoredFrame` per scored frame, :meth:`summary` the video.

    ``on_result(scored)`` is called as soon as each frame's scores exist (e.g. to stream a JSONL sidecar).
    ``min_track``: report a face once its track was seen in that many scored frames (see :class:`DeepfakeScorer`).
    ``threshold``: scores at or above read FAKE (overlay labels, the summary's verdict); ``aggregate``: the video
    score's rule (``confident``, ``dfdc``, ``mean``, ``median``). ``options``: a
    :class:`~chromaflow.core.options.DeepfakeOptions` whole (the scorer's options and the overlay,
    sampling and batching), instead of the option keywords (giving both is refused). ``scorer``: a ready scorer,
    used instead of one built from the options.
    """

    def __init__(
        self,
        scorer: DeepfakeScorer | None = None,
        *,
        detector: str | FaceDetector = DeepfakeOptions.detector,
        classifier: str | Path | nn.Module = DeepfakeOptions.classifier,
        device: str | None = DeepfakeOptions.device,
        overlay: bool = DeepfakeOptions.overlay,
        style: OverlayStyle | None = DeepfakeOptions.style,
        every: int = DeepfakeOptions.every,
        batch_size: int = DeepfakeOptions.batch_size,
        on_result: Callable[[ScoredFrame], None] | None = None,
        min_track: int = DeepfakeOptions.min_track,
        options: DeepfakeOptions | None = None,
        threshold: float = DeepfakeOptions.threshold,
        aggregate: Aggregate = DeepfakeOptions.aggregate,
    ) -> None:
        opts = node_options(
            "DeepfakeNode",
            DeepfakeOptions,
            options,
            detector=detector,
            classifier=classifier,
            device=device,
            overlay=overlay,
            style=style,
            every=every,
            batch_size=batch_size,
            min_track=min_track,
            threshold=threshold,
            aggregate=aggregate,
        )
        super().__init__(opts.batch_size)
        self.options = opts
        self.scorer = scorer or DeepfakeScorer(options=opts)
        self.overlay = opts.overlay
        self.style = opts.overlay_style()
        self.every = opts.every
        self.on_result = on_result
        self.results: list[ScoredFrame] = []
        self._count = 0
        self._last: FrameResult | None = None

    def summary(self) -> VideoSummary:
        """The per-video aggregate of everything scored so far."""
        return self.scorer.finish()

    def process_batch(self, frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        numbers = list(range(self._count, self._count + len(frames)))
        self._count += len(frames)
        wanted = [k for k, n in enumerate(numbers) if n % self.every == 0]
        rgbs: dict[int, np.ndarray] = {k: rgb24_of(frames[k]) for k in wanted}
        scored = self.scorer.score_frames([rgbs[k] for k in wanted]) if wanted else []
        by_position = dict(zip(wanted, scored, strict=True))
        out = []
        for k, frame in enumerate(frames):
            if self.overlay:
                frame = overlay_base(frame)
            result = by_position.get(k)
            if result is not None:
                item = ScoredFrame(numbers[k], float(frame.time) if frame.time is not None else None, result)
                self.results.append(item)
                if self.on_result is not None:
                    self.on_result(item)
                self._last = result
            if self.overlay and self._last is not None and self._last.faces:
                rgb = rgbs.get(k)
                out.append(self._draw(frame, rgb if rgb is not None else rgb24_of(frame), self._last))
            else:
                out.append(frame)
        return out

    def _draw(self, frame: av.VideoFrame, rgb: np.ndarray, result: FrameResult) -> av.VideoFrame:
        drawn = draw_overlay(rgb, result.faces, self.style, frame_score=result.score, caption=result.model)
        changed = np.any(drawn != rgb, axis=2)
        if not changed.any():
            return frame
        return merge_edit(frame, drawn, changed)


def overlay_base(frame: av.VideoFrame) -> av.VideoFrame:
    """The frame in the format overlays are drawn into: planar Y'CbCr (gray gets neutral 4:2:0 chroma)."""
    planar, layout = to_planar(frame)
    if layout.kind != "gray":
        return planar
    out = av.VideoFrame(frame.width, frame.height, planar_yuv_name(layout.bits, "420"))
    copy_props(planar, out)
    out.colorspace = int(matrix_of(planar))
    out.color_range = _range_code(is_full_range(planar, layout))
    plane_view(out, 0)[:] = plane_view(planar, 0)
    for index in (1, 2):
        plane_view(out, index)[:] = 1 << (layout.bits - 1)
    return out


def merge_edit(frame: av.VideoFrame, drawn: np.ndarray, changed: np.ndarray) -> av.VideoFrame:
    """A copy of ``frame`` where the pixels marked in ``changed`` come from the RGB image ``drawn``.

    Chroma samples are replaced where any luma pixel they cover changed. Gray frames become planar Y'CbCr 4:2:0.
    """
    planar, layout = to_planar(frame)
    full = is_full_range(planar, layout)
    target = planar_yuv_name(layout.bits, "420") if layout.kind == "gray" else layout.name
    matrix = matrix_of(planar)
    edited = av.VideoFrame.from_ndarray(drawn, format="rgb24").reformat(
        format=target, dst_colorspace=int(matrix.canonical), dst_color_range=_range_code(full)
    )
    out = av.VideoFrame(frame.width, frame.height, target)
    copy_props(planar, out)
    if layout.kind == "gray":
        out.colorspace = int(matrix)
        out.color_range = _range_code(full)
    _merge_plane(out, planar, edited, 0, changed)
    sub = _chroma_mask(changed, layout if layout.kind == "yuv" else None)
    for index in (1, 2):
        if layout.kind == "gray":
            plane_view(out, index)[:] = plane_view(edited, index)
        else:
            _merge_plane(out, planar, edited, index, sub)
    if len(out.planes) > 3:
        plane_view(out, 3)[:] = plane_view(planar, 3)
    return out


def _range_code(full: bool) -> int:
    """FFmpeg's ``color_range`` code of a range."""
    return (ColourRange.FULL if full else ColourRange.LIMITED).ffmpeg


def _merge_plane(
    out: av.VideoFrame, original: av.VideoFrame, edited: av.VideoFrame, index: int, mask: np.ndarray
) -> None:
    plane_view(out, index)[:] = np.where(mask, plane_view(edited, index), plane_view(original, index))


def _chroma_mask(mask: np.ndarray, layout: PlaneLayout | None) -> np.ndarray:
    """Reduce a full-resolution mask to the chroma grid: a chroma sample is edited if any pixel it covers is."""
    if layout is None:
        return mask
    fy, fx = layout.factors
    h, w = mask.shape
    ch, cw = -(-h // fy), -(-w // fx)
    padded = np.zeros((ch * fy, cw * fx), dtype=bool)
    padded[:h, :w] = mask
    return padded.reshape(ch, fy, cw, fx).any(axis=(1, 3))
