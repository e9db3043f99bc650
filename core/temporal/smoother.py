"""Temporal smoothing of chroma: a motion-compensated filter that removes colour flicker without smearing motion.

For a centre frame ``n`` and each neighbour ``m`` in ``n - r .. n + r`` of the same shot, the neighbour's ab is
warped onto frame ``n`` with dense flow (:mod:`chromaflow.core.flow`, DIS ``fast`` at the ab planes' resolution;
only consecutive frames get a flow of their own, in each direction, and frames further apart compose that chain,
so a frame costs two flows whatever the radius) and blended in with the weight

    w_m = strength * c_m(x) * exp(-(L_n(x) - L_m(x + f(x)))^2 / (2 * luma_sigma^2))

where ``c_m`` is the forward-backward consistency confidence (0 for occluded or out-of-frame pixels) and the second
factor the luma similarity of the matched pixels (both in :func:`kernel_reference`). The centre frame has weight 1:

    avg_n(x) = (ab_n(x) + sum_m w_m(x) * ab_m(x + f(x))) / (1 + sum_m w_m(x))
    out_n    = ab_n + G_s * (W_n * (avg_n - ab_n)) / G_s * W_n,    W_n = 1 + sum_m w_m

The temporal correction ``avg_n - ab_n`` is low-passed by a Gaussian ``G_s`` (``s = correction_scale`` times the
longer side of the ab planes; 0 turns it off; :class:`~chromaflow.core.temporal.params.Lowpass`) before it is
applied, weighted by the total weight ``W_n`` behind it (``confidence_lowpass``; off: plain ``G_s * (avg_n -
ab_n)``): where the flow failed in a small region (motion, occlusion) its pixels take the correction of the matched
pixels around them, and a region that matches nowhere keeps its own colour. Flicker of colourizers is low-frequency (a region
or the whole frame changes hue), so it passes; what the correction holds at high frequencies is mostly registration
error of the warped neighbours at moving edges and the blur of their bilinear resampling, which would otherwise
smear chroma detail. The centre frame's own chroma detail is therefore kept as it is, which lowers the fidelity
loss on clean frames at the same flicker reduction (measured on DAVIS by ``benchmarks/smoothing.py``).

Neighbours across a scene cut (:mod:`chromaflow.core.scenecut`) are not used, so no colour crosses a cut. Random
access may share its cut decisions with the rest of a run (``shots``, a :class:`~chromaflow.core.shots.ShotCuts`:
a colorize run's keyframe transfer then stops at exactly the same cuts).

One core (:meth:`TemporalSmoother._smooth`) serves both access patterns, so they give identical frames:

- streaming (PyAV-style nodes): :meth:`TemporalSmoother.push` returns what is ready (a delay of ``radius`` frames),
  :meth:`TemporalSmoother.flush` the rest at the end;
- random access (VapourSynth-style): :meth:`TemporalSmoother.smooth_at` ``(n, loader)`` loads frames
  ``n - r .. n + r`` through ``loader`` and caches prepared frames, per-pair flows and cut flags, so neighbouring
  requests do not recompute them; safe to call from several threads.

Kernels: ``numba`` (CPU, ``parallel=True`` over blocks of rows; per row and neighbour a few vectorised passes
around one gather pass, with a vectorisable exp; its speed against the numpy reference is measured by
``benchmarks/smoothing.py``, ``results/smoothing.json``), ``numpy`` (the vectorised reference of the same maths,
for tests and the speed benchmark) and ``torch`` (keeps ab on the tensor's device, e.g. CUDA; flow is
still computed by OpenCV on the CPU from the small luma planes).
"""

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import numpy as np
import torch
from numpy.typing import NDArray

from chromaflow.core.arrays import F32
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.flow import (
    FB_ALPHA,
    FB_SIGMA,
    FlowPreset,
    compose_flow,
    compute_flow,
    resize_flow,
    resize_luma,
    to_flow_luma,
    working_size,
)
from chromaflow.core.lru import LRUCache
from chromaflow.core.scenecut import SceneCutDetector
from chromaflow.core.shots import ShotCuts
from chromaflow.core.temporal.kernel_numba import kernel_numba
from chromaflow.core.temporal.kernel_reference import kernel_reference, kernel_torch
from chromaflow.core.temporal.params import SmoothingParams, lowpass_correction, lowpass_correction_torch

Backend = Literal["auto", "numba", "numpy", "torch"]
# DIS preset of the smoother's consecutive-frame flows when none is given: "fast" from FAST_FLOW_SIDE px up (a
# fifth of "medium"'s time at 480x270, the same flicker reduction on the tuning sequences of
# ``benchmarks/smoothing.py``: the correction is low-passed and does not need "medium"'s sub-pixel detail), "medium"
# below, where "fast"'s coarser finest scale loses small frames' motion and "medium" costs little anyway
SMOOTHING_PRESET: FlowPreset = "fast"
FAST_FLOW_SIDE = 256


def smoothing_preset(shape: tuple[int, int]) -> FlowPreset:
    """The default DIS preset for flow frames of ``shape`` (see :data:`SMOOTHING_PRESET`)."""
    return SMOOTHING_PRESET if max(shape) >= FAST_FLOW_SIDE else "medium"


ABFrame = Any  # numpy (2, h, w) float32 or torch.Tensor (2, h, w)
Loader = Callable[[int], "tuple[Any, Any] | None"]


# ---------------------------------------------------------------------------------------------- frames and caches


@dataclass(frozen=True)
class _Frame:
    luma: F32  # L* at the ab resolution
    luma_u8: NDArray[np.uint8]  # what flow and cut detection see
    flow_luma: NDArray[np.uint8]  # luma at the flow's working resolution
    ab: ABFrame  # numpy (2, h, w) float32, or a torch tensor on the smoother's device
    luma_dev: torch.Tensor | None  # luma on the device (torch backend)


class Smoothed(NamedTuple):
    """One output frame: its index in the sequence and its smoothed ab planes ``(2, h, w)``."""

    frame_index: int
    ab: ABFrame


def _index_at_least(low: int) -> Callable[[Hashable], bool]:
    def keep(key: Hashable) -> bool:
        return isinstance(key, int) and key >= low

    return keep


def _pair_at_least(low: int) -> Callable[[Hashable], bool]:
    def keep(key: Hashable) -> bool:
        return isinstance(key, tuple) and min(key) >= low

    return keep


class _State:
    """Per-sequence caches: prepared frames, flows keyed by (dst, src), and the scene cuts by frame index."""

    def __init__(self, frame_cap: int | None, flow_cap: int | None, cuts: ShotCuts) -> None:
        self.frames = LRUCache(frame_cap)
        self.flows = LRUCache(flow_cap)
        self.cuts = cuts

    def clear(self) -> None:
        self.frames.clear()
        self.flows.clear()
        self.cuts.clear()


# ---------------------------------------------------------------------------------------------- the smoother


class TemporalSmoother:
    """Motion-compensated temporal smoothing of ab planes; one instance per sequence (see the module docstring).

    Frames are given as ``(luma, ab)``: ``luma`` an ``(H, W)`` plane at any resolution (float L* in [0, 100] or
    uint8), ``ab`` the ``(2, h, w)`` a*b* planes at the model's resolution (numpy float32 or a torch tensor).
    The luma is resized to the ab planes' size. Outputs have the ab planes' shape: numpy for the ``numba`` and
    ``numpy`` backends, a tensor on ``device`` for ``torch``.

    ``backend="auto"`` picks ``torch`` when ``device`` is a CUDA device, else ``numba``. ``scene_cut`` sets the cut
    detector (default: :class:`SceneCutDetector()`); ``detect_cuts=False``
    disables cut detection; ``shots`` (a :class:`ShotCuts`) replaces both for random access: its detector, and the
    statistics and flags it holds by frame index, are shared with whoever else uses it. ``flow_max_side`` bounds
    the resolution flow is computed at (vectors are rescaled); ``flow_preset`` (DIS) defaults to
    :func:`smoothing_preset` of that resolution.
    ``cache_frames`` bounds how many prepared frames random access keeps (flows: ``2 * radius`` per frame).
    ``pair_flows(dst, src)``, when given, supplies the consecutive-frame flows instead of DIS here (at any
    resolution; they are rescaled): keyframe transfer lends the flows its chains computed, so a run with
    references and smoothing computes each flow once. Frame indices are the caller's.
    Typical use::

        smoother = TemporalSmoother(radius=2, strength=1.0)
        for luma, ab in frames:                       # streaming
            for out in smoother.push(luma, ab):
                write(out.frame_index, out.ab)
        for out in smoother.flush():
            write(out.frame_index, out.ab)

        ab_n = smoother.smooth_at(n, lambda k: frame_or_none(k))   # random access
    """

    def __init__(
        self,
        radius: int = 2,
        strength: float = 1.0,
        *,
        luma_sigma: float = SmoothingParams.luma_sigma,
        fb_sigma: float = FB_SIGMA,
        fb_alpha: float = FB_ALPHA,
        temporal_sigma: float | None = None,
        correction_scale: float = SmoothingParams.correction_scale,
        confidence_lowpass: bool = SmoothingParams.confidence_lowpass,
        backend: Backend = "auto",
        device: str | torch.device | None = None,
        scene_cut: SceneCutDetector | None = None,
        detect_cuts: bool = True,
        flow_preset: FlowPreset | None = None,
        flow_max_side: int | None = 512,
        cache_frames: int | None = None,
        shots: ShotCuts | None = None,
        pair_flows: Callable[[int, int], F32] | None = None,
    ) -> None:
        if shots is not None and (scene_cut is not None or not detect_cuts):
            raise UsageError("give the smoother shared scene cuts (shots) or its own detector, not both")
        self.params = SmoothingParams(
            radius,
            strength,
            luma_sigma,
            fb_sigma,
            fb_alpha,
            temporal_sigma,
            correction_scale,
            confidence_lowpass,
        )
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        if backend == "auto":
            backend = "torch" if self.device.type != "cpu" else "numba"
        if backend not in ("numba", "numpy", "torch"):
            raise UsageError(f"unknown smoothing backend {backend!r}; use auto, numba, numpy or torch")
        if backend != "torch" and self.device.type != "cpu":
            raise UsageError(
                f"the {backend} backend runs on the CPU; use backend='torch' for device {self.device}"
            )
        self.backend: str = backend
        if shots is not None:
            self.scene_cut = shots.detector
        else:
            self.scene_cut = (scene_cut or SceneCutDetector()) if detect_cuts else None
        self.flow_preset = flow_preset
        if flow_max_side is not None and flow_max_side < 8:
            raise UsageError(f"flow_max_side must be >= 8, got {flow_max_side}")
        self.flow_max_side = flow_max_side
        self.pair_flows = pair_flows
        r = self.params.radius
        # random access keeps a few windows' worth: each frame needs 2r flows into it and 2r out of it,
        # and half of those are shared with the next frame
        frame_cap = cache_frames if cache_frames is not None else 4 * r + 8
        self._random = _State(frame_cap, 2 * r * frame_cap, shots or ShotCuts(self.scene_cut))
        self._stream = _State(None, None, ShotCuts(self.scene_cut))
        self._next = 0  # index of the next pushed frame
        self._emitted = 0  # index of the next frame to emit
        self._shape: tuple[int, int] | None = None

    @property
    def radius(self) -> int:
        return self.params.radius

    # ------------------------------------------------------------------ preparation

    def _prepare(self, frame_l: Any, frame_ab: Any) -> _Frame:
        if isinstance(frame_ab, torch.Tensor):
            if frame_ab.dim() != 3 or frame_ab.shape[0] != 2:
                raise InputError(f"ab planes must have shape (2, h, w), got {tuple(frame_ab.shape)}")
            ab_t = frame_ab.detach().to(torch.float32)
            shape = (int(ab_t.shape[1]), int(ab_t.shape[2]))
        else:
            ab_np = np.asarray(frame_ab, dtype=np.float32)
            if ab_np.ndim != 3 or ab_np.shape[0] != 2:
                raise InputError(f"ab planes must have shape (2, h, w), got {ab_np.shape}")
            shape = (int(ab_np.shape[1]), int(ab_np.shape[2]))
        if min(shape) < 8:
            raise InputError(f"ab planes of {shape[1]}x{shape[0]} are too small to smooth (min 8x8)")
        if self._shape is None:
            self._shape = shape
        elif shape != self._shape:
            raise InputError(
                f"all frames of a sequence need ab planes of one size: got {shape}, expected {self._shape}"
            )
        luma_in = frame_l.detach().cpu().numpy() if isinstance(frame_l, torch.Tensor) else np.asarray(frame_l)
        if luma_in.ndim == 3 and luma_in.shape[0] == 1:
            luma_in = luma_in[0]
        if luma_in.ndim != 2:
            raise InputError(f"luma must be one plane (H, W), got shape {luma_in.shape}")
        if luma_in.dtype == np.uint8:
            luma_f = luma_in.astype(np.float32) * np.float32(100.0 / 255.0)
        elif np.issubdtype(luma_in.dtype, np.floating):
            luma_f = luma_in.astype(np.float32)
        else:
            raise InputError(f"luma must be float L* in [0, 100] or uint8, got dtype {luma_in.dtype}")
        luma = np.ascontiguousarray(resize_luma(luma_f, shape), dtype=np.float32)
        luma_u8 = to_flow_luma(luma)
        work = shape if self.flow_max_side is None else working_size(shape, self.flow_max_side)
        flow_luma = luma_u8 if work == shape else np.asarray(resize_luma(luma_u8, work))
        if self.backend == "torch":
            ab: ABFrame = (ab_t if isinstance(frame_ab, torch.Tensor) else torch.from_numpy(ab_np)).to(
                self.device
            )
            luma_dev: torch.Tensor | None = torch.from_numpy(luma).to(self.device)
        else:
            ab = ab_t.cpu().numpy() if isinstance(frame_ab, torch.Tensor) else np.ascontiguousarray(ab_np)
            luma_dev = None
        return _Frame(luma, luma_u8, flow_luma, ab, luma_dev)

    # ------------------------------------------------------------------ the shared core

    def _flow(self, state: _State, dst: int, src: int, frames: dict[int, _Frame]) -> F32:
        """Flow mapping frame ``dst``'s pixels into frame ``src`` at the ab resolution (cached per ordered pair).

        Only consecutive frames get a DIS flow of their own; frames further apart compose the chain of consecutive
        flows between them (:func:`compose_flow`), so a frame costs two DIS flows whatever the radius.
        """
        cached = state.flows.get((dst, src))
        if cached is not None:
            return np.asarray(cached, dtype=np.float32)
        a, b = frames[dst], frames[src]
        if abs(src - dst) > 1:
            step = 1 if src > dst else -1
            flow = compose_flow(
                self._flow(state, dst, src - step, frames), self._flow(state, src - step, src, frames)
            )
        else:
            if self.pair_flows is not None:  # another stage of the run computes these flows anyway
                flow = self.pair_flows(dst, src)
            else:
                preset = self.flow_preset or smoothing_preset(a.flow_luma.shape)
                flow = compute_flow(b.flow_luma, a.flow_luma, preset)
            if flow.shape[:2] != a.luma.shape:
                flow = resize_flow(flow, a.luma.shape)
        state.flows.put((dst, src), flow)
        return flow

    def _cut_before(self, state: _State, k: int, frames: dict[int, _Frame]) -> bool:
        """True when frame ``k`` starts a new shot (compares frames ``k - 1`` and ``k``)."""
        return state.cuts.is_cut(k, lambda i: frames[i].luma_u8)

    def _window(self, state: _State, n: int, frames: dict[int, _Frame]) -> list[int]:
        """Neighbours of ``n`` that exist and lie in the same shot, nearest first on each side."""
        out: list[int] = []
        for step in (-1, 1):
            for d in range(1, self.radius + 1):
                m = n + step * d
                if m not in frames:
                    break
                boundary = max(m, m - step)  # the later frame of the pair (m, m - step)
                if self._cut_before(state, boundary, frames):
                    break
                out.append(m)
        return out

    def _smooth(self, state: _State, n: int, frames: dict[int, _Frame]) -> ABFrame:
        """Smoothed ab of frame ``n`` from the prepared frames available in ``frames`` (its whole window)."""
        centre = frames[n]
        neighbours = self._window(state, n, frames) if self.params.strength > 0 else []
        if not neighbours:
            return centre.ab.clone() if isinstance(centre.ab, torch.Tensor) else centre.ab.copy()
        fwd = [self._flow(state, n, m, frames) for m in neighbours]
        bwd = [self._flow(state, m, n, frames) for m in neighbours]
        weights = np.array([self.params.neighbour_weight(abs(m - n)) for m in neighbours], dtype=np.float32)
        lowpass = self.params.correction_lowpass(centre.luma.shape)
        if self.backend == "torch":
            dev = self.device
            lumas_dev = [frames[m].luma_dev for m in (n, *neighbours)]  # prepared for the torch backend
            l_dev = [x for x in lumas_dev if x is not None]
            avg_t, total_t = kernel_torch(
                l_dev[0],
                centre.ab,
                torch.stack(l_dev[1:]),
                torch.stack([frames[m].ab for m in neighbours]),
                torch.from_numpy(np.stack(fwd)).to(dev),
                torch.from_numpy(np.stack(bwd)).to(dev),
                torch.from_numpy(weights).to(dev),
                self.params,
                return_weight=True,
            )
            weight_t = total_t if self.params.confidence_lowpass else None
            return lowpass_correction_torch(centre.ab, avg_t, lowpass, weight_t)
        l_n = [frames[m].luma for m in neighbours]
        ab_n = [frames[m].ab for m in neighbours]
        kernel = kernel_numba if self.backend == "numba" else kernel_reference
        avg, weight = kernel(
            centre.luma, centre.ab, l_n, ab_n, fwd, bwd, weights, self.params, return_weight=True
        )
        return lowpass_correction(centre.ab, avg, lowpass, weight if self.params.confidence_lowpass else None)

    # ------------------------------------------------------------------ streaming

    def push(self, frame_l: Any, frame_ab: Any) -> list[Smoothed]:
        """Add the next frame; returns the frames that became ready (frame ``i - radius`` after frame ``i``)."""
        frame = self._prepare(frame_l, frame_ab)
        state = self._stream
        state.frames.put(self._next, frame)
        self._next += 1
        return self._emit(upto=self._next - 1 - self.radius)

    def flush(self) -> list[Smoothed]:
        """Emit every frame still held (their windows end at the last pushed frame); the stream then restarts."""
        out = self._emit(upto=self._next - 1)
        self._stream.clear()
        self._next = self._emitted = 0
        self._shape = None
        return out

    def _emit(self, upto: int) -> list[Smoothed]:
        state = self._stream
        out: list[Smoothed] = []
        frames: dict[int, _Frame] = {
            k: state.frames.get(k) for k in range(max(0, self._emitted - self.radius), self._next)
        }
        while self._emitted <= upto:
            n = self._emitted
            out.append(Smoothed(n, self._smooth(state, n, frames)))
            self._emitted += 1
            low = self._emitted - self.radius  # frames below this are no longer anyone's neighbour
            state.frames.keep_only(_index_at_least(low))
            state.flows.keep_only(_pair_at_least(low))
            state.cuts.release_before(low)
        return out

    # ------------------------------------------------------------------ random access

    def smooth_at(self, n: int, loader: Loader) -> ABFrame:
        """Smoothed ab of frame ``n``; ``loader(k)`` returns frame ``k`` as ``(luma, ab)``, or None past the end.

        Prepared frames, flows and cut flags are cached, so requests for nearby frames reuse them. Thread-safe.
        """
        if n < 0:
            raise InputError(f"frame index must be >= 0, got {n}")
        state = self._random
        frames: dict[int, _Frame] = {}
        for k in range(max(0, n - self.radius), n + self.radius + 1):
            frame = state.frames.get(k)
            if frame is None:
                item = loader(k)
                if item is None:
                    if k == n:
                        raise InputError(f"frame {n} is past the end of the sequence")
                    if k > n:
                        break
                    continue
                frame = self._prepare(*item)
                state.frames.put(k, frame)
            frames[k] = frame
        return self._smooth(state, n, frames)

    def reset(self) -> None:
        """Forget every cached frame, flow and cut flag (start a new sequence; shared ``shots`` included)."""
        self._random.clear()
        self._stream.clear()
        self._next = self._emitted = 0
        self._shape = None


def smooth_sequence(
    lumas: list[Any], abs_: list[Any], radius: int = 2, strength: float = 1.0, **options: Any
) -> list[ABFrame]:
    """Smooth a whole in-memory sequence (streaming under the hood); returns the ab planes in order."""
    if len(lumas) != len(abs_):
        raise InputError(f"got {len(lumas)} luma planes for {len(abs_)} ab frames")
    smoother = TemporalSmoother(radius, strength, **options)
    out: list[Smoothed] = []
    for luma, ab in zip(lumas, abs_, strict=True):
        out.extend(smoother.push(luma, ab))
    out.extend(smoother.flush())
    return [s.ab for s in out]
