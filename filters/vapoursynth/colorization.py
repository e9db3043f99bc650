"""``colorize`` and ``transfer``: a clip's colour from a model, reference keyframes or both, through the core's
:class:`~chromaflow.core.video.VideoColorizer` (the engine every host uses, so the same options give the same
chroma).

Each function builds one :class:`~chromaflow.core.options.ColorizeOptions` from its parameters (the defaults and
checks live there; a bad value is a ``vs.Error`` naming the function) and hands it to the engine. Engines are built
when the function is called (so absent weights are reported at once); model copies are shared by VapourSynth's
worker threads through a :class:`~chromaflow.filters.vapoursynth.streams.StreamPool` of ``num_streams`` copies.
"""

import copy
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import vapoursynth as vs
from torch import Tensor

from chromaflow.core.colorizer import Colorizer
from chromaflow.core.errors import UsageError
from chromaflow.core.hints import Hint
from chromaflow.core.mixing import Models
from chromaflow.core.options import ColorizeOptions, given
from chromaflow.core.project import host_options, load_project
from chromaflow.core.video import VideoColorizer
from chromaflow.filters.vapoursynth.colour import ClipLayout, check_clip
from chromaflow.filters.vapoursynth.formats import output_clip, output_format
from chromaflow.filters.vapoursynth.frames import reported
from chromaflow.filters.vapoursynth.guides import HintsArg, parse_hints, reference_images
from chromaflow.filters.vapoursynth.luma import LumaSource
from chromaflow.filters.vapoursynth.rendering import ColorizeRenderer
from chromaflow.filters.vapoursynth.streams import StreamPool


def colorizer_factory(opts: ColorizeOptions) -> Callable[[int], Colorizer]:
    """A function building stream ``i``'s Colorizer from ``opts``: stream 0 takes ``opts.model`` itself, the others
    a copy of a given module or Colorizer, so streams never share one."""
    if opts.model is None:
        raise UsageError(
            "a stream of colorizers needs a model; without one, colour comes from references alone"
        )

    def build(i: int) -> Colorizer:
        own = opts if i == 0 else given(opts, model=copy.deepcopy(opts.model))
        colorizer = own.new_colorizer()
        assert colorizer is not None  # opts.model is not None (checked above)
        return colorizer

    return build


class PooledColorizer:
    """The ``predict_ab`` of a stream pool, for engines that call a colorizer from several threads."""

    def __init__(self, pool: StreamPool[Colorizer]) -> None:
        self.pool = pool

    @property
    def sizes(self) -> tuple[int, ...]:
        """The input sides of the pool's nets (every stream's are the same), for the engine's model L*."""
        return self.pool.engines[0].sizes

    def predict_ab(
        self, l: Tensor, hints: Sequence[Hint] | None = None, hint_size: tuple[int, int] | None = None
    ) -> Tensor:
        with self.pool.take() as engine:
            return engine.predict_ab(l, hints, hint_size)


def build_engine(
    clip: vs.VideoNode,
    layout: ClipLayout,
    func: str,
    opts: ColorizeOptions,
    *,
    colorizer: PooledColorizer | None,
    references: Any,
    keyframes: Sequence[int] | None,
    hints: dict[int, list[Hint]] | list[Hint],
    luma: LumaSource,
) -> VideoColorizer:
    """The core engine of one clip: the references read from the clip or the images, and ``opts`` as they are."""
    images = (
        reference_images(references, clip, layout, opts.transfer, keyframes, func)
        if references is not None
        else None
    )
    with reported(func):
        return VideoColorizer(
            clip.num_frames, luma, opts, colorizer=colorizer, references=images, hints=hints or None
        )


def colorize(
    clip: vs.VideoNode,
    model: Models | Colorizer | None = ColorizeOptions.model,
    references: Any = None,
    hints: HintsArg = None,
    transfer: str = ColorizeOptions.transfer,
    smooth: int = ColorizeOptions.smooth,
    device: str | None = ColorizeOptions.device,
    precision: str | None = ColorizeOptions.precision,
    num_streams: int = 1,
    out_format: Any = None,
    size: int | None = ColorizeOptions.size,
    keyframes: Sequence[int] | None = None,
    scene_cut_threshold: float | None = ColorizeOptions.scene_cut_threshold,
    batch: int = ColorizeOptions.batch_size,
    render_factor: int | None = ColorizeOptions.render_factor,
    mix: float | None = ColorizeOptions.mix,
    mix_rule: str | None = ColorizeOptions.mix_rule,
    mix_softness: float | None = ColorizeOptions.mix_softness,
    project: str | Path | None = None,
) -> vs.VideoNode:
    """Colorize a clip. GRAY, YUV (any subsampling) and RGB; 8-16 bit integer, half or single float samples.

    YUV stays YUV with its luma plane untouched (chroma is computed at full resolution, then subsampled at the
    frame's ``_ChromaLocation``); RGB stays RGB; GRAY becomes ``out_format`` (default YUV 4:4:4 of the clip's
    depth, luma copied bit for bit; or any RGB format).

    The options are those of the PyAV ``ColorizeNode`` and ``chromaflow colorize`` (one core engine,
    :class:`chromaflow.core.video.VideoColorizer`, so the same options give the same chroma). ``model``:
    a registry name such as ``"base"`` (bundled), ``"siggraph17"`` or ``"eccv16"`` (``chromaflow models download
    NAME``; ``chromaflow models list`` names them all), a ``.pt`` file, an ``nn.Module`` following the colour-net
    protocol, or a ready :class:`Colorizer`; two models as ``("A", "B")`` or ``"A+B"`` are mixed once per frame by
    ``mix_rule`` (``"mean"`` weighted by ``mix``, the first model's share, default 0.5; ``"saturated"``: per pixel
    the more saturated colour, blended over ``mix_softness`` ab units; :mod:`chromaflow.core.mixing`); ``None`` with
    ``references`` means transfer only. ``references``: ``{frame: image path or RGB array}`` or a reference clip of the same length
    whose coloured frames carry ``ChromaflowKeyframe=1`` (or are listed in ``keyframes``); their colours are carried
    through the shot by ``transfer`` (``auto``, ``flow``, ``propagate``, ``knn``, ``reinhard``, ``histogram``), the model
    filling in where propagation is unsure. ``hints``: colour points ``"x,y,#RRGGBB[,radius]"`` (frame pixels) for
    every frame, or ``{frame: [points]}`` (model only). ``smooth``: temporal smoothing radius in frames (0 = off;
    frame ``n`` then reads frames ``n - smooth .. n + smooth``). ``size``: the model's input side (None: each
    model's own, e.g. 256 for ``base``); ``render_factor`` N: DeOldify's spelling, ``size = 16 * N``. ``batch``: frames
    per model batch (a frame's batch is fixed, so results do not depend on request order). ``num_streams``: model
    copies, one per concurrent frame callback (VapourSynth R81 runs a Python filter's callbacks one at a time, so 1
    is enough there; the model's own threads use every core). Every frame gets ``ChromaflowKeyframeDistance``, ``ChromaflowTransferConfidence``,
    ``ChromaflowSceneCut`` and ``ChromaflowKeyframe`` (and ``ChromaflowModel`` with a model). ``project``: a studio
    project file (:mod:`chromaflow.core.project`) giving the model, size, hints, keyframes, transfer and smoothing
    (the other parameters then set only device, precision, batch and streams).
    """
    func = "colorize"
    layout = check_clip(clip, func)
    out = output_format(layout, clip, out_format, func)
    if num_streams < 1:
        raise vs.Error(f"chromaflow.{func}: num_streams must be at least 1, got {num_streams}")
    with reported(func):
        opts = ColorizeOptions(
            model=model,
            device=device,
            precision=precision,
            size=size,
            render_factor=render_factor,
            mix=mix,
            mix_rule=mix_rule,
            mix_softness=mix_softness,
            batch_size=batch,
            transfer=transfer,
            smooth=smooth,
            scene_cut_threshold=scene_cut_threshold,
        )
    parsed_hints: dict[int, list[Hint]] | list[Hint]
    if project is not None:  # the studio's project: its colour options, hints and keyframes
        if references is not None or hints is not None:
            raise vs.Error(
                f"chromaflow.{func}: project= brings its own hints and keyframes; leave out hints and references"
            )
        with reported(func):
            loaded = load_project(project)
            opts = host_options(loaded, opts, "")
            project_hints, references = loaded.engine_inputs(clip.num_frames)
        model, parsed_hints = opts.model, project_hints or []
    else:
        parsed_hints = parse_hints(hints, clip.num_frames, func)
    if model is None and references is None:
        raise vs.Error(f"chromaflow.{func}: give a model, references, or both")
    pool: StreamPool[Colorizer] | None = None
    if model is not None:
        with reported(func):
            pool = StreamPool(colorizer_factory(opts), num_streams)
    luma = LumaSource(clip, layout, func)
    engine = build_engine(
        clip,
        layout,
        func,
        opts,
        luma=luma,
        colorizer=PooledColorizer(pool) if pool is not None else None,
        references=references,
        keyframes=keyframes,
        hints=parsed_hints,
    )
    name = pool.engines[0].name if pool is not None else ""
    return output_clip(clip, layout, out, ColorizeRenderer(func, engine, luma, layout, out, name))


def transfer(
    clip: vs.VideoNode,
    ref: Any,
    mode: str = ColorizeOptions.transfer,
    keyframes: Sequence[int] | None = None,
    out_format: Any = None,
    scene_cut_threshold: float | None = ColorizeOptions.scene_cut_threshold,
    smooth: int = 0,
) -> vs.VideoNode:
    """Carry the colours of reference keyframes through a clip, without a colour model.

    ``ref``: ``{frame: image path or RGB array}`` or a reference clip (see :func:`colorize`). ``mode``: ``auto``
    (``flow`` fused with feature matching; its fused confidence is ``ChromaflowTransferConfidence``), ``flow``
    (propagate, with a texture-matching fallback), ``propagate``, ``knn``, ``reinhard`` or ``histogram`` (the last
    three take references of other content, of any size). ``smooth``: temporal smoothing radius (default off: the
    propagated colours are already coherent). The same as ``colorize(clip, model=None, references=ref, ...)``.
    Formats and properties as :func:`colorize`; every frame gets ``ChromaflowKeyframeDistance``,
    ``ChromaflowTransferConfidence``, ``ChromaflowSceneCut`` and ``ChromaflowKeyframe``.
    """
    func = "transfer"
    layout = check_clip(clip, func)
    out = output_format(layout, clip, out_format, func)
    with reported(func):
        opts = ColorizeOptions(
            model=None, transfer=mode, smooth=smooth, scene_cut_threshold=scene_cut_threshold
        )
    luma = LumaSource(clip, layout, func)
    engine = build_engine(
        clip,
        layout,
        func,
        opts,
        luma=luma,
        colorizer=None,
        references=ref,
        keyframes=keyframes,
        hints=[],
    )
    return output_clip(clip, layout, out, ColorizeRenderer(func, engine, luma, layout, out, ""))
