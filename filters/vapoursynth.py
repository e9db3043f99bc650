"""VapourSynth functions: clip in, clip out.

    import vapoursynth as vs
    from chromaflow.filters import vapoursynth as cf

    clip = cf.colorize(clip)                          # GRAY/YUV/RGB in; YUV keeps its luma plane bit for bit
    clip = cf.deflicker(clip)                         # colour flicker of a colour clip removed, luma untouched
    clip = cf.deepfake(clip)                          # scores faces; ChromaflowDeepfakeScore etc. per frame

Every function checks its clip when called and raises ``vs.Error("chromaflow.<function>: ...")`` saying what to do;
errors while rendering a frame name the function and the frame. Engines are built when the function is called (so
absent weights are reported at once) and shared by VapourSynth's worker threads through a pool of ``num_streams``
copies (:mod:`chromaflow.filters.vs_streams`); ``deflicker`` lives in :mod:`chromaflow.filters.vs_deflicker`. Colour-description properties are read and written as
:mod:`chromaflow.filters.vs_colour` documents; per-frame results go into properties prefixed ``Chromaflow``.
"""

import copy
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import vapoursynth as vs
from torch import Tensor, nn

from chromaflow.core.colorizer import Colorizer, join_in_gamut, ycbcr_chroma, ycbcr_lightness
from chromaflow.core.colour import (
    ChromaLocation,
    downsample_chroma,
    lightness,
    rgb_to_ycbcr,
)
from chromaflow.core.deepfake import DeepfakeScorer, FrameFaces, FrameResult
from chromaflow.core.hints import Hint, parse_hint
from chromaflow.core.keyframes import MODES
from chromaflow.core.labarrays import as_rgb_float, load_rgb
from chromaflow.core.overlay import OverlayStyle, draw_overlay
from chromaflow.core.video import DEFAULT_SMOOTH_RADIUS, VideoColorizer
from chromaflow.filters.vs_colour import ClipLayout, ColourDescription, check_clip, describe
from chromaflow.filters.vs_deflicker import deflicker
from chromaflow.filters.vs_frames import frame_rgb, read_plane, reported, store_plane
from chromaflow.filters.vs_streams import StreamPool

__all__ = ["PROP_PREFIX", "colorize", "deepfake", "deflicker", "transfer"]

PROP_PREFIX = "Chromaflow"
core = vs.core


def _resolve_format(value: Any, func: str) -> vs.VideoFormat:
    if isinstance(value, vs.VideoFormat):
        return value
    try:
        return core.get_video_format(int(value))
    except (vs.Error, TypeError, ValueError) as err:
        raise vs.Error(
            f"chromaflow.{func}: out_format {value!r} is not a video format; pass one such as vs.YUV444P8"
        ) from err


def _output_format(layout: ClipLayout, clip: vs.VideoNode, out_format: Any, func: str) -> vs.VideoFormat:
    """The output format: the input's for YUV/RGB; for GRAY ``out_format`` (default YUV 4:4:4, same depth)."""
    src = clip.format
    assert src is not None
    if layout.family != vs.GRAY:
        if out_format is not None and _resolve_format(out_format, func).id != src.id:
            raise vs.Error(
                f"chromaflow.{func}: out_format applies to GRAY clips only; a {src.name} clip stays {src.name} "
                "(so its luma is kept bit for bit). Convert the result with core.resize afterwards"
            )
        return src
    if out_format is None:
        return core.query_video_format(vs.YUV, src.sample_type, src.bits_per_sample, 0, 0)
    fmt = _resolve_format(out_format, func)
    if fmt.color_family == vs.RGB and fmt.subsampling_w == fmt.subsampling_h == 0:
        ok = (
            fmt.bits_per_sample in (16, 32) if fmt.sample_type == vs.FLOAT else 8 <= fmt.bits_per_sample <= 16
        )
        if ok:
            return fmt
    if (
        fmt.color_family == vs.YUV
        and fmt.sample_type == src.sample_type
        and fmt.bits_per_sample == src.bits_per_sample
        and fmt.subsampling_w <= 2
        and fmt.subsampling_h <= 2
    ):
        return fmt
    raise vs.Error(
        f"chromaflow.{func}: cannot turn {src.name} into {fmt.name}; a GRAY clip becomes YUV of its own sample "
        f"type and depth (its luma copied bit for bit, e.g. {src.name.replace('Gray', 'YUV444P')}) or RGB; "
        "convert the result with core.resize afterwards"
    )


# ------------------------------------------------------------------------------------------------ hints


HintsArg = Sequence[str | Hint] | Mapping[int, Sequence[str | Hint]] | None


def _parse_hints(hints: HintsArg, num_frames: int, func: str) -> dict[int, list[Hint]] | list[Hint]:
    """Hints for every frame (a list) or per frame (``{frame: [hints]}``); strings are ``x,y,#RRGGBB[,radius]``."""

    def one_list(items: Sequence[str | Hint]) -> list[Hint]:
        if isinstance(items, str | Hint):
            items = [items]
        return [item if isinstance(item, Hint) else parse_hint(str(item)) for item in items]

    with reported(func):
        if hints is None:
            return []
        if isinstance(hints, Mapping):
            out: dict[int, list[Hint]] = {}
            for key, items in hints.items():
                n = int(key)
                if not 0 <= n < num_frames:
                    raise vs.Error(
                        f"chromaflow.{func}: hints given for frame {n}, but the clip has frames 0..{num_frames - 1}"
                    )
                out[n] = one_list(items)
            return out
        return one_list(hints)


# ------------------------------------------------------------------------------------------------ colorize


def _colorizer_factory(
    model: str | Path | nn.Module | Colorizer, device: str | None, precision: str | None, size: int
) -> Any:
    """A function building stream ``i``'s Colorizer (module copies are independent, so streams never share one)."""

    def build(i: int) -> Colorizer:
        if isinstance(model, Colorizer):
            return model if i == 0 else copy.deepcopy(model)
        net = copy.deepcopy(model) if isinstance(model, nn.Module) and i > 0 else model
        return Colorizer(net, device=device, precision=precision, size=size)

    return build


class _PooledColorizer:
    """The ``predict_ab`` of a stream pool, for engines that call a colorizer from several threads."""

    def __init__(self, pool: StreamPool[Colorizer]) -> None:
        self.pool = pool

    def predict_ab(
        self, l: Tensor, hints: Sequence[Hint] | None = None, hint_size: tuple[int, int] | None = None
    ) -> Tensor:
        with self.pool.take() as engine:
            return engine.predict_ab(l, hints, hint_size)


def frame_lightness(frame: vs.VideoFrame, layout: ClipLayout, desc: ColourDescription) -> np.ndarray:
    """L* ``(H, W)`` float32 of a frame, as the engine reads it: Y' through the core's table, RGB through Lab."""
    if layout.family == vs.RGB:
        return lightness(frame_rgb(frame, layout, desc))[0].numpy()
    return ycbcr_lightness(read_plane(frame, 0), desc.ycbcr(layout)).numpy()


class _LumaSource:
    """The engine's frame source: ``luma(k)`` is frame ``k``'s L* ``(H, W)`` float32, read as the renderer reads it.

    The renderer :meth:`put` s the L* of the frame it is rendering (and a fetched frame is kept too), so the engine
    asking for a frame that was just rendered (its own, or the previous one for a chain or a scene cut) gets it
    without a nested ``get_frame`` and a second conversion; only frames not seen lately are fetched.
    """

    def __init__(self, clip: vs.VideoNode, layout: ClipLayout, func: str, capacity: int = 32) -> None:
        self.clip = clip
        self.layout = layout
        self.func = func
        self.capacity = capacity
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def put(self, k: int, l_star: np.ndarray) -> None:
        with self._lock:
            self._cache[k] = l_star
            self._cache.move_to_end(k)
            while len(self._cache) > self.capacity:
                self._cache.popitem(last=False)

    def __call__(self, k: int) -> np.ndarray:
        with self._lock:
            cached = self._cache.get(k)
        if cached is not None:
            return cached
        frame = self.clip.get_frame(k)
        l_star = frame_lightness(frame, self.layout, describe(frame.props, self.layout, self.func, k))
        self.put(k, l_star)
        return l_star


class _ColorizeRenderer:
    """Renders one output frame of :func:`colorize` / :func:`transfer` (called from VapourSynth's worker threads).

    Colour (ab) comes from the core's :class:`VideoColorizer` (random access, thread-safe: model batches, keyframe
    transfer, smoothing); the host only reads L* and writes the result: chroma code values from
    :func:`ycbcr_chroma` (the luma of Y'CbCr output is the source's own plane) or in-gamut RGB. Frame properties
    come from ``engine.info(n)``.
    """

    def __init__(
        self,
        func: str,
        engine: VideoColorizer,
        luma: _LumaSource,
        layout: ClipLayout,
        out: vs.VideoFormat,
        model_name: str,
    ) -> None:
        self.func = func
        self.engine = engine
        self.luma = luma
        self.layout = layout
        self.out = out
        self.model_name = model_name
        self.out_float = out.sample_type == vs.FLOAT
        self.factors = (1 << out.subsampling_h, 1 << out.subsampling_w)

    def __call__(self, n: int, f: vs.VideoFrame | list[vs.VideoFrame]) -> vs.VideoFrame:
        with reported(self.func, n):
            if isinstance(f, list):  # GRAY in: f = [blank output frame with the source's props, source frame]
                fout, src = f[0].copy(), f[1]
            else:
                fout, src = f.copy(), f
            desc = describe(src.props, self.layout, self.func, n)
            desc_out = desc if self.layout.family != vs.GRAY else _gray_output_description(desc, self.out)
            l_np = frame_lightness(src, self.layout, desc)
            self.luma.put(n, l_np)
            l_star = torch.from_numpy(l_np)[None, None]
            ab = torch.from_numpy(self.engine.ab(n, l_np))[None]
            if self.out.color_family == vs.RGB:
                rgb, _ = join_in_gamut(l_star, ab)
                scale = 1.0 if self.out_float else float((1 << self.out.bits_per_sample) - 1)
                for p in range(3):
                    store_plane(fout, p, rgb[0, p] * scale, self.out.bits_per_sample, self.out_float)
            else:
                if self.layout.family == vs.GRAY:
                    read_plane(fout, 0)[...] = read_plane(src, 0)  # the luma, bit for bit
                codes = ycbcr_chroma(l_star, ab, desc.ycbcr(self.layout), self.factors, desc_out.siting)[0]
                for p in (1, 2):
                    store_plane(fout, p, codes[p - 1], self.out.bits_per_sample, self.out_float)
            desc_out.write(fout.props, self.out.color_family)
            if self.model_name:
                fout.props[PROP_PREFIX + "Model"] = self.model_name
            _write_info(fout.props, self.engine.info(n))
            return fout


def _write_info(props: Any, info: Mapping[str, Any]) -> None:
    props[PROP_PREFIX + "KeyframeDistance"] = int(info["keyframe_distance"])
    props[PROP_PREFIX + "TransferConfidence"] = float(info["confidence"])
    props[PROP_PREFIX + "SceneCut"] = int(info["scene_cut"])
    props[PROP_PREFIX + "Keyframe"] = int(info["is_keyframe"])


def _gray_output_description(desc: ColourDescription, out: vs.VideoFormat) -> ColourDescription:
    """A GRAY clip's description applied to its colour output (chroma sited left, the MPEG-2 default)."""
    full = desc.full_range or out.sample_type == vs.FLOAT
    return ColourDescription(desc.matrix, desc.transfer, desc.primaries, full, ChromaLocation.LEFT)


# ------------------------------------------------------------------------------------------------ references

KEYFRAME_PROP = PROP_PREFIX + "Keyframe"


def _reference_images(
    references: Any,
    clip: vs.VideoNode,
    layout: ClipLayout,
    mode: str,
    keyframes: Sequence[int] | None,
    func: str,
) -> dict[int, np.ndarray]:
    """``{frame: RGB float (H, W, 3)}`` from a mapping of paths/arrays or from a reference clip."""
    if isinstance(references, vs.VideoNode):
        ref_layout = check_clip(references, func)
        if references.num_frames != clip.num_frames:
            raise vs.Error(
                f"chromaflow.{func}: the reference clip has {references.num_frames} frames, the clip "
                f"{clip.num_frames}; give a reference clip of the same length (or a {{frame: image}} dict)"
            )
        if keyframes is None:
            keyframes = [
                n for n in range(references.num_frames) if references.get_frame(n).props.get(KEYFRAME_PROP, 0)
            ]
            if not keyframes:
                raise vs.Error(
                    f"chromaflow.{func}: no frame of the reference clip is marked as a keyframe; mark them with "
                    f"core.std.SetFrameProps(ref, {KEYFRAME_PROP}=1) on the coloured frames, or pass keyframes=[...]"
                )
        images = {}
        for n in keyframes:
            if not 0 <= int(n) < clip.num_frames:
                raise vs.Error(
                    f"chromaflow.{func}: keyframe {n} is outside the clip (0..{clip.num_frames - 1})"
                )
            frame = references.get_frame(int(n))
            rgb = frame_rgb(frame, ref_layout, describe(frame.props, ref_layout, func, int(n)))
            images[int(n)] = rgb.permute(1, 2, 0).numpy()
    elif isinstance(references, Mapping):
        images = {}
        for key, value in references.items():
            n = int(key)
            if not 0 <= n < clip.num_frames:
                raise vs.Error(
                    f"chromaflow.{func}: a reference is given for frame {n}, but the clip has frames "
                    f"0..{clip.num_frames - 1}"
                )
            with reported(func):
                images[n] = (
                    load_rgb(value) if isinstance(value, str | Path) else as_rgb_float(np.asarray(value))
                )
    else:
        raise vs.Error(
            f"chromaflow.{func}: references must be a {{frame: image path or RGB array}} dict or a reference clip "
            f"of the same length, got {type(references).__name__}"
        )
    if not images:
        raise vs.Error(f"chromaflow.{func}: no references given; pass {{frame: image}} or a reference clip")
    if mode in ("propagate", "auto"):
        for n, img in images.items():
            rh, rw = img.shape[:2]
            if (rh, rw) != (layout.height, layout.width):
                raise vs.Error(
                    f"chromaflow.{func}: the reference for frame {n} is {rw}x{rh} but the clip is "
                    f"{layout.width}x{layout.height}; a keyframe reference is a colouring of that frame, so give "
                    "it the clip's size, or use transfer='knn' (or 'reinhard'/'histogram') for references of "
                    "other content"
                )
    return images


def _build_engine(
    clip: vs.VideoNode,
    layout: ClipLayout,
    func: str,
    *,
    colorizer: Any,
    references: Any,
    mode: str,
    keyframes: Sequence[int] | None,
    hints: dict[int, list[Hint]] | list[Hint],
    smooth: int,
    scene_cut_threshold: float | None,
    batch: int,
    luma: _LumaSource,
) -> VideoColorizer:
    """The core engine of one clip: every option of :func:`colorize` goes to :class:`VideoColorizer`."""
    if mode not in MODES:
        raise vs.Error(f"chromaflow.{func}: unknown transfer mode {mode!r}; use one of {', '.join(MODES)}")
    if not isinstance(smooth, int) or smooth < 0:
        raise vs.Error(f"chromaflow.{func}: smooth is a radius in frames, an integer >= 0; got {smooth!r}")
    if batch < 1:
        raise vs.Error(f"chromaflow.{func}: batch must be at least 1, got {batch}")
    images = (
        _reference_images(references, clip, layout, mode, keyframes, func) if references is not None else None
    )
    options: dict[str, Any] = {}
    if scene_cut_threshold is not None:
        options["scene_cut_threshold"] = scene_cut_threshold
    with reported(func):
        return VideoColorizer(
            clip.num_frames,
            luma,
            colorizer=colorizer,
            references=images,
            transfer=mode,
            hints=hints or None,
            smooth_radius=smooth,
            batch_size=batch,
            **options,
        )


def _finish(
    clip: vs.VideoNode, layout: ClipLayout, out: vs.VideoFormat, renderer: _ColorizeRenderer
) -> vs.VideoNode:
    if layout.family == vs.GRAY:
        blank = core.std.BlankClip(clip, format=out.id, keep=True)
        base = core.std.CopyFrameProps(blank, clip)
        return core.std.ModifyFrame(base, [base, clip], renderer)
    return core.std.ModifyFrame(clip, clip, renderer)


# ------------------------------------------------------------------------------------------------ public


def colorize(
    clip: vs.VideoNode,
    model: str | Path | nn.Module | Colorizer | None = "base",
    references: Any = None,
    hints: HintsArg = None,
    transfer: str = "auto",
    smooth: int = DEFAULT_SMOOTH_RADIUS,
    device: str | None = None,
    precision: str | None = None,
    num_streams: int = 1,
    out_format: Any = None,
    size: int = 256,
    keyframes: Sequence[int] | None = None,
    scene_cut_threshold: float | None = None,
    batch: int = 8,
) -> vs.VideoNode:
    """Colorize a clip. GRAY, YUV (any subsampling) and RGB; 8-16 bit integer, half or single float samples.

    YUV stays YUV with its luma plane untouched (chroma is computed at full resolution, then subsampled at the
    frame's ``_ChromaLocation``); RGB stays RGB; GRAY becomes ``out_format`` (default YUV 4:4:4 of the clip's
    depth, luma copied bit for bit; or any RGB format).

    The options are those of the PyAV ``ColorizeNode`` and ``chromaflow colorize`` (one core engine,
    :class:`chromaflow.core.video.VideoColorizer`, so the same options give the same chroma). ``model``:
    ``"base"`` (bundled), ``"siggraph17"``, ``"eccv16"`` (``chromaflow models download NAME``), a ``.pt`` file, an
    ``nn.Module`` following the colour-net protocol, or a ready :class:`Colorizer`; ``None`` with ``references``
    means transfer only. ``references``: ``{frame: image path or RGB array}`` or a reference clip of the same length
    whose coloured frames carry ``ChromaflowKeyframe=1`` (or are listed in ``keyframes``); their colours are carried
    through the shot by ``transfer`` (``auto``, ``propagate``, ``knn``, ``reinhard``, ``histogram``), the model
    filling in where propagation is unsure. ``hints``: colour points ``"x,y,#RRGGBB[,radius]"`` (frame pixels) for
    every frame, or ``{frame: [points]}`` (model only). ``smooth``: temporal smoothing radius in frames (0 = off;
    frame ``n`` then reads frames ``n - smooth .. n + smooth``). ``size``: the model's input side. ``batch``: frames
    per model batch (a frame's batch is fixed, so results do not depend on request order). ``num_streams``: model
    copies, one per concurrent frame callback (VapourSynth R81 runs a Python filter's callbacks one at a time, so 1
    is enough there; the model's own threads use every core). Every frame gets ``ChromaflowKeyframeDistance``, ``ChromaflowTransferConfidence``,
    ``ChromaflowSceneCut`` and ``ChromaflowKeyframe`` (and ``ChromaflowModel`` with a model).
    """
    func = "colorize"
    layout = check_clip(clip, func)
    out = _output_format(layout, clip, out_format, func)
    if num_streams < 1:
        raise vs.Error(f"chromaflow.{func}: num_streams must be at least 1, got {num_streams}")
    parsed_hints = _parse_hints(hints, clip.num_frames, func)
    pool: StreamPool[Colorizer] | None = None
    if model is not None:
        with reported(func):
            pool = StreamPool(_colorizer_factory(model, device, precision, size), num_streams)
    elif references is None:
        raise vs.Error(f"chromaflow.{func}: give a model, references, or both")
    if references is not None and parsed_hints:
        raise vs.Error(f"chromaflow.{func}: hints apply to the model alone; with references, leave hints out")
    luma = _LumaSource(clip, layout, func)
    engine = _build_engine(
        clip,
        layout,
        func,
        luma=luma,
        colorizer=_PooledColorizer(pool) if pool is not None else None,
        references=references,
        mode=transfer,
        keyframes=keyframes,
        hints=parsed_hints,
        smooth=smooth,
        scene_cut_threshold=scene_cut_threshold,
        batch=batch,
    )
    name = pool.engines[0].name if pool is not None else ""
    return _finish(clip, layout, out, _ColorizeRenderer(func, engine, luma, layout, out, name))


def transfer(
    clip: vs.VideoNode,
    ref: Any,
    mode: str = "auto",
    keyframes: Sequence[int] | None = None,
    out_format: Any = None,
    scene_cut_threshold: float | None = None,
    smooth: int = 0,
) -> vs.VideoNode:
    """Carry the colours of reference keyframes through a clip, without a colour model.

    ``ref``: ``{frame: image path or RGB array}`` or a reference clip (see :func:`colorize`). ``mode``: ``auto``
    (propagate, with a texture-matching fallback), ``propagate``, ``knn``, ``reinhard`` or ``histogram`` (the last
    three take references of other content, of any size). ``smooth``: temporal smoothing radius (default off: the
    propagated colours are already coherent). The same as ``colorize(clip, model=None, references=ref, ...)``.
    Formats and properties as :func:`colorize`; every frame gets ``ChromaflowKeyframeDistance``,
    ``ChromaflowTransferConfidence``, ``ChromaflowSceneCut`` and ``ChromaflowKeyframe``.
    """
    func = "transfer"
    layout = check_clip(clip, func)
    out = _output_format(layout, clip, out_format, func)
    luma = _LumaSource(clip, layout, func)
    engine = _build_engine(
        clip,
        layout,
        func,
        luma=luma,
        colorizer=None,
        references=ref,
        mode=mode,
        keyframes=keyframes,
        hints=[],
        smooth=smooth,
        scene_cut_threshold=scene_cut_threshold,
        batch=1,
    )
    return _finish(clip, layout, out, _ColorizeRenderer(func, engine, luma, layout, out, ""))


# ------------------------------------------------------------------------------------------------ deepfake


def _rgb24_clip(clip: vs.VideoNode, layout: ClipLayout, func: str) -> vs.VideoNode:
    """The clip as RGB24, converted by ``core.resize`` (zimg, in VapourSynth's threads) from each frame's colour
    description as :func:`describe` decides it (an unsupported ``_Matrix`` gives chromaflow's error).

    The description is written onto the frames ``core.resize`` reads and no ``*_in`` argument is passed: arguments
    would override the frames' own properties (``prefer_props`` is false by default), so a clip tagged full range
    or BT.601 at HD size would be decoded as the untagged rule's limited BT.709.
    """
    if layout.family == vs.RGB and layout.bits == 8 and not layout.is_float:
        return clip

    def described(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        desc = describe(f.props, layout, func, n)
        fout = f.copy()
        desc.write(fout.props, layout.family)
        return fout

    return core.resize.Bicubic(core.std.ModifyFrame(clip, clip, described), format=vs.RGB24)


def _interleaved(frame: vs.VideoFrame) -> np.ndarray:
    """An RGB24 frame as one ``(H, W, 3)`` uint8 array (the layout OpenCV and the scorer take)."""
    return cv2.merge([np.asarray(frame[0]), np.asarray(frame[1]), np.asarray(frame[2])])


class _DeepfakeFrames:
    """Deepfake results of a clip, identical whatever order and however many threads request frames.

    Stage (1) of the scorer (faces, crops, raw scores: :meth:`DeepfakeScorer.analyse`) runs on the thread that
    renders the frame (VapourSynth R81 calls a Python filter's callbacks one at a time, see
    :mod:`chromaflow.filters.vs_streams`; OpenCV and torch use the cores inside each analysis); a frame being analysed
    by one thread is waited for, not analysed twice. Stage (2) (tracks, smoothing: :meth:`DeepfakeScorer.track`) runs in frame order
    under one lock; it is cheap. Frames before ``n`` that nobody requested yet are fetched and analysed by the
    thread that needs them (only under out-of-order access).
    """

    def __init__(self, scorer: DeepfakeScorer, rgb: vs.VideoNode) -> None:
        self.scorer = scorer
        self.rgb = rgb
        self._faces: dict[int, FrameFaces] = {}
        self._busy: dict[int, threading.Event] = {}
        self._results: dict[int, FrameResult] = {}
        self._next = 0  # frames before this have been tracked
        self._lock = threading.Lock()  # guards the dicts and _next
        self._order = threading.Lock()  # stage (2)

    def _analysed(self, k: int, rgb8: np.ndarray | None = None) -> None:
        """Make sure frame ``k``'s stage (1) is done (or the frame already tracked)."""
        while True:
            with self._lock:
                if k in self._faces or k < self._next:
                    return
                event = self._busy.get(k)
                mine = event is None
                if event is None:
                    event = self._busy[k] = threading.Event()
            if not mine:
                event.wait()  # its thread finished (or failed: then the loop takes the work over)
                continue
            try:
                if rgb8 is None:
                    rgb8 = _interleaved(self.rgb.get_frame(k))
                (faces,) = self.scorer.analyse([rgb8])
                with self._lock:
                    self._faces[k] = faces
                return
            finally:
                with self._lock:
                    del self._busy[k]
                event.set()

    def get(self, n: int, rgb8: np.ndarray) -> FrameResult:
        with self._lock:
            done = self._results.get(n)
        if done is not None:
            return done
        self._analysed(n, rgb8)
        k = self._next
        while k < n:  # earlier frames: other threads are usually on them already
            self._analysed(k)
            k += 1
        with self._order:
            while self._next <= n:
                k = self._next
                self._analysed(k)
                with self._lock:
                    faces = self._faces.pop(k)
                result = self.scorer.track(faces, k)
                with self._lock:
                    self._results[k] = result
                    self._next = k + 1
        with self._lock:
            return self._results[n]


def _write_deepfake_props(props: Any, result: FrameResult, scorer: DeepfakeScorer) -> None:
    props[PROP_PREFIX + "Faces"] = len(result.faces)
    props[PROP_PREFIX + "DeepfakeModel"] = scorer.model_name
    props[PROP_PREFIX + "FaceDetector"] = scorer.detector.name
    if result.faces:
        props[PROP_PREFIX + "DeepfakeScore"] = float(result.score or 0.0)
        props[PROP_PREFIX + "FaceBoxes"] = [float(v) for face in result.faces for v in face.box]
        props[PROP_PREFIX + "FaceScores"] = [float(face.score) for face in result.faces]
        props[PROP_PREFIX + "FaceRawScores"] = [float(face.raw_score) for face in result.faces]
        props[PROP_PREFIX + "FaceTracks"] = [int(face.track) for face in result.faces]


OVERLAY_TILE = 64  # overlay pixels are converted in tiles of this side (a multiple of every chroma factor)


def _paint_overlay(
    fout: vs.VideoFrame, rgb8: np.ndarray, drawn: np.ndarray, layout: ClipLayout, desc: ColourDescription
) -> None:
    """Write the overlay's pixels (where ``drawn`` differs from ``rgb8``) into the frame; others stay bit for bit.

    Only tiles holding drawn pixels are converted, each with a margin wider than the chroma filter's reach (on the
    chroma grid), so the written values are those a conversion of the whole frame gives, at a fraction of its
    cost (boxes and labels cover little of a frame)."""
    r, g, b = cv2.split(cv2.absdiff(drawn, rgb8))
    changed = cv2.max(cv2.max(r, g), b) > 0
    t = OVERLAY_TILE
    h, w = changed.shape
    hits = torch.nn.functional.max_pool2d(
        torch.from_numpy(changed)[None, None].to(torch.float32), t, stride=t, ceil_mode=True
    )[0, 0]
    for ty, tx in hits.nonzero().tolist():
        _paint_tile(
            fout, drawn, changed, layout, desc, (ty * t, min(h, ty * t + t)), (tx * t, min(w, tx * t + t))
        )


def _paint_tile(
    fout: vs.VideoFrame,
    drawn: np.ndarray,
    changed: np.ndarray,
    layout: ClipLayout,
    desc: ColourDescription,
    rows: tuple[int, int],
    cols: tuple[int, int],
) -> None:
    """Convert the drawn pixels of one tile (``rows``, ``cols``: ``[start, stop)``, on the chroma grid)."""
    fh, fw = layout.factors
    y0, y1 = _widen(rows, fh, layout.height)
    x0, x1 = _widen(cols, fw, layout.width)
    hit = np.zeros((y1 - y0, x1 - x0), dtype=bool)  # the tile's drawn pixels, in the widened region
    hit[rows[0] - y0 : rows[1] - y0, cols[0] - x0 : cols[1] - x0] = changed[
        rows[0] : rows[1], cols[0] : cols[1]
    ]
    hit_t = torch.from_numpy(hit)
    rgb = (
        torch.from_numpy(np.ascontiguousarray(drawn[y0:y1, x0:x1])).permute(2, 0, 1).to(torch.float32) / 255.0
    )
    if layout.family == vs.RGB:
        scale = 1.0 if layout.is_float else float(layout.peak)
        for p in range(3):
            read_plane(fout, p)[y0:y1, x0:x1][hit] = _coded(rgb[p][hit_t] * scale, layout).numpy()
        return
    ycc = rgb_to_ycbcr(rgb, desc.ycbcr(layout))
    read_plane(fout, 0)[y0:y1, x0:x1][hit] = _coded(ycc[0][hit_t], layout).numpy()
    if layout.family == vs.GRAY:
        return
    chroma = ycc[1:3]
    mask = hit_t
    if layout.factors != (1, 1):
        chroma = downsample_chroma(chroma, layout.factors, desc.siting)
        pooled = torch.nn.functional.max_pool2d(
            hit_t[None, None].float(), (fh, fw), stride=(fh, fw), ceil_mode=True
        )[0, 0]
        mask = pooled[: chroma.shape[1], : chroma.shape[2]] > 0
    cy, cx = y0 // fh, x0 // fw
    mask_np = mask.numpy()
    for p in (1, 2):
        plane = read_plane(fout, p)[cy : cy + chroma.shape[1], cx : cx + chroma.shape[2]]
        plane[mask_np] = _coded(chroma[p - 1][mask], layout).numpy()


def _widen(span: tuple[int, int], factor: int, size: int) -> tuple[int, int]:
    """``span`` widened by more than the chroma filter's reach, on the chroma grid (``start`` a multiple of
    ``factor``; ``stop`` too, or the frame's end)."""
    margin = 2 * factor + 2
    start = max(0, span[0] - margin) // factor * factor
    stop = min(size, -(-(span[1] + margin) // factor) * factor)
    return start, stop


def _coded(values: Tensor, layout: ClipLayout) -> Tensor:
    if layout.is_float:
        return values.to(torch.float32)
    return values.round().clamp(0, layout.peak).to(torch.int32)


def deepfake(
    clip: vs.VideoNode,
    overlay: bool = True,
    detector: str = "haar",
    classifier: str | nn.Module = "meso4-df",
    classifier_path: str | Path | None = None,
    device: str | None = None,
    smoothing: str = "ema",
    min_face: int = 80,
    style: OverlayStyle | None = None,
    min_track: int = 1,
) -> vs.VideoNode:
    """Score faces for deepfake manipulation; per-frame results as ``Chromaflow*`` frame properties.

    Any GRAY/YUV/RGB format; the output has the input's format and, with ``overlay``, boxes and ``FAKE 87%`` labels
    drawn in (only the drawn pixels change). ``detector``: ``haar`` (built in) or ``blazeface``; ``classifier``:
    ``meso4-df``, ``meso4-f2f``, ``mesoinception-df``, ``mesoinception-f2f`` (``chromaflow models download NAME``)
    or a loaded module; ``classifier_path`` loads that classifier from a file. The scorer sees each frame as RGB24
    (converted by ``core.resize.Bicubic`` from the frame's colour description). Faces are found and classified on
    the thread that renders the frame; face tracks and per-track score smoothing (``ema``, ``median``, ``none``)
    run in frame order, so any request order gives the results of a sequential render. ``min_track``: a face is
    reported (properties, overlay) once its track has been seen in that many frames (3 hides one- and two-frame
    false faces).
    """
    func = "deepfake"
    layout = check_clip(clip, func)
    with reported(func):
        scorer = DeepfakeScorer(
            detector,
            classifier,
            device=device,
            smoothing=smoothing,  # type: ignore[arg-type]
            min_face=min_face,
            classifier_path=classifier_path,
            min_track=min_track,
        )
    rgb = _rgb24_clip(clip, layout, func)
    scores = _DeepfakeFrames(scorer, rgb)
    overlay_style = style or OverlayStyle()

    def render(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        src, rgb_frame = f
        with reported(func, n):
            rgb8 = _interleaved(rgb_frame)
            result = scores.get(n, rgb8)
            fout = src.copy()
            if overlay and result.faces:
                desc = describe(src.props, layout, func, n)
                drawn = draw_overlay(rgb8, result.faces, overlay_style, frame_score=result.score)
                _paint_overlay(fout, rgb8, drawn, layout, desc)
            _write_deepfake_props(fout.props, result, scorer)
            return fout

    return core.std.ModifyFrame(clip, [clip, rgb], render)
