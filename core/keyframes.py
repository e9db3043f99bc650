"""KeyframeTransfer: colours from reference keyframes carried to every frame of a sequence, with random access.

Modes:

- ``propagate``: flow chains forward from the previous keyframe and backward from the next one in the same shot
  (:mod:`chromaflow.core.propagate`), anchored to their keyframe, sampled from its full-resolution colours and
  blended by confidence; low-confidence regions are filled from confident pixels of similar lightness, then from
  the chains' own colours, and where those do not match either, from a global transfer (``histogram``) from the
  nearest keyframe, or the automatic colorizer when one is given. Frames no chain reaches (another shot, too far)
  get the global transfer / colorizer alone.
- ``auto``: the same chains, with the Welsh-style ``knn`` transfer (or the colorizer) as the per-pixel fallback; a
  reference whose lightness does not match its frame (a photo of other content) gets low confidence everywhere, so
  the frame is coloured by ``knn`` from it.
- ``reinhard``, ``histogram``, ``knn``: per-frame transfer from the nearest keyframe's reference (any content).

**Random access.** Hosts ask for frames in any order and from several threads. Chain states (positions and validity
at the working resolution, see :class:`~chromaflow.core.propagate.ChainState`) are cached: every ``cache_every``-th
state as a checkpoint, and recent states in an LRU, so frame ``n`` costs the steps from the nearest cached state, not
from the keyframe. A state is always computed by the same steps from the same inputs, so results do not depend on the
order of requests (tests compare random order with sequential order). One lock per chain segment serialises the
stepping of that segment; flows, frames and results live in thread-safe LRU caches.

Frame source: ``luma(n)`` returns frame ``n`` as float L* ``(H, W)`` in [0, 100], an sRGB gray plane (uint8 or
uint16) or an RGB frame (see :func:`chromaflow.core.labarrays.to_lightness`). Outputs: ``ab(n)`` ``(2, H, W)``
float32 at full size; ``rgb(n)`` ``(H, W, 3)`` float32 in [0, 1] with the frame's own L*; ``info(n)``.
"""

import re
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray

from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.flow import compute_flow, to_flow_luma, working_size
from chromaflow.core.frame_facts import FrameFacts
from chromaflow.core.labarrays import (
    as_rgb_float,
    lab_planes_to_rgb,
    load_rgb,
    resize_plane,
    rgb_to_lab_planes,
    to_lightness,
)
from chromaflow.core.lru import LRUCache
from chromaflow.core.options import MODES as MODES  # re-exported: hosts import it from here
from chromaflow.core.options import check_transfer_mode
from chromaflow.core.propagate import (
    ChainState,
    KeyData,
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
from chromaflow.core.scenecut import DEFAULT_THRESHOLD, SceneCutDetector
from chromaflow.core.shots import ShotCuts
from chromaflow.core.transfer_global import LabSamples, histogram, reinhard
from chromaflow.core.transfer_knn import KnnTable

Mode = Literal["propagate", "reinhard", "histogram", "knn", "auto"]
F32 = NDArray[np.float32]
LumaSource = Callable[[int], Any]
_REF_SPEC = re.compile(r"^(\d+)=(.+)$")
CACHE_EVERY = 8  # every 8th chain state is kept as a checkpoint (random-access memory against recomputation)


def load_references(specs: Iterable[str], num_frames: int | None = None) -> dict[int, F32]:
    """Parse ``N=IMAGE`` strings (N the 0-based frame index) and load the images as float RGB ``(H, W, 3)``.

    ``num_frames``: the input's length when it is known exactly (before the run); a reference past it is then
    refused at once (:class:`UsageError`) instead of at the end of the run.
    """
    refs: dict[int, F32] = {}
    for spec in specs:
        m = _REF_SPEC.match(spec.strip())
        if m is None:
            raise UsageError(
                f"bad reference {spec!r}: write N=IMAGE, N the 0-based frame index (e.g. 0=key.png)"
            )
        n = int(m.group(1))
        if n in refs:
            raise UsageError(f"frame {n} has two references; give one image per frame")
        if num_frames is not None and n >= num_frames:
            raise UsageError(
                f"reference {spec!r} is for frame {n}, but the input has {num_frames} frames (0 .. {num_frames - 1}); "
                "frame numbers start at 0"
            )
        path = Path(m.group(2))
        if path.is_dir():
            raise InputError(
                f"reference {spec!r}: {path} is a folder; give one image file per keyframe (PNG, JPEG or TIFF), "
                f"e.g. {n}={path / 'key.png'}"
            )
        refs[n] = load_rgb(path)
    if not refs:
        raise UsageError("no references given; use --ref N=IMAGE")
    return refs


@dataclass(frozen=True)
class _Frame:
    l_work: F32  # L* at the working resolution
    flow_luma: NDArray[np.uint8]  # what DIS sees, and what cut detection sees (ShotCuts)


@dataclass(frozen=True)
class _Key:
    index: int
    l_full: F32  # the reference's L* at frame size
    ab_full: F32  # (H, W, 2)
    data: KeyData  # working resolution
    samples: LabSamples  # for reinhard / histogram


_DEAD = "dead"  # a chain stopped by a scene cut or the distance limit


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


FrameInfo = FrameFacts  # the per-frame facts' earlier name


class KeyframeTransfer:
    """Colours of reference keyframes carried through a sequence (see the module docstring).

    ``references``: ``{frame_index: RGB image}`` (uint8/uint16/float arrays, or paths), or a single image (used as
    keyframe 0). ``colorizer``: optional automatic colorizer used as the low-confidence fallback: an object with
    ``predict_ab(l: Tensor (N, 1, H, W)) -> Tensor (N, 2, H, W)`` (:class:`chromaflow.core.colorizer.Colorizer`) or a
    callable ``L* (h, w) -> ab (h, w, 2)``. ``shots``: the run's shared scene cuts (:class:`ShotCuts`, e.g. a
    :class:`~chromaflow.core.video.VideoColorizer`'s, so its smoothing stops at the same cuts); it replaces
    ``scene_cut_threshold`` and ``detect_cuts``.
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
        colorizer: Any = None,
        params: PropagationParams | None = None,
        knn_samples: int = 4096,
        cache_states: int = 64,
        cache_frames: int = 48,
        shots: ShotCuts | None = None,
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
        self._size: tuple[int, int] | None = None
        self._work: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._keys: dict[int, _Key] = {}
        self._knn: dict[int, KnnTable] = {}
        self._key_slopes: dict[int, F32] = {}
        self._segment_locks: dict[tuple[int, int], threading.Lock] = {}
        self._frames = LRUCache(cache_frames)
        self._flows = LRUCache(4 * cache_frames)
        self._states = LRUCache(cache_states)
        self._checkpoints = LRUCache(max(16, 4 * cache_states))
        self._results = LRUCache(16)
        self._fallbacks = LRUCache(16)

    # ------------------------------------------------------------------ frames, flows, cuts

    def _l_full(self, n: int) -> F32:
        if not 0 <= n < self.num_frames:
            raise InputError(f"frame {n} is outside the sequence (0..{self.num_frames - 1})")
        l_full = to_lightness(self.luma(n))
        size = (int(l_full.shape[0]), int(l_full.shape[1]))
        with self._lock:
            if self._size is None:
                self._size = size
                self._work = working_size(size, self.params.max_side)
        if size != self._size:
            raise InputError(
                f"frame {n} is {size[1]}x{size[0]}, the sequence is {self._size[1]}x{self._size[0]}"
            )
        return l_full

    @property
    def work_size(self) -> tuple[int, int]:
        """``(h, w)`` of the working resolution (known after the first frame is read)."""
        if self._work is None:
            self._l_full(0)
        assert self._work is not None
        return self._work

    def _frame(self, n: int, l_full: F32 | None = None) -> _Frame:
        cached = self._frames.get(n)
        if cached is not None:
            return cached
        l_full = self._l_full(n) if l_full is None else l_full
        l_work = resize_plane(l_full, self.work_size)
        frame = _Frame(l_work, to_flow_luma(l_work))
        self._frames.put(n, frame)
        return frame

    def work_luma(self, n: int) -> F32:
        """L* ``(h, w)`` of frame ``n`` at the working resolution."""
        return self._frame(n).l_work

    def _flow(self, dst: int, src: int) -> F32:
        """Flow mapping frame ``dst``'s pixels to positions in frame ``src`` (working resolution)."""
        cached = self._flows.get((dst, src))
        if cached is not None:
            return cached
        flow = compute_flow(self._frame(src).flow_luma, self._frame(dst).flow_luma, self.params.flow_preset)
        self._flows.put((dst, src), flow)
        return flow

    def scene_cut(self, n: int) -> bool:
        """True when a new shot starts at frame ``n`` (frame 0 never)."""
        return self.shots.is_cut(n, lambda k: self._frame(k).flow_luma)

    # ------------------------------------------------------------------ keyframes

    def _key(self, k: int) -> _Key:
        with self._lock:
            if k in self._keys:
                return self._keys[k]
        img = self._ref_images[k]
        rgb = load_rgb(img) if isinstance(img, str | Path) else as_rgb_float(np.asarray(img))
        samples = LabSamples.of(rgb)
        size = self._size if self._size is not None else self._l_full(k).shape
        h, w = int(size[0]), int(size[1])
        rh, rw = rgb.shape[:2]
        if self.mode in ("propagate", "auto") and abs(rw / rh - w / h) > 0.01 * (w / h):
            raise InputError(
                f"reference for frame {k} is {rw}x{rh}, frames are {w}x{h}: a propagated keyframe must be a "
                "colouring of that frame (same aspect ratio); use --transfer knn for references of other content"
            )
        l_ref, ab_ref = rgb_to_lab_planes(rgb)
        l_full, ab_full = resize_plane(l_ref, (h, w)), resize_plane(ab_ref, (h, w))
        work = self.work_size
        key = _Key(
            k, l_full, ab_full, KeyData(resize_plane(l_full, work), resize_plane(ab_full, work)), samples
        )
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
        img = self._ref_images[k]
        rgb = load_rgb(img) if isinstance(img, str | Path) else as_rgb_float(np.asarray(img))
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

    def _segment_lock(self, direction: int, key: int) -> threading.Lock:
        with self._lock:
            return self._segment_locks.setdefault((direction, key), threading.Lock())

    def _stored(self, tag: tuple[int, int, int]) -> ChainState | str | None:
        st = self._states.get(tag)
        return st if st is not None else self._checkpoints.get(tag)

    def _chain(self, direction: int, key: int, n: int) -> ChainState | None:
        """The state at frame ``n`` of the chain from keyframe ``key`` (``direction`` +1 forward, -1 backward)."""
        if abs(n - key) > self.params.max_distance:
            return None
        with self._segment_lock(direction, key):
            m = n
            state = self._stored((direction, key, m))
            while state is None and m != key:
                m -= direction
                state = self._stored((direction, key, m))
            if state is None:  # m == key
                state = start_chain(
                    key, self.work_size, self._key(key).data.ab_work if self.params.carry else None
                )
                self._checkpoints.put((direction, key, key), state)
            while m != n:
                j = m + direction
                # the cut between frames m and j is flagged on the later of the two
                if state is _DEAD or self.scene_cut(max(m, j)):
                    state = _DEAD
                else:
                    assert isinstance(state, ChainState)
                    state = step_chain(state, self._flow(j, m), self._flow(m, j), self.params)
                    fr = self._frame(j)
                    if self.params.anchor and abs(j - key) % self.params.anchor_every == 0:
                        state = anchor_chain(
                            state,
                            fr.flow_luma,
                            fr.l_work,
                            self._frame(key).flow_luma,
                            self._key(key).data,
                            self.params,
                        )
                    state = settle_estimate(state, self._key(key).data, fr.l_work, self.params)
                tag = (direction, key, j)
                if abs(j - key) % self.cache_every == 0:
                    self._checkpoints.put(tag, state)
                else:
                    self._states.put(tag, state)
                m = j
        return state if isinstance(state, ChainState) else None

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
            return _colorizer_ab(self.colorizer, l_work)
        if self.mode == "auto" or self.mode == "knn":
            return self._knn_table(k).lookup(l_work)
        if self.mode == "reinhard":
            return reinhard(self._key(k).samples, l_work)
        return histogram(self._key(k).samples, l_work)

    def _result(self, n: int) -> _Result:
        """The working-resolution makings of frame ``n``'s colour (cached)."""
        cached = self._results.get(n)
        if cached is not None:
            return cached
        frame = self._frame(n)
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
        """Keyframe distance, mean confidence and scene-cut flag of frame ``n``."""
        return self._result(n).info

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

    def ab_work(self, n: int) -> F32:
        """Refined ab ``(2, h, w)`` at the working resolution (for temporal smoothing)."""
        if self.mode in ("propagate", "auto") and n in self._ref_images:
            return np.ascontiguousarray(self._key(n).data.ab_work.transpose(2, 0, 1))
        res = self._result(n)
        if not res.chains:
            return np.ascontiguousarray(refine(res.l_work, res.ab, self.params).transpose(2, 0, 1))
        chains = [(sample_full(self._key(k).data.ab_work, pos), c, wt) for k, pos, c, wt in res.chains]
        out = compose_full(chains, res.conf, self._fill(n, res, res.l_work))
        return np.ascontiguousarray(out.transpose(2, 0, 1))

    def ab(self, n: int, l_full: F32 | None = None) -> F32:
        """ab ``(2, H, W)`` float32 of frame ``n`` at full size (``l_full``: its L* if the caller has it).

        Propagated colour is sampled once from the keyframe's full-resolution ab through the chain's position map
        (no re-filtering, which would blur it); only the low-confidence part is filled (edge-aware, luma-guided).
        """
        l_full = self._l_full(n) if l_full is None else l_full
        if self.mode in ("propagate", "auto") and n in self._ref_images:
            return np.ascontiguousarray(self._key(n).ab_full.transpose(2, 0, 1))
        res = self._result(n)
        if not res.chains:
            return np.ascontiguousarray(
                to_full_size(res.l_work, res.ab, l_full, self.params).transpose(2, 0, 1)
            )
        chains = [(self._sample_key(k, pos, l_full), c, wt) for k, pos, c, wt in res.chains]
        out = compose_full(chains, res.conf, self._fill(n, res, l_full))
        return np.ascontiguousarray(out.transpose(2, 0, 1))

    def rgb(self, n: int) -> F32:
        """sRGB ``(H, W, 3)`` float32 of frame ``n``: the frame's own L* with the transferred ab."""
        l_full = self._l_full(n)
        return lab_planes_to_rgb(l_full, self.ab(n, l_full).transpose(1, 2, 0))

    def release_before(self, n: int) -> None:
        """Forget cached frames, flows and chain states before frame ``n`` (streaming use keeps memory bounded)."""
        self._frames.keep_only(lambda k: not (isinstance(k, int) and k < n))
        self._flows.keep_only(lambda k: not (isinstance(k, tuple) and min(k) < n))
        self._results.keep_only(lambda k: not (isinstance(k, int) and k < n))
        self._fallbacks.keep_only(lambda k: not (isinstance(k, int) and k < n))
        self._states.keep_only(lambda k: not (isinstance(k, tuple) and k[2] < n))
        self._checkpoints.keep_only(lambda k: not (isinstance(k, tuple) and k[2] < n and k[2] != k[1]))


def _colorizer_ab(colorizer: Any, l_work: F32) -> F32:
    """ab ``(h, w, 2)`` from a Colorizer (``predict_ab``) or a plain callable."""
    if hasattr(colorizer, "predict_ab"):
        with torch.inference_mode():
            out = colorizer.predict_ab(torch.from_numpy(np.ascontiguousarray(l_work))[None, None])
        return np.ascontiguousarray(out[0].float().cpu().numpy().transpose(1, 2, 0), dtype=np.float32)
    ab = np.asarray(colorizer(l_work), dtype=np.float32)
    if ab.shape == (2, *l_work.shape):
        ab = ab.transpose(1, 2, 0)
    if ab.shape != (*l_work.shape, 2):
        raise InputError(f"the colorizer returned ab of shape {ab.shape} for L* of shape {l_work.shape}")
    return np.ascontiguousarray(ab)
