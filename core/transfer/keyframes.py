"""KeyframeTransfer: colours from reference keyframes carried to every frame of a sequence, with random access.

Modes (:mod:`~chromaflow.core.transfer.modes`):

- ``propagate``: flow chains forward from the previous keyframe and backward from the next one in the same shot
  (:mod:`~chromaflow.core.transfer.propagate`), anchored to their keyframe, sampled from its full-resolution colours
  and blended by confidence; low-confidence regions are filled from confident pixels of similar lightness, then from
  the chains' own colours, and where those do not match either, from a global transfer (``histogram``) from the
  nearest keyframe, or the automatic colorizer when one is given. Frames no chain reaches (another shot, too far)
  get the global transfer / colorizer alone.
- ``flow``: the same chains, with the Welsh-style ``knn`` transfer (or the colorizer) as the per-pixel fallback; a
  reference whose lightness does not match its frame (a photo of other content) gets low confidence everywhere, so
  the frame is coloured by ``knn`` from it.
- ``auto``: ``flow``, joined per pixel by the learned fusion (:mod:`~chromaflow.core.transfer.fusion`) with the
  colour of non-local matching (:mod:`~chromaflow.core.transfer.matching`) against the chains' keyframes and their
  memory frames (every ``memory_every``-th frame of the chain, coloured by the chain where it is confident). The
  memory holds chain colours, not fused ones, so a frame depends on no later frame of its chain and on nothing
  the request order could change. What the fusion changes is averaged over the frame and its two neighbours along
  the flow (matching answers each frame on its own), so a frame reads one frame ahead (:attr:`reads_ahead`).
  Without the matching encoder's weights in the model cache it is ``flow``.
- ``reinhard``, ``histogram``, ``knn``: per-frame transfer from the nearest keyframe's reference (any content).

Hosts ask for frames in any order and from several threads: frames and flows are kept by
:class:`~chromaflow.core.transfer.frames.SequenceFrames`, chain states by
:class:`~chromaflow.core.transfer.chains.ChainBook` (results do not depend on the order of requests; tests compare
random order with sequential order), per-frame results in thread-safe LRU caches.

Frame source: ``luma(n)`` (see :mod:`~chromaflow.core.transfer.frames`). Outputs: ``ab(n)`` ``(2, H, W)`` float32 at
full size; ``ab_work(n)`` ``(2, h, w)`` at the working resolution; ``rgb(n)`` ``(H, W, 3)`` float32 in [0, 1] with
the frame's own L*; ``info(n)``. Inside, ab is in the transfer maths' ``(H, W, 2)`` layout.
"""

import functools
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray
from torch import Tensor

from chromaflow.core.arrays import F32
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.flow import forward_backward_confidence, warp
from chromaflow.core.frame_facts import FrameFacts
from chromaflow.core.lru import LRUCache
from chromaflow.core.scenecut import DEFAULT_THRESHOLD, SceneCutDetector
from chromaflow.core.shots import ShotCuts
from chromaflow.core.transfer.chains import ChainBook
from chromaflow.core.transfer.frames import LumaSource, SequenceFrames
from chromaflow.core.transfer.fusion import Fused, Fusion, FusionCues
from chromaflow.core.transfer.global_stats import histogram, reinhard
from chromaflow.core.transfer.knn import KnnTable
from chromaflow.core.transfer.lab_arrays import chw, hwc, lab_planes_to_rgb
from chromaflow.core.transfer.matching import (
    FeatureEncoder,
    MatchParams,
    MatchSource,
    match_grid,
    memory_frames,
    to_working,
)
from chromaflow.core.transfer.model_fallback import ColourSource, colorizer_ab
from chromaflow.core.transfer.modes import PROPAGATING, Mode, check_transfer_mode
from chromaflow.core.transfer.propagate import (
    ChainState,
    PropagationParams,
    anchor_chain,
    blend_weight,
    chain_blend,
    chain_colour,
    compose_full,
    gauss_fill,
    grid_fill,
    luma_slopes,
    refine,
    sample_corrected,
    sample_full,
    settle_estimate,
    start_chain,
    step_chain,
    to_full_size,
)
from chromaflow.core.transfer.references import Keyframe, reference_rgb

log = logging.getLogger(__name__)

FUSED_READS_AHEAD = 1  # the fused delta's three-frame mean reads the next frame
CACHE_EVERY = 8  # every 8th chain state is kept as a checkpoint (random-access memory against recomputation)


@dataclass(frozen=True)
class _Result:
    """What one frame's colour is made of, at the working resolution (full size is assembled on demand)."""

    l_work: F32
    ab: F32  # (h, w, 2) blended chain colours (propagation), or the frame's whole ab (keyframes, global modes)
    ab_any: F32  # (h, w, 2) chain colours blended by distance and lightness match alone (prior of the fill)
    any_match: F32  # (h, w) how well the lightness matches there, 1 - prod(1 - match)
    conf: F32  # (h, w) combined chain confidence (zeros in the global modes)
    chains: tuple[tuple[int, F32, F32, F32], ...]  # per chain: keyframe, positions, confidence, blend weight
    info: "FrameInfo"


@dataclass(frozen=True)
class _Joined:
    """The fusion's answer for one frame at the working resolution, with what it was computed from."""

    fused: Fused
    flow: F32  # (h, w, 2) the flow transfer's colour
    delta: F32  # (h, w, 2) alpha * (match - flow): what the fusion changes


FrameInfo = FrameFacts  # the per-frame facts' earlier name


class KeyframeTransfer:
    """Colours of reference keyframes carried through a sequence (see the module docstring).

    ``references``: ``{frame_index: RGB image}`` (uint8/uint16/float arrays, or paths), or a single image (used as
    keyframe 0). ``colorizer``: optional automatic colorizer used as the low-confidence fallback
    (:mod:`~chromaflow.core.transfer.model_fallback`). ``shots``: the run's shared scene cuts (:class:`ShotCuts`,
    e.g. a :class:`~chromaflow.core.video.VideoColorizer`'s, so its smoothing stops at the same cuts); it replaces
    ``scene_cut_threshold`` and ``detect_cuts``. ``encoder``, ``fusion``, ``match_params``: the ``auto`` mode's
    matching encoder (default: ``mobilenet-v2-imagenet`` from the model cache), fusion net (default: the bundled
    weights) and matching tuning.
    """

    def __init__(
        self,
        references: Mapping[int, Any] | NDArray[np.generic],
        luma: LumaSource,
        num_frames: int,
        mode: Mode | str = "auto",
        *,
        scene_cut_threshold: float = DEFAULT_THRESHOLD,
        detect_cuts: bool = True,
        cache_every: int = CACHE_EVERY,
        colorizer: ColourSource | None = None,
        params: PropagationParams | None = None,
        knn_samples: int = 4096,
        cache_states: int = 64,
        cache_frames: int = 48,
        shots: ShotCuts | None = None,
        encoder: FeatureEncoder | None = None,
        fusion: Fusion | None = None,
        match_params: MatchParams | None = None,
    ) -> None:
        check_transfer_mode(mode)
        if num_frames < 1:
            raise InputError(f"the sequence has {num_frames} frames; it needs at least one")
        if cache_every < 1:
            raise UsageError(f"cache_every must be >= 1, got {cache_every}")
        refs = {0: references} if isinstance(references, np.ndarray) else dict(references)
        if not refs:
            raise UsageError("keyframe transfer needs at least one reference image")
        for n in refs:
            if not isinstance(n, int | np.integer) or not 0 <= int(n) < num_frames:
                raise InputError(f"reference frame index {n!r} is outside the sequence (0..{num_frames - 1})")
        self.mode: str = mode
        self.luma = luma
        self.num_frames = num_frames
        self.params = params or PropagationParams()
        self.cache_every = cache_every
        self.colorizer = colorizer
        self.knn_samples = knn_samples
        self.shots = shots or ShotCuts(SceneCutDetector(scene_cut_threshold) if detect_cuts else None)
        self.cuts = self.shots.detector
        self._ref_images = {int(n): img for n, img in refs.items()}
        self.keys = sorted(self._ref_images)
        self._frames = SequenceFrames(
            luma, num_frames, self.params.max_side, self.params.flow_preset, cache_frames
        )
        self._chains = ChainBook(cache_every, cache_states)
        self._lock = threading.Lock()
        self._keys: dict[int, Keyframe] = {}
        self._knn: dict[int, KnnTable] = {}
        self._key_slopes: dict[int, F32] = {}
        self._results = LRUCache(16)
        self._fallbacks = LRUCache(16)
        self.match_params = match_params or MatchParams()
        self.encoder = encoder if mode == "auto" else None
        if mode == "auto" and encoder is None:
            self.encoder = default_encoder()
        self.fusion = (fusion or Fusion()) if self.encoder is not None else None
        self._feats = LRUCache(24)
        self._key_sources: dict[int, MatchSource] = {}
        self._fused_cache = LRUCache(16)
        self._smoothed_cache = LRUCache(16)

    # ------------------------------------------------------------------ frames and cuts

    @property
    def work_size(self) -> tuple[int, int]:
        """``(h, w)`` of the working resolution (known after the first frame is read)."""
        return self._frames.work_size

    @property
    def reads_ahead(self) -> int:
        """How many frames after ``n`` frame ``n``'s colour reads beyond its chains (the fused delta's
        three-frame mean reads one)."""
        return FUSED_READS_AHEAD if self.fusion is not None else 0

    def work_luma(self, n: int) -> F32:
        """L* ``(h, w)`` of frame ``n`` at the working resolution."""
        return self._frames.frame(n).l_work

    def pair_flow(self, dst: int, src: int) -> F32:
        """Flow mapping frame ``dst``'s pixels into frame ``src`` (working resolution): the consecutive-frame flows
        the chains step with, computed once per run and lent to the temporal smoother."""
        return self._frames.flow(dst, src)

    def scene_cut(self, n: int) -> bool:
        """True when a new shot starts at frame ``n`` (frame 0 never)."""
        return self.shots.is_cut(n, lambda k: self._frames.frame(k).flow_luma)

    # ------------------------------------------------------------------ keyframes

    def _key(self, k: int) -> Keyframe:
        with self._lock:
            if k in self._keys:
                return self._keys[k]
        rgb = reference_rgb(self._ref_images[k])
        size = self._frames.full_size(k)
        key = Keyframe.of(k, rgb, size, self.work_size, self.mode in PROPAGATING)
        with self._lock:
            return self._keys.setdefault(k, key)

    def _slopes(self, k: int) -> F32:
        with self._lock:
            if k in self._key_slopes:
                return self._key_slopes[k]
        key = self._key(k)
        slopes = luma_slopes(key.l_full, key.ab_full, self.params)
        with self._lock:
            return self._key_slopes.setdefault(k, slopes)

    def _sample_key(self, k: int, pos: F32, l_full: F32) -> F32:
        """Keyframe ``k``'s full-resolution ab through a chain's positions (lightness-corrected if so set)."""
        key = self._key(k)
        if not self.params.slope_correct:
            return sample_full(key.ab_full, pos)
        return sample_corrected(key.ab_full, key.l_full, self._slopes(k), l_full, pos)

    def _knn_table(self, k: int) -> KnnTable:
        with self._lock:
            if k in self._knn:
                return self._knn[k]
        rgb = reference_rgb(self._ref_images[k])
        table = KnnTable.fit(rgb, samples=self.knn_samples, fit_side=self.params.max_side)
        with self._lock:
            return self._knn.setdefault(k, table)

    def nearest_key(self, n: int) -> int:
        """The keyframe nearest to ``n`` (the earlier one on a tie)."""
        return min(self.keys, key=lambda k: (abs(k - n), k))

    def prev_key(self, n: int) -> int | None:
        before = [k for k in self.keys if k <= n]
        return before[-1] if before else None

    def next_key(self, n: int) -> int | None:
        after = [k for k in self.keys if k >= n]
        return after[0] if after else None

    # ------------------------------------------------------------------ chains

    def _chain(self, direction: int, key: int, n: int) -> ChainState | None:
        """The state at frame ``n`` of the chain from keyframe ``key`` (``direction`` +1 forward, -1 backward)."""
        if abs(n - key) > self.params.max_distance:
            return None

        def start() -> ChainState:
            return start_chain(
                key, self.work_size, self._key(key).data.ab_work if self.params.carry else None
            )

        def advance(state: ChainState, m: int, j: int) -> ChainState | None:
            if self.scene_cut(max(m, j)):  # the cut between frames m and j is flagged on the later of the two
                return None
            state = step_chain(state, self._frames.flow(j, m), self._frames.flow(m, j), self.params)
            fr = self._frames.frame(j)
            if self.params.anchor and abs(j - key) % self.params.anchor_every == 0:
                state = anchor_chain(
                    state,
                    fr.flow_luma,
                    fr.l_work,
                    self._frames.frame(key).flow_luma,
                    self._key(key).data,
                    self.params,
                )
            return settle_estimate(state, self._key(key).data, fr.l_work, self.params)

        return self._chains.state(direction, key, n, start, advance)

    # ------------------------------------------------------------------ per-frame results

    def _fallback(self, n: int, l_work: F32) -> F32:
        """Fallback ab ``(h, w, 2)`` of frame ``n`` (cached: the blend and the full-size fill both use it)."""
        cached = self._fallbacks.get(n)
        if cached is None:
            cached = self._compute_fallback(n, l_work)
            self._fallbacks.put(n, cached)
        return cached

    def _compute_fallback(self, n: int, l_work: F32) -> F32:
        k = self.nearest_key(n)
        if self.colorizer is not None:
            return hwc(colorizer_ab(self.colorizer, l_work))
        if self.mode in ("auto", "flow", "knn"):
            return self._knn_table(k).lookup(l_work)
        if self.mode == "reinhard":
            return reinhard(self._key(k).samples, l_work)
        return histogram(self._key(k).samples, l_work)

    def _result(self, n: int) -> _Result:
        """The working-resolution makings of frame ``n``'s colour (cached)."""
        cached = self._results.get(n)
        if cached is not None:
            return cached
        frame = self._frames.frame(n)
        cut = self.scene_cut(n)
        is_key = n in self._ref_images
        chains: list[tuple[int, F32, F32, F32]] = []
        zeros = np.zeros(frame.l_work.shape, dtype=np.float32)
        ab_any = np.zeros((*zeros.shape, 2), dtype=np.float32)
        any_match = zeros
        if self.mode in ("reinhard", "histogram", "knn"):
            ab = self._fallback(n, frame.l_work)
            conf = zeros
            info = FrameInfo(abs(n - self.nearest_key(n)), 0.0, cut, is_key)
        elif is_key:
            ab = self._key(n).data.ab_work
            conf = np.ones_like(zeros)
            info = FrameInfo(0, 1.0, cut, True)
        else:
            found: list[tuple[int, ChainState]] = []
            for direction, k in ((1, self.prev_key(n)), (-1, self.next_key(n))):
                state = self._chain(direction, k, n) if k is not None else None
                if k is not None and state is not None:
                    found.append((k, state))
            nearest = min((st.distance for _, st in found), default=0)
            parts: list[tuple[F32, F32]] = []
            weights: list[F32] = []
            any_parts: list[tuple[F32, F32]] = []
            any_weights: list[F32] = []
            for k, state in found:
                ab_c, conf_c, photo_c = chain_colour(state, self._key(k).data, frame.l_work, self.params)
                weight = blend_weight(conf_c, state.distance, nearest, self.params)
                parts.append((ab_c, conf_c))
                weights.append(weight)
                chains.append((k, state.pos, conf_c, weight))
                # confidence aside: the chain's running estimate (or its colour where the lightness still
                # matches), nearer keyframe first
                if state.est is not None:
                    any_parts.append((state.est, np.ones_like(photo_c)))
                    any_weights.append(
                        blend_weight(np.ones_like(photo_c), state.distance, nearest, self.params)
                    )
                else:
                    any_parts.append((ab_c, photo_c))
                    any_weights.append(blend_weight(photo_c, state.distance, nearest, self.params))
            ab, conf = chain_blend(parts, self.work_size, weights)
            if not found:  # no chain reaches this frame (scene cut, distance): global transfer only
                ab = self._fallback(n, frame.l_work)
            else:
                ab_any, any_match = chain_blend(any_parts, self.work_size, any_weights)
            info = FrameInfo(nearest if found else -1, float(conf.mean()), cut, False)
        result = _Result(
            frame.l_work, np.asarray(ab, dtype=np.float32), ab_any, any_match, conf, tuple(chains), info
        )
        self._results.put(n, result)
        return result

    def info(self, n: int) -> FrameInfo:
        """Keyframe distance, mean confidence (the fused one in ``auto``) and scene-cut flag of frame ``n``."""
        res = self._result(n)
        fused = self._fused(n, res)
        if fused is None:
            return res.info
        return FrameInfo(
            res.info.keyframe_distance, float(fused.fused.conf.mean()), res.info.scene_cut, False
        )

    # ------------------------------------------------------------------ matching and fusion (auto)

    def _features(self, n: int) -> Tensor:
        cached = self._feats.get(n)
        if cached is None:
            assert self.encoder is not None
            cached = self.encoder(self._frames.frame(n).l_work)
            self._feats.put(n, cached)
        return cached

    def _key_source(self, k: int) -> MatchSource:
        with self._lock:
            if k in self._key_sources:
                return self._key_sources[k]
        data = self._key(k).data
        src = MatchSource.of(self._features(k), data.ab_work, np.ones(data.l_work.shape, dtype=np.float32))
        with self._lock:
            return self._key_sources.setdefault(k, src)

    def _flow_work(self, n: int, res: _Result) -> F32:
        """The flow transfer's ab ``(h, w, 2)`` of a propagated frame at the working resolution."""
        chains = [(sample_full(self._key(k).data.ab_work, pos), c, wt) for k, pos, c, wt in res.chains]
        return compose_full(chains, res.conf, self._fill(n, res, res.l_work))

    def fusion_cues(self, n: int) -> FusionCues | None:
        """What the fusion is told about frame ``n`` (None where nothing is fused: outside ``auto``, keyframes,
        frames no chain reaches): for fitting the fusion and measuring it."""
        if self.encoder is None or self.fusion is None or n in self._ref_images:
            return None
        res = self._result(n)
        return self._cues(n, res) if res.chains else None

    def _cues(self, n: int, res: _Result) -> FusionCues:
        """Matching against the chains' keyframes and memory, and the flow transfer's colour, as the fusion's cues."""
        mp = self.match_params
        sources = []
        for k, *_ in res.chains:
            sources.append(self._key_source(k))
            for m in memory_frames(k, n, mp):
                mem = self._result(m)
                if mem.chains:
                    sources.append(MatchSource.of(self._features(m), mem.ab, mem.conf))
        ab_g, conf_g, sim_g = match_grid(self._features(n), sources, mp, mp.memory_conf)
        match_ab, match_conf = to_working(res.l_work, ab_g, conf_g, mp)
        h, w = res.l_work.shape
        sim = np.asarray(cv2.resize(sim_g, (w, h), interpolation=cv2.INTER_LINEAR), dtype=np.float32)
        flow = self._flow_work(n, res)
        return FusionCues(res.l_work, flow, res.conf, res.any_match, match_ab, match_conf, sim)

    def _fused(self, n: int, res: _Result) -> _Joined | None:
        """The fusion's answer for a propagated frame (None outside ``auto``, for keyframes and for frames no chain
        reaches). The net sees the flow transfer's working-resolution colour, so ``ab``, ``ab_work`` and ``info``
        share one answer per frame. Cached."""
        if self.encoder is None or self.fusion is None or not res.chains:
            return None
        cached = self._fused_cache.get(n)
        if cached is not None:
            return cached
        cues = self._cues(n, res)
        fused = self.fusion(cues)
        delta = np.asarray(fused.alpha[..., None] * (cues.match_ab - cues.flow_ab), dtype=np.float32)
        out = _Joined(fused, cues.flow_ab, delta)
        self._fused_cache.put(n, out)
        return out

    def _delta(self, n: int) -> F32 | None:
        """What the fusion changes in frame ``n``'s working-resolution colour, ``alpha * (match - flow)`` ``(h, w,
        2)``: None where nothing is fused (outside ``auto``, frames no chain reaches), zeros at keyframes."""
        if self.fusion is None:
            return None
        if n in self._ref_images:
            return np.zeros((*self.work_size, 2), dtype=np.float32)
        joined = self._fused(n, self._result(n))
        return None if joined is None else joined.delta

    def _smoothed_delta(self, n: int) -> F32 | None:
        """:meth:`_delta` of frame ``n`` averaged with its neighbours' in the same shot, carried to it by the
        consecutive-frame flows and weighted by their forward-backward consistency (occluded pixels drop out).

        Matching answers each frame on its own, so its colour jitters from frame to frame where flow chains do not;
        the three-frame mean keeps the chains' temporal coherence (it reads one frame ahead). Cached."""
        cached = self._smoothed_cache.get(n)
        if cached is not None:
            return cached
        own = self._delta(n)
        if own is None or n in self._ref_images:
            return own
        total, weight = own.copy(), np.ones(own.shape[:2], dtype=np.float32)
        for m in (n - 1, n + 1):
            if not 0 <= m < self.num_frames or self.scene_cut(max(m, n)):
                continue
            other = self._delta(m)
            if other is None:
                continue
            to_m, from_m = self._frames.flow(n, m), self._frames.flow(m, n)
            conf = forward_backward_confidence(to_m, from_m, self.params.fb_sigma, self.params.fb_alpha)
            total += conf[..., None] * warp(other, to_m)
            weight += conf
        out = np.asarray(total / weight[..., None], dtype=np.float32)
        self._smoothed_cache.put(n, out)
        return out

    def _fill_prior(self, n: int, res: _Result) -> F32:
        """Coarsest estimate of the fill: the chains' own colours where the lightness still matches the keyframe,
        the fallback (global transfer, knn or the colorizer) where it does not."""
        if self.params.fill_prior != "chain":
            return self._fallback(n, res.l_work)
        fw = np.float32(self.params.fallback_weight)
        share = fw / (res.any_match + fw)
        if float(share.max()) < 0.5:
            return res.ab_any
        prior = res.ab_any + share[..., None] * (self._fallback(n, res.l_work) - res.ab_any)
        return np.asarray(prior, dtype=np.float32)

    def _fill(self, n: int, res: _Result, l_out: F32) -> F32:
        """ab ``(H, W, 2)`` for the low-confidence part of a propagated frame, at ``l_out``'s resolution."""
        if self.params.fill == "grid":
            prior = self._fill_prior(n, res)
            match = res.any_match if self.params.floor_photo else np.ones_like(res.conf)
            floor: F32 = np.asarray(np.float32(self.params.fill_floor) * match, dtype=np.float32)
            weight: F32 = np.asarray(res.conf + floor, dtype=np.float32)
            both = res.conf[..., None] * res.ab + floor[..., None] * res.ab_any
            values: F32 = np.asarray(both / np.maximum(weight, 1e-6)[..., None], dtype=np.float32)
            return grid_fill(res.l_work, values, weight, l_out, prior, self.params)
        raw = gauss_fill(res.ab, res.conf, self.params, lambda: self._fallback(n, res.l_work))
        if l_out.shape == res.l_work.shape:
            return refine(res.l_work, raw, self.params)
        return to_full_size(res.l_work, raw, l_out, self.params)

    # ------------------------------------------------------------------ outputs (channels-first ab)

    def ab_work(self, n: int) -> F32:
        """Refined ab ``(2, h, w)`` at the working resolution (for temporal smoothing)."""
        if self.mode in PROPAGATING and n in self._ref_images:
            return chw(self._key(n).data.ab_work)
        res = self._result(n)
        if not res.chains:
            return chw(refine(res.l_work, res.ab, self.params))
        joined = self._fused(n, res)
        flow = joined.flow if joined is not None else self._flow_work(n, res)
        delta = self._smoothed_delta(n)
        return chw(flow if delta is None else np.asarray(flow + delta, dtype=np.float32))

    def ab(self, n: int, l_full: F32 | None = None) -> F32:
        """ab ``(2, H, W)`` float32 of frame ``n`` at full size (``l_full``: its L* if the caller has it).

        Propagated colour is sampled once from the keyframe's full-resolution ab through the chain's position map
        (no re-filtering, which would blur it); only the low-confidence part is filled (edge-aware, luma-guided).
        """
        l_full = self._frames.l_full(n) if l_full is None else l_full
        if self.mode in PROPAGATING and n in self._ref_images:
            return chw(self._key(n).ab_full)
        res = self._result(n)
        if not res.chains:
            return chw(to_full_size(res.l_work, res.ab, l_full, self.params))
        chains = [(self._sample_key(k, pos, l_full), c, wt) for k, pos, c, wt in res.chains]
        flow = compose_full(chains, res.conf, self._fill(n, res, l_full))
        delta = self._smoothed_delta(n)
        if delta is None:
            return chw(flow)
        return chw(np.asarray(flow + to_full_size(res.l_work, delta, l_full, self.params), dtype=np.float32))

    def rgb(self, n: int) -> F32:
        """sRGB ``(H, W, 3)`` float32 of frame ``n``: the frame's own L* with the transferred ab."""
        l_full = self._frames.l_full(n)
        return lab_planes_to_rgb(l_full, self.ab(n, l_full))

    def release_before(self, n: int) -> None:
        """Forget cached frames, flows and chain states before frame ``n`` (streaming use keeps memory bounded)."""
        self._frames.release_before(n)
        self._results.keep_only(lambda k: not (isinstance(k, int) and k < n))
        self._fallbacks.keep_only(lambda k: not (isinstance(k, int) and k < n))
        self._feats.keep_only(lambda k: not (isinstance(k, int) and k < n))
        self._fused_cache.keep_only(lambda k: not (isinstance(k, int) and k < n))
        self._smoothed_cache.keep_only(lambda k: not (isinstance(k, int) and k < n))
        self._chains.release_before(n)


_warned_no_encoder = threading.Event()


def default_encoder() -> FeatureEncoder | None:
    """The ``auto`` mode's matching encoder from the model cache (one per weights file and process: loading it
    costs more than matching a short clip), or None (and one warning) when its weights are absent: ``auto`` then
    works as ``flow``."""
    from chromaflow.core import registry
    from chromaflow.core.nets.mobilenet_v2 import REGISTRY_NAME

    if not registry.is_present(REGISTRY_NAME):
        if not _warned_no_encoder.is_set():
            _warned_no_encoder.set()
            log.warning(
                "keyframe transfer 'auto' works as 'flow': the matching encoder's weights are not in the model "
                "cache; get them with `chromaflow models download %s`",
                REGISTRY_NAME,
            )
        return None
    path = registry.weights_path(REGISTRY_NAME)
    stat = path.stat()
    return _encoder_of(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=2)
def _encoder_of(path: str, size: int, mtime_ns: int) -> FeatureEncoder:
    """The encoder with the weights at ``path`` (size and time key the cache, so a replaced file is reread)."""
    from chromaflow.core.nets.mobilenet_v2 import MobileNetV2Features, load_imagenet
    from chromaflow.core.weights_io import load_state_dict

    return FeatureEncoder(load_imagenet(MobileNetV2Features(), load_state_dict(path)).eval())
