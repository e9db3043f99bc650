"""``deepfake``: faces scored on every frame, results as ``Chromaflow*`` frame properties, and an optional overlay.

The scorer (:class:`~chromaflow.core.deepfake.DeepfakeScorer`) sees each frame as RGB24 converted by
``core.resize`` from the frame's colour description; per-frame analyses may run on any thread in any order, tracks
and score smoothing run in frame order (:class:`DeepfakeFrames`), so a render gives the same results whatever
requests its frames.
"""

import threading
from pathlib import Path

import cv2
import numpy as np
import vapoursynth as vs
from torch import nn

from chromaflow.core.deepfake import DeepfakeScorer
from chromaflow.core.deepfake_results import FrameFaces, FrameResult
from chromaflow.core.faces import FaceDetector
from chromaflow.core.lru import LRUCache
from chromaflow.core.options import DeepfakeOptions, Smoothing
from chromaflow.core.overlay import OverlayStyle, draw_overlay
from chromaflow.filters.vapoursynth.colour import ClipLayout, check_clip, describe
from chromaflow.filters.vapoursynth.frames import reported
from chromaflow.filters.vapoursynth.overlay import paint_overlay
from chromaflow.filters.vapoursynth.properties import write_deepfake_result

core = vs.core


def rgb24_clip(clip: vs.VideoNode, layout: ClipLayout, func: str) -> vs.VideoNode:
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


def interleaved(frame: vs.VideoFrame) -> np.ndarray:
    """An RGB24 frame as one ``(H, W, 3)`` uint8 array (the layout OpenCV and the scorer take)."""
    return cv2.merge([np.asarray(frame[0]), np.asarray(frame[1]), np.asarray(frame[2])])


class DeepfakeFrames:
    """Deepfake results of a clip, identical whatever order and however many threads request frames.

    Stage (1) of the scorer (faces, crops, raw scores: :meth:`DeepfakeScorer.analyse`) runs on the thread that
    renders the frame (VapourSynth R81 calls a Python filter's callbacks one at a time, see
    :mod:`chromaflow.filters.vapoursynth.streams`; OpenCV and torch use the cores inside each analysis); its results
    wait in an :class:`~chromaflow.core.lru.LRUCache`, so a frame being analysed by one thread is waited for, not
    analysed twice. Stage (2) (tracks, smoothing: :meth:`DeepfakeScorer.track`) runs in frame order under one lock;
    it is cheap, and drops the analyses of the frames it has tracked. Frames before ``n`` that nobody requested
    yet are fetched and analysed by the thread that needs them (only under out-of-order access).
    """

    def __init__(self, scorer: DeepfakeScorer, rgb: vs.VideoNode) -> None:
        self.scorer = scorer
        self.rgb = rgb
        self._faces = LRUCache(None)  # frame -> FrameFaces, from stage (1) until stage (2) has tracked it
        self._results: dict[int, FrameResult] = {}
        self._next = 0  # frames before this have been tracked
        self._lock = threading.Lock()  # guards _results and _next
        self._order = threading.Lock()  # stage (2)

    def _analysed(self, k: int, rgb8: np.ndarray | None = None) -> FrameFaces:
        """Frame ``k``'s stage (1) result (``rgb8``: the frame itself when the caller has it)."""

        def analyse() -> FrameFaces:
            (faces,) = self.scorer.analyse([rgb8 if rgb8 is not None else interleaved(self.rgb.get_frame(k))])
            return faces

        return self._faces.get_or_compute(k, analyse)

    def _tracked(self, k: int) -> bool:
        with self._lock:
            return k < self._next

    def get(self, n: int, rgb8: np.ndarray) -> FrameResult:
        with self._lock:
            done = self._results.get(n)
        if done is not None:
            return done
        if not self._tracked(n):
            self._analysed(n, rgb8)
        k = self._next
        while k < n:  # earlier frames: other threads are usually on them already
            if not self._tracked(k):
                self._analysed(k)
            k += 1
        with self._order:
            while self._next <= n:
                k = self._next
                faces = self._analysed(k)
                result = self.scorer.track(faces, k)
                with self._lock:
                    self._results[k] = result
                    self._next = k + 1
            # tracked frames' analyses are done with (also one that raced with its frame's tracking)
            tracked = self._next
            self._faces.keep_only(lambda key: isinstance(key, int) and key >= tracked)
        with self._lock:
            return self._results[n]


def deepfake(
    clip: vs.VideoNode,
    overlay: bool = DeepfakeOptions.overlay,
    detector: str | FaceDetector = DeepfakeOptions.detector,
    classifier: str | Path | nn.Module = DeepfakeOptions.classifier,
    classifier_path: str | Path | None = DeepfakeOptions.classifier_path,
    device: str | None = DeepfakeOptions.device,
    smoothing: Smoothing = DeepfakeOptions.smoothing,
    min_face: int = DeepfakeOptions.min_face,
    style: OverlayStyle | None = DeepfakeOptions.style,
    min_track: int = DeepfakeOptions.min_track,
    threshold: float = DeepfakeOptions.threshold,
) -> vs.VideoNode:
    """Score faces for deepfake manipulation; per-frame results as ``Chromaflow*`` frame properties.

    Any GRAY/YUV/RGB format; the output has the input's format and, with ``overlay``, boxes and ``FAKE 87%`` labels
    drawn in (only the drawn pixels change). The parameters are those of
    :class:`~chromaflow.core.options.DeepfakeOptions` (defaults and checks). ``detector``: ``haar`` (built in),
    ``blazeface`` or ``mtcnn`` (both need their weights), ``auto``, or a ready
    :class:`~chromaflow.core.faces.FaceDetector`; ``classifier``: one of
    :data:`~chromaflow.core.options.CLASSIFIERS` (MesoNet's four, the DFDC winner's EfficientNet-B7 checkpoints
    ``effnet-b7-dfdc-1`` ... ``-7`` and their ensemble ``effnet-b7-dfdc``; ``chromaflow models download NAME``), a
    weights file or a loaded module; ``classifier_path`` loads that classifier's architecture from a file.
    ``threshold``: scores at or above are labelled FAKE in the overlay. The scorer sees each frame as RGB24
    (converted by ``core.resize.Bicubic`` from the frame's colour description). Faces are found and classified on
    the thread that renders the frame; face tracks and per-track score smoothing (``ema``, ``median``, ``none``)
    run in frame order, so any request order gives the results of a sequential render. ``min_track``: a face is
    reported (properties, overlay) once its track has been seen in that many frames (3 hides one- and two-frame
    false faces).
    """
    func = "deepfake"
    layout = check_clip(clip, func)
    with reported(func):
        opts = DeepfakeOptions(
            detector=detector,
            classifier=classifier,
            classifier_path=classifier_path,
            device=device,
            smoothing=smoothing,
            min_face=min_face,
            min_track=min_track,
            overlay=overlay,
            style=style,
            threshold=threshold,
        )
        scorer = DeepfakeScorer(options=opts)
    rgb = rgb24_clip(clip, layout, func)
    scores = DeepfakeFrames(scorer, rgb)
    overlay_style = opts.overlay_style()

    def render(n: int, f: list[vs.VideoFrame]) -> vs.VideoFrame:
        src, rgb_frame = f
        with reported(func, n):
            rgb8 = interleaved(rgb_frame)
            result = scores.get(n, rgb8)
            fout = src.copy()
            if opts.overlay and result.faces:
                desc = describe(src.props, layout, func, n)
                drawn = draw_overlay(
                    rgb8, result.faces, overlay_style, frame_score=result.score, caption=result.model
                )
                paint_overlay(fout, rgb8, drawn, layout, desc)
            write_deepfake_result(fout.props, result, scorer)
            return fout

    return core.std.ModifyFrame(clip, [clip, rgb], render)
