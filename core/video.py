"""VideoColorizer: the per-sequence orchestration every host uses (VapourSynth, PyAV nodes, the CLI).

Why one module past 400 lines: the random-access engine and its streaming adaptor are one job with two doors; the
adaptor's readiness and release rules (:meth:`VideoColorizer.horizon`, the block and chain caches it frees) are
written against the engine's internals, and apart they could drift and give different frames.

One frame's colour comes from, in order of preference:

1. keyframe transfer (:class:`~chromaflow.core.transfer.KeyframeTransfer`) when references are given, with the
   automatic colorizer (if any) as its low-confidence fallback;
2. otherwise the automatic colorizer (:class:`~chromaflow.core.colorizer.Colorizer` or any object with
   ``predict_ab``), run on fixed blocks of ``batch_size`` frames (frames ``b * batch_size ..``: a frame's batch, and
   so its colour, does not depend on the access order), with optional colour ``hints`` in full-frame pixels (one
   list for every frame, or ``{frame: [hints]}``).

ab is computed at a working resolution (longer side ``max_side``; a model whose input side is larger than the
working copy's shorter side is given a larger shrink of the frame, its ab brought back to the working size:
:func:`~chromaflow.core.colorizer.model_work_size`), optionally smoothed over time
(:class:`~chromaflow.core.temporal.TemporalSmoother`, radius ``smooth``, reset at scene cuts) and brought to
full size by a fast guided filter on the full-resolution L*; keyframes keep their reference colours exactly.

Options come as one :class:`~chromaflow.core.options.ColorizeOptions` (every host builds one); the engine builds one
scene-cut detector from it and one :class:`~chromaflow.core.shots.ShotCuts` that keyframe transfer, smoothing and
the per-frame facts share, so all three stop at the same cuts and each frame's cut statistics are computed once.

Access patterns, one core (:meth:`VideoColorizer.ab`), so they give identical frames:

- random access: ``VideoColorizer(num_frames, get_luma, options, colorizer=...)`` then ``ab(n)`` / ``rgb(n)`` /
  ``info(n)`` (a :class:`~chromaflow.core.frame_facts.FrameFacts`) in any order, from several threads;
- streaming: :class:`VideoColorizerStream` ``push(luma)`` returns the frames that became ready, ``flush()`` the rest.
  A frame is ready once every frame it depends on has arrived (:meth:`VideoColorizer.horizon`: the smoothing window
  and, for propagation, the next keyframe within ``max_distance``; for the model, the end of the block), so the
  lookahead is bounded (:attr:`VideoColorizer.lookahead`).

Hosts turn ``ab(n)`` and the frame's L* into Y'CbCr chroma with :func:`chromaflow.core.colorizer.ycbcr_chroma` (L* of
a Y' plane: :func:`chromaflow.core.colorizer.ycbcr_lightness`), so every host writes the same code values.

Frames (``get_luma(n)`` / ``push``) are L* float ``(H, W)``, sRGB gray planes (uint8/uint16) or RGB frames.
"""

import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray

from chromaflow.core.arrays import F32
from chromaflow.core.colorizer import model_work_size
from chromaflow.core.errors import InputError
from chromaflow.core.flow import to_flow_luma, working_size
from chromaflow.core.frame_facts import FrameFacts
from chromaflow.core.hints import Hint
from chromaflow.core.options import ColorizeOptions, check_colour_sources, given
from chromaflow.core.shots import ShotCuts, cut_luma
from chromaflow.core.temporal import TemporalSmoother
from chromaflow.core.transfer import (
    CACHE_EVERY,
    PROPAGATING,
    AbPredictor,
    ColourSource,
    KeyframeTransfer,
    PropagationParams,
    colorizer_ab,
    lab_planes_to_rgb,
    resize_chw,
    resize_plane,
    to_lightness,
    upsample_ab,
)

UNKNOWN_LENGTH = 1 << 62  # a stream's length before flush
DEFAULT_SMOOTH_RADIUS = ColorizeOptions.smooth  # the hosts' default temporal smoothing radius (frames)
Hints = Sequence[Hint] | Mapping[int, Sequence[Hint]]


def colorize_options(
    options: ColorizeOptions | None,
    *,
    transfer: str | None = None,
    smooth_radius: int | None = None,
    smooth_strength: float | None = None,
    scene_cut_threshold: float | None = None,
    detect_cuts: bool | None = None,
    params: PropagationParams | None = None,
    batch_size: int | None = None,
) -> ColorizeOptions:
    """The engine's options from its keyword form: ``options`` (or, without them, the engine's own starting point,
    :class:`ColorizeOptions` with no smoothing, as :class:`VideoColorizer` always had) with the keywords given."""
    base = options if options is not None else ColorizeOptions(smooth=0)
    return given(
        base,
        transfer=transfer,
        smooth=smooth_radius,
        smooth_strength=smooth_strength,
        scene_cut_threshold=scene_cut_threshold,
        detect_cuts=detect_cuts,
        params=params,
        batch_size=batch_size,
    )


class VideoColorizer:
    """Colour for every frame of one sequence (see the module docstring).

    ``options``: the run's :class:`ColorizeOptions` (its model, device, precision and size are the host's to build
    ``colorizer`` from). ``colorizer``: a :class:`~chromaflow.core.colorizer.Colorizer`, any object with
    ``predict_ab``, or a callable ``L* (h, w) -> ab``; ``references``: ``{frame: RGB image or path}``; ``hints``:
    for every frame or ``{frame: [hints]}``. ``cache_every``: keyframe transfer's checkpoint spacing (memory only).
    The keywords ``transfer`` .. ``batch_size`` are the options' keyword form, for direct callers (scripts,
    benchmarks; the hosts pass ``options``): given ones replace the options' values (without ``options`` the engine starts from no smoothing,
    ``ColorizeOptions(smooth=0)``).
    """

    def __init__(
        self,
        num_frames: int,
        get_luma: Callable[[int], Any],
        options: ColorizeOptions | None = None,
        *,
        colorizer: ColourSource | None = None,
        references: Mapping[int, Any] | None = None,
        hints: Hints | None = None,
        cache_every: int = CACHE_EVERY,
        transfer: str | None = None,
        smooth_radius: int | None = None,
        smooth_strength: float | None = None,
        scene_cut_threshold: float | None = None,
        detect_cuts: bool | None = None,
        params: PropagationParams | None = None,
        batch_size: int | None = None,
    ) -> None:
        check_colour_sources(colorizer, bool(references), bool(hints))
        opts = colorize_options(
            options,
            transfer=transfer,
            smooth_radius=smooth_radius,
            smooth_strength=smooth_strength,
            scene_cut_threshold=scene_cut_threshold,
            detect_cuts=detect_cuts,
            params=params,
            batch_size=batch_size,
        )
        self.options = opts
        self.hints = hints or ()
        self.batch_size = opts.batch_size
        if num_frames < 1:
            raise InputError(f"the sequence has {num_frames} frames; it needs at least one")
        self.num_frames = num_frames
        self.get_luma = get_luma
        self.colorizer = colorizer
        sizes = getattr(colorizer, "sizes", None)  # a Colorizer's (or a pool of them) nets' input sides
        self._side = max(sizes) if isinstance(sizes, tuple) and sizes else 0
        self.params = opts.params
        # the run's one scene-cut detector, and each frame's cut statistics: transfer, smoothing and info share them
        self.shots = ShotCuts(opts.cut_detector())
        self.transfer = (
            KeyframeTransfer(
                references,
                get_luma,
                num_frames,
                opts.transfer,
                cache_every=cache_every,
                colorizer=colorizer,
                params=self.params,
                shots=self.shots,
            )
            if references
            else None
        )
        self.smoother = (
            TemporalSmoother(
                opts.smooth,
                opts.smooth_strength,
                shots=self.shots,
                flow_max_side=self.params.max_side,
                pair_flows=self.transfer.pair_flow if self.transfer is not None else None,
            )
            if opts.smooth > 0
            else None
        )
        self._lock = threading.Lock()
        self._work: tuple[int, int] | None = None
        # the colorizer runs on blocks of batch_size frames (block b = frames b*B .. b*B+B-1); results kept per block
        r = self.smoother.radius if self.smoother is not None else 0
        self._block_capacity = max(4, 2 * (-(-(2 * r + 1) // self.batch_size) + 1))
        self._blocks: OrderedDict[int, dict[int, tuple[F32, F32]]] = OrderedDict()
        self._block_locks: dict[int, threading.Lock] = {}

    # ------------------------------------------------------------------ helpers

    def _l_full(self, n: int) -> F32:
        if not 0 <= n < self.num_frames:
            raise InputError(f"frame {n} is outside the sequence (0..{self.num_frames - 1})")
        l_full = to_lightness(self.get_luma(n))
        with self._lock:
            if self._work is None:
                self._work = working_size((int(l_full.shape[0]), int(l_full.shape[1])), self.params.max_side)
        return l_full

    def _is_key(self, n: int) -> bool:
        return self.transfer is not None and self.transfer.mode in PROPAGATING and n in self.transfer.keys

    def _ab_work(self, n: int) -> tuple[F32, F32]:
        """``(L* work (h, w), ab work (2, h, w))`` of frame ``n`` before smoothing."""
        if self.transfer is not None:
            l_work = self.transfer.work_luma(n)
            return l_work, self.transfer.ab_work(n)
        return self._block(n // self.batch_size)[n]

    def _loader(self, k: int) -> tuple[F32, F32] | None:
        if k < 0 or k >= self.num_frames:
            return None
        return self._ab_work(k)

    # ------------------------------------------------------------------ batched colorizer

    def _hints_of(self, n: int) -> tuple[Hint, ...]:
        if isinstance(self.hints, Mapping):
            return tuple(self.hints.get(n, ()))
        return tuple(self.hints)

    def _block(self, b: int) -> dict[int, tuple[F32, F32]]:
        """``{frame: (L* work, ab work (2, h, w))}`` of colorizer block ``b``, the model run once per hint set.

        Blocks are fixed (frames ``b * batch_size ..``), so a frame's batch, and its result, is the same in any
        access order; one lock per block keeps threads from computing a block twice.
        """
        with self._lock:
            cached = self._blocks.get(b)
            if cached is not None:
                self._blocks.move_to_end(b)
                return cached
            lock = self._block_locks.setdefault(b, threading.Lock())
        with lock:
            with self._lock:
                cached = self._blocks.get(b)
            if cached is not None:
                return cached
            first = b * self.batch_size
            frames = range(first, min(first + self.batch_size, self.num_frames))
            l_full = {k: self._l_full(k) for k in frames}
            assert self._work is not None
            l_work = {k: resize_plane(l_full[k], self._work) for k in frames}
            size = (int(l_full[first].shape[0]), int(l_full[first].shape[1]))
            # the model's L*: the working copy, or a larger one where the model's side asks for it
            model = model_work_size(size, self._work, self._side)
            l_model = l_work if model == self._work else {k: resize_plane(l_full[k], model) for k in frames}
            groups: dict[tuple[Hint, ...], list[int]] = {}
            for k in frames:
                groups.setdefault(self._hints_of(k), []).append(k)
            block: dict[int, tuple[F32, F32]] = {}
            for hints, ks in groups.items():
                abs_ = self._predict(np.stack([l_model[k] for k in ks]), hints, size)
                if model != self._work:
                    abs_ = [resize_chw(ab, self._work) for ab in abs_]
                block.update({k: (l_work[k], ab) for k, ab in zip(ks, abs_, strict=True)})
            with self._lock:
                self._blocks[b] = block
                while len(self._blocks) > self._block_capacity:
                    self._blocks.popitem(last=False)
                self._block_locks.pop(b, None)
            return block

    def _predict(self, l_work: F32, hints: tuple[Hint, ...], size: tuple[int, int]) -> list[F32]:
        """ab ``(2, h, w)`` per plane of ``l_work`` ``(K, h, w)``: one model call (hints in full-frame pixels)."""
        if not isinstance(self.colorizer, AbPredictor):
            assert self.colorizer is not None
            return [colorizer_ab(self.colorizer, l) for l in l_work]
        extra: dict[str, Any] = {"hints": list(hints), "hint_size": size} if hints else {}
        with torch.inference_mode():
            out = self.colorizer.predict_ab(torch.from_numpy(np.ascontiguousarray(l_work))[:, None], **extra)
        arr = out.float().cpu().numpy()
        return [np.ascontiguousarray(a, dtype=np.float32) for a in arr]

    # ------------------------------------------------------------------ the core

    def ab(self, n: int, l_full: F32 | None = None) -> F32:
        """ab ``(2, H, W)`` float32 of frame ``n`` at full size."""
        l_full = self._l_full(n) if l_full is None else l_full
        if self.transfer is not None and (self.smoother is None or self._is_key(n)):
            return self.transfer.ab(n, l_full)
        l_work, ab_w = self._ab_work(n)
        if self.smoother is not None:
            smoothed = self.smoother.smooth_at(n, self._loader)
            ab_w = smoothed.cpu().numpy() if isinstance(smoothed, torch.Tensor) else np.asarray(smoothed)
        return upsample_ab(l_work, ab_w, l_full, self.params)

    def rgb(self, n: int) -> F32:
        """sRGB ``(H, W, 3)`` float32 in [0, 1] of frame ``n`` (its own L* joined with the computed ab)."""
        l_full = self._l_full(n)
        return lab_planes_to_rgb(l_full, self.ab(n, l_full))

    def info(self, n: int) -> FrameFacts:
        """Per-frame facts: keyframe distance, transfer confidence, scene-cut flag (for frame properties)."""
        if self.transfer is not None:
            return self.transfer.info(n)
        return FrameFacts.model_only(self.scene_cut(n))

    def scene_cut(self, n: int) -> bool:
        """True when a new shot starts at frame ``n``: the cut transfer and smoothing stop at (one decision)."""
        if self.transfer is not None:
            return self.transfer.scene_cut(n)
        return self.shots.is_cut(n, self._cut_luma)

    def _cut_luma(self, k: int) -> NDArray[np.uint8]:
        """What cut detection sees of frame ``k``: its working-resolution L* as flow sees it (the smoother's
        and keyframe transfer's view; from the colorizer block's L* when that block is at hand)."""
        with self._lock:
            block = self._blocks.get(k // self.batch_size)
        if block is not None and k in block:
            return to_flow_luma(block[k][0])
        return cut_luma(self._l_full(k), self.params.max_side)

    def horizon(self, n: int) -> int:
        """The last frame index that frame ``n``'s result depends on (bounded lookahead for streaming)."""
        r = self.smoother.radius if self.smoother is not None else 0
        last = n + r
        if self.transfer is None:  # the colorizer's block of the last frame in the window
            last = (last // self.batch_size + 1) * self.batch_size - 1
        if self.transfer is not None and self.transfer.mode in PROPAGATING:
            for m in range(max(0, n - r), n + r + 1):
                if m not in self.transfer.keys:  # a keyframe's colour is its reference's
                    last = max(last, m + self.transfer.reads_ahead)
                k = self.transfer.next_key(m)
                if k is not None and k - m <= self.params.max_distance:
                    last = max(last, k)
        return min(last, self.num_frames - 1)

    @property
    def lookahead(self) -> int:
        """An upper bound of ``horizon(n) - n``: how many later frames a stream holds before frame ``n`` is ready."""
        r = self.smoother.radius if self.smoother is not None else 0
        if self.transfer is None:
            return r + self.batch_size - 1
        if self.transfer.mode in PROPAGATING:
            return r + max(self.params.max_distance, self.transfer.reads_ahead)
        return r


def model_frame_info(scene_cut: bool) -> dict[str, Any]:
    """The per-frame facts of a frame coloured by the model alone (no keyframes), as a dict."""
    return FrameFacts.model_only(scene_cut).as_dict()


class ModelAhead:
    """The colour model of a stream's blocks on one worker thread, while the caller's thread smooths, upsamples
    and writes the frames of the blocks before (``VideoColorizerStream(overlap=True)``).

    The worker computes exactly what :meth:`VideoColorizer._block` computes on the caller's thread (fixed blocks,
    the same thread counts), so frames are identical either way; it only changes when the work is done. The
    threads are not daemons: a daemon thread still inside a torch op when the interpreter exits aborts the
    process (SIGABRT instead of Ctrl-C's exit status 130). So an exit waits for the block in flight, and blocks
    that have not begun by then are skipped (the main thread has stopped).
    """

    def __init__(self, core: VideoColorizer) -> None:
        self.core = core
        core._block_capacity += 2  # the blocks ahead stay cached next to the window's own
        self._error: BaseException | None = None
        self._last: threading.Thread | None = None

    def start(self, block: int) -> None:
        """Run ``block`` (all its frames are pushed) after the blocks started before it, on a worker thread (one
        per block, each waiting for the one before: nothing lingers once a stream is dropped)."""
        self._last = threading.Thread(
            target=self._run, args=(block, self._last), name="chromaflow-model", daemon=False
        )
        self._last.start()

    def _run(self, block: int, before: threading.Thread | None) -> None:
        if before is not None:
            before.join()
        if self._error is not None or not threading.main_thread().is_alive():
            return  # a block failed, or the interpreter is exiting: nobody will read this one
        try:
            self.core._block(block)
        except BaseException as exc:  # handed to the caller's thread by raise_failed
            self._error = exc

    def raise_failed(self) -> None:
        """Raise, on the caller's thread, the error a block failed with."""
        if self._error is not None:
            raise self._error

    def wait_all(self) -> None:
        """Wait for every started block and raise the first error."""
        if self._last is not None:
            self._last.join()
        self.raise_failed()


class Ready(NamedTuple):
    """One finished frame of a stream."""

    frame_index: int
    ab: F32  # (2, H, W)
    facts: FrameFacts

    @property
    def info(self) -> dict[str, Any]:
        """The frame's facts as a dict (what ``on_info`` callbacks receive)."""
        return self.facts.as_dict()


class VideoColorizerStream:
    """Push/pull adaptor over :class:`VideoColorizer` (PyAV-node shape): same results as random access.

    ``push(frame)`` stores the frame and returns every frame that became ready; ``flush()`` ends the stream and
    returns the rest. Options and keywords are those of :class:`VideoColorizer`.
    """

    def __init__(
        self,
        options: ColorizeOptions | None = None,
        *,
        colorizer: ColourSource | None = None,
        references: Mapping[int, Any] | None = None,
        hints: Hints | None = None,
        cache_every: int = CACHE_EVERY,
        transfer: str | None = None,
        smooth_radius: int | None = None,
        smooth_strength: float | None = None,
        scene_cut_threshold: float | None = None,
        detect_cuts: bool | None = None,
        params: PropagationParams | None = None,
        batch_size: int | None = None,
        overlap: bool = False,
    ) -> None:
        self._frames: dict[int, Any] = {}
        self._pushed = 0
        self._next = 0
        self._ended = False  # flushed: every frame left is ready
        opts = colorize_options(
            options,
            transfer=transfer,
            smooth_radius=smooth_radius,
            smooth_strength=smooth_strength,
            scene_cut_threshold=scene_cut_threshold,
            detect_cuts=detect_cuts,
            params=params,
            batch_size=batch_size,
        )
        self.core = VideoColorizer(
            UNKNOWN_LENGTH,
            self._get,
            opts,
            colorizer=colorizer,
            references=references,
            hints=hints,
            cache_every=cache_every,
        )
        # the colour model on a worker thread, a block ahead of the frames coming out (automatic colour only)
        self._ahead = (
            ModelAhead(self.core)
            if overlap and self.core.transfer is None and colorizer is not None
            else None
        )

    @property
    def lookahead(self) -> int:
        """At most this many frames are pushed after frame ``n`` before ``n`` comes out (see ``horizon``); with
        ``overlap`` one model batch more, and then exactly as many (frames come out at a fixed delay)."""
        if self._ahead is not None:
            return self.core.lookahead + self.core.batch_size
        return self.core.lookahead

    def _get(self, n: int) -> Any:
        if n not in self._frames:
            raise InputError(f"frame {n} is no longer (or not yet) held by the stream")
        return self._frames[n]

    def push(self, frame: Any) -> list[Ready]:
        """Add the next frame; returns the frames now ready, in order."""
        self._frames[self._pushed] = frame
        self._pushed += 1
        if self._ahead is not None and self._pushed % self.core.batch_size == 0:
            self._ahead.start(self._pushed // self.core.batch_size - 1)  # its block is complete
        return self._emit()

    def flush(self) -> list[Ready]:
        """No more frames: returns every frame still pending."""
        if self._pushed == 0:
            return []
        self.core.num_frames = self._pushed
        if self.core.transfer is not None:
            late = [k for k in self.core.transfer.keys if k >= self._pushed]
            if late:
                raise InputError(
                    f"reference frames {late} are past the end of the stream ({self._pushed} frames)"
                )
            self.core.transfer.num_frames = self._pushed
        self._ended = True
        if self._ahead is not None:
            self._ahead.wait_all()  # the worker's blocks (a failed one raises); a last, partial block runs here
        return self._emit()

    def _ready(self, n: int) -> bool:
        if self.core.horizon(n) >= self._pushed:
            return False
        # overlapped: a fixed delay, so that the frames coming out need the block the worker finished a batch ago
        # while it runs the next one (coming out as soon as possible would leave the two threads taking turns)
        return self._ahead is None or self._ended or self._pushed - 1 - n >= self.lookahead

    def _emit(self) -> list[Ready]:
        out: list[Ready] = []
        while self._next < self._pushed and self._ready(self._next):
            n = self._next
            if self._ahead is not None:
                self._ahead.raise_failed()
            out.append(Ready(n, self.core.ab(n), self.core.info(n)))
            self._next += 1
            self._release(n)
        return out

    def _release(self, n: int) -> None:
        r = self.core.smoother.radius if self.core.smoother is not None else 0
        cache_every = self.core.transfer.cache_every if self.core.transfer is not None else 0
        keep_from = n - r - 2 * cache_every - 2
        if self.core.transfer is None:  # the colorizer block of the window's first frame
            keep_from = min(keep_from, (max(0, n - r) // self.core.batch_size) * self.core.batch_size)
        for k in [k for k in self._frames if k < keep_from and not self._is_key(k)]:
            del self._frames[k]
        if self.core.transfer is not None:
            self.core.transfer.release_before(keep_from)

    def _is_key(self, k: int) -> bool:
        return self.core.transfer is not None and k in self.core.transfer.keys
