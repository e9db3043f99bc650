"""ColorizeNode: colorize PyAV video frames, keeping each Y'CbCr frame's luma plane bit for bit.

The node is a thin host over the core's per-sequence engine, :class:`~chromaflow.core.video.VideoColorizerStream`
(the same orchestration VapourSynth's ``colorize`` runs through random access): each frame's Y' plane becomes L*
(:func:`~chromaflow.core.colorizer.ycbcr_lightness`), the stream returns the frames whose colour is ready (model
batches, keyframe transfer, temporal smoothing), and :func:`~chromaflow.core.colorizer.ycbcr_chroma` turns L* + ab
into the frame's chroma code values.

Automatic colour without temporal context (no references, ``smooth=0``, one hint list) on a CUDA colorizer takes
the device-resident engine (:class:`~chromaflow.core.device_engine.DeviceColorizerStream`: Y' planes up, chroma
planes down, batches overlapped); ``engine="video"`` or ``"device"`` forces a choice. Both give the same code
values to within one step.

``ColorizeNode(model=None, references=...)`` is the keyframe-transfer node: colours of reference keyframes carried
through the shot without a colour model (there is no separate TransferNode; it would add nothing).

Input formats: planar Y'CbCr (4:2:0, 4:2:2, 4:4:4, 4:4:0, 4:1:1, 8-16 bit, with or without alpha) keep their format;
gray (8-16 bit) becomes planar Y'CbCr of the same depth (4:2:0 by default, ``gray_to="444"`` for 4:4:4) with the
gray plane as its luma; other formats (NV12, P010, RGB, ...) are unpacked to planar Y'CbCr first (NV12/P010-style
formats keep their luma samples; RGB has none to keep).
"""

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import av
import numpy as np
import torch

from chromaflow.core.colorizer import Colorizer, ycbcr_chroma, ycbcr_lightness
from chromaflow.core.colour import YCbCrFormat
from chromaflow.core.colour.tags import ColourRange
from chromaflow.core.device_engine import ChromaLayout, DeviceColorizerStream, device_engine_for
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.hints import Hint
from chromaflow.core.mixing import Models
from chromaflow.core.options import ColorizeOptions
from chromaflow.core.project import host_options, load_project
from chromaflow.core.shots import ShotCuts, cut_luma
from chromaflow.core.transfer import PropagationParams
from chromaflow.core.video import Ready, VideoColorizerStream, model_frame_info
from chromaflow.filters.pyav.frames import (
    PlaneLayout,
    copy_props,
    layout_of,
    matrix_of,
    planar_yuv_name,
    plane_view,
    siting_of,
    to_planar,
    ycbcr_format_of,
)
from chromaflow.filters.pyav.node_options import node_options
from chromaflow.filters.pyav.nodes import FrameNode


class ColorizeNode(FrameNode):
    """Colorize frames with the core video engine; a frame comes out after at most :attr:`delay` more pushes.

    ``colorizer``: a ready :class:`Colorizer`; otherwise one is built from ``model`` (a registry name, a ``.pt``
    file or an ``nn.Module`` colour net; two of them as ``"A+B"`` or ``("A", "B")`` mix their colours by
    ``mix_rule``: ``mean`` weighted by ``mix``, or ``saturated`` softened by ``mix_softness``, see
    :mod:`chromaflow.core.mixing`), ``device``, ``precision`` and ``size`` (None: each model's own side;
    ``render_factor`` N is DeOldify's ``size = 16 * N``); ``model=None`` means no colour
    model (keyframe transfer alone, which needs ``references``). ``references``: ``{frame index: RGB image or image
    path}``, carried through the shot by ``transfer`` (``auto``, ``flow``, ``propagate``, ``knn``, ``reinhard``,
    ``histogram``), the model filling in where propagation is unsure. ``hints``: colour points in frame pixels
    (model only). ``smooth``: temporal smoothing radius in frames (0 = off). ``batch_size``: frames per model
    batch. ``on_info(frame_index, info)`` receives each output frame's facts (keyframe distance, transfer
    confidence, scene cut, keyframe flag; what VapourSynth writes as frame properties). ``engine``: ``auto``
    (the device-resident engine where it applies and the colorizer is on CUDA), ``device`` or ``video`` (module
    docstring). ``scene_cut_threshold`` (None: the detector's default), ``detect_cuts`` and ``params`` (working
    size, propagation tuning) are those of :class:`~chromaflow.core.options.ColorizeOptions`.

    ``options``: the run's :class:`ColorizeOptions` whole, instead of the option keywords (``model`` to
    ``params``; giving both is refused). ``colorizer``, ``references``, ``hints``, ``gray_to`` and ``on_info``
    are the node's own. ``project``: a studio project file (:mod:`chromaflow.core.project`) giving the colour
    options, hints and keyframes (the keywords then set only device, precision, batch size and engine).
    ``overlap``: the colour model runs on a worker thread a batch ahead of the frames coming out (the same frames,
    one batch more :attr:`delay`; what ``chromaflow colorize`` does).
    """

    def __init__(
        self,
        colorizer: Colorizer | None = None,
        *,
        model: Models | Colorizer | None = ColorizeOptions.model,
        references: Mapping[int, Any] | None = None,
        transfer: str = ColorizeOptions.transfer,
        hints: Sequence[Hint] | Mapping[int, Sequence[Hint]] | None = None,
        smooth: int = ColorizeOptions.smooth,
        smooth_strength: float = ColorizeOptions.smooth_strength,
        batch_size: int = ColorizeOptions.batch_size,
        device: str | None = ColorizeOptions.device,
        precision: str | None = ColorizeOptions.precision,
        size: int | None = ColorizeOptions.size,
        gray_to: str = "420",
        on_info: Callable[[int, dict[str, Any]], None] | None = None,
        engine: str = ColorizeOptions.engine,
        scene_cut_threshold: float | None = ColorizeOptions.scene_cut_threshold,
        detect_cuts: bool = ColorizeOptions.detect_cuts,
        params: PropagationParams | None = None,
        options: ColorizeOptions | None = None,
        render_factor: int | None = ColorizeOptions.render_factor,
        mix: float | None = ColorizeOptions.mix,
        mix_rule: str | None = ColorizeOptions.mix_rule,
        mix_softness: float | None = ColorizeOptions.mix_softness,
        project: str | Path | None = None,
        overlap: bool = False,
    ) -> None:
        super().__init__()
        if gray_to not in ("420", "422", "444"):
            raise UsageError(f"gray_to must be 420, 422 or 444, got {gray_to!r}")
        opts = node_options(
            "ColorizeNode",
            ColorizeOptions,
            options,
            model=model,
            transfer=transfer,
            smooth=smooth,
            smooth_strength=smooth_strength,
            batch_size=batch_size,
            device=device,
            precision=precision,
            size=size,
            render_factor=render_factor,
            mix=mix,
            mix_rule=mix_rule,
            mix_softness=mix_softness,
            engine=engine,
            scene_cut_threshold=scene_cut_threshold,
            detect_cuts=detect_cuts,
            params=params,
        )
        if project is not None:  # the studio's project file: its colour options, hints and keyframes
            if references is not None or hints is not None:
                raise UsageError(
                    "ColorizeNode: project= brings its own hints and keyframes; leave out hints= and references="
                )
            loaded = load_project(project)
            opts = host_options(loaded, opts, "ColorizeNode")
            hints, references = loaded.engine_inputs()
        self.options = opts
        if colorizer is None:
            colorizer = opts.new_colorizer()
        self.colorizer = colorizer
        self.device_engine = device_engine_for(opts, colorizer, references, hints)
        self.batch_size = opts.batch_size
        self.stream: VideoColorizerStream | None = None
        self._device_stream: DeviceColorizerStream | None = None
        self._shots: ShotCuts | None = None
        if self.device_engine is None:
            self.stream = VideoColorizerStream(
                opts, colorizer=colorizer, references=references, hints=hints, overlap=overlap
            )
        else:
            # the device path reports the cuts the video engine decides: at its working size (cut_luma)
            self._shots = ShotCuts(opts.cut_detector())
        self.gray_to = gray_to
        self._held: dict[int, tuple[av.VideoFrame, PlaneLayout, np.ndarray | None]] = {}
        self._first: tuple[int, int, str] | None = None
        self._fmt = YCbCrFormat()
        self._factors = (1, 1)
        self._count = 0
        self.on_info = on_info

    @property
    def delay(self) -> int:
        if self.stream is None:
            return 2 * self.batch_size - 1
        return self.stream.lookahead

    def _accept(self, frame: av.VideoFrame) -> Iterable[av.VideoFrame]:
        planar, layout = to_planar(frame)
        shape = (planar.width, planar.height, layout.name)
        if self._first is None:
            self._first = shape
            self._fmt = ycbcr_format_of(planar, layout)
            self._factors = layout.factors if layout.kind == "yuv" else _factors(self.gray_to)
        elif shape != self._first:
            w, h, name = self._first
            raise InputError(
                f"video frame {self._count} is {planar.width}x{planar.height} {layout.name}, but the stream started "
                f"with {w}x{h} {name}; add a scale/format filter first"
            )
        index = self._count
        self._count += 1
        if self.stream is None:
            return self._accept_on_device(index, planar, layout)
        l_star = ycbcr_lightness(plane_view(planar, 0), self._fmt).numpy()
        self._held[index] = (planar, layout, l_star)
        return self._build(self.stream.push(l_star))

    def _accept_on_device(
        self, index: int, planar: av.VideoFrame, layout: PlaneLayout
    ) -> list[av.VideoFrame]:
        if self._device_stream is None:
            assert self.device_engine is not None
            chroma_layout = ChromaLayout(self._fmt, self._factors, siting_of(planar))
            self._device_stream = DeviceColorizerStream(self.device_engine, chroma_layout, self.batch_size)
        self._held[index] = (planar, layout, None)
        y_plane = np.ascontiguousarray(plane_view(planar, 0))
        if self.on_info is not None:
            self._report_cut(index, y_plane)
        return self._build_planes(self._device_stream.push(index, y_plane))

    def _report_cut(self, index: int, y_plane: np.ndarray) -> None:
        """The model-only facts of frame ``index`` (what the video engine reports: its cut statistics, of
        :func:`~chromaflow.core.shots.cut_luma`). Frames come in order, so only the previous frame's statistics
        are kept."""
        assert self._shots is not None and self.on_info is not None
        cut = False
        if self._shots.detector is not None:

            def luma_of(n: int) -> np.ndarray:
                assert n == index, "the previous frame's statistics are kept"
                return cut_luma(ycbcr_lightness(y_plane, self._fmt).numpy(), self.options.params.max_side)

            self._shots.stats(index, luma_of)
            cut = self._shots.is_cut(index, luma_of)
            self._shots.release_before(index)
        self.on_info(index, model_frame_info(cut))

    def _build_planes(self, ready: list[tuple[int, np.ndarray]]) -> list[av.VideoFrame]:
        out = []
        for index, planes in ready:
            src, layout, _ = self._held.pop(index)
            out.append(self._frame(src, layout, planes))
        return out

    def _finish(self) -> Iterable[av.VideoFrame]:
        if self._device_stream is not None:
            return self._build_planes(self._device_stream.flush())
        return self._build(self.stream.flush()) if self.stream is not None and self._count else []

    def _build(self, ready: list[Ready]) -> list[av.VideoFrame]:
        if not ready:
            return []
        held = [self._held.pop(item.frame_index) for item in ready]
        lightness = []
        for _, _, kept in held:
            assert kept is not None, "frames on the video engine keep their L*"
            lightness.append(kept)
        l_star = torch.from_numpy(np.stack(lightness))[:, None]
        ab = torch.from_numpy(np.stack([item.ab for item in ready]))
        codes = ycbcr_chroma(l_star, ab, self._fmt, self._factors, siting_of(held[0][0])).numpy()
        dtype = np.uint8 if (self._fmt.bits or 16) <= 8 else np.uint16
        out = []
        for item, (src, layout, _), planes in zip(ready, held, codes.astype(dtype), strict=True):
            if self.on_info is not None:
                self.on_info(item.frame_index, item.info)
            out.append(self._frame(src, layout, planes))
        return out

    def _frame(self, src: av.VideoFrame, layout: PlaneLayout, chroma: np.ndarray) -> av.VideoFrame:
        if layout.kind == "gray":
            out = av.VideoFrame(src.width, src.height, planar_yuv_name(layout.bits, self.gray_to))
            copy_props(src, out)
            out.colorspace = int(matrix_of(src))  # the matrix its chroma is coded in
            out.color_range = (ColourRange.FULL if self._fmt.full_range else ColourRange.LIMITED).ffmpeg
            planes_from = [0]
        else:
            out = av.VideoFrame(src.width, src.height, src.format.name)
            copy_props(src, out)
            planes_from = [0] + ([3] if len(src.planes) > 3 else [])
        for index in planes_from:
            plane_view(out, index)[:] = plane_view(src, index)
        plane_view(out, 1)[:] = chroma[0]
        plane_view(out, 2)[:] = chroma[1]
        return out


def _factors(chroma: str) -> tuple[int, int]:
    return {"420": (2, 2), "422": (1, 2), "444": (1, 1)}[chroma]


def output_format(input_format: str, gray_to: str = "420") -> str:
    """The pixel format a :class:`ColorizeNode` produces for ``input_format``."""
    layout = layout_of(input_format)
    if layout.kind == "gray":
        return planar_yuv_name(layout.bits, gray_to)
    if layout.kind == "yuv":
        return layout.name
    from chromaflow.filters.pyav.frames import unpacked_format

    return unpacked_format(layout)
