"""Propagation of a keyframe's colours along a shot with dense optical flow (the ``propagate`` transfer mode).

Chains, flow and confidence work at a *working resolution* (longer side ``max_side``, e.g. 480 px); colour is
sampled at full resolution.

A **chain** carries one keyframe in one direction (forward from the previous keyframe, backward from the next). Its
state at frame ``n`` is not a colour image but, per pixel, the position in the keyframe that the pixel came from
(``pos``) and how far that correspondence can be trusted (``valid``). One step from frame ``m`` to its neighbour
``n``::

    pos_n   = pos_m   sampled at x + flow_{n->m}(x)
    valid_n = valid_m sampled there * ramp(fb_conf(x))

with ``fb_conf`` the forward-backward consistency of the pair (Sundaram et al. 2010; 0 for occluded, disoccluded and
out-of-frame pixels, :func:`chromaflow.core.flow.forward_backward_confidence`) and ``ramp`` a soft threshold. Then
the step is **anchored** (:func:`anchor_chain`): DIS from frame ``n`` straight to the keyframe, started from the
composed displacement, corrects the drift that composing flows accumulates; a pixel takes the anchored position
where it matches the keyframe's lightness better. Composing positions (smooth fields) rather than re-warping colours
each step keeps colours sharp: ab is sampled **once**, from the keyframe's full-resolution ab, through the upsampled
position map (:func:`sample_full`), with a first-order lightness correction (:func:`sample_corrected`). A chain
stops at a scene cut (the caller decides that).

A chain's confidence at frame ``n`` is

    conf = valid_n * photo * decay^distance,   photo = exp(-D / (2 * photo_sigma^2))

where ``D`` is the local mean of the squared L* difference between frame ``n`` and the keyframe at ``pos_n``
(photometric check against the keyframe itself, so errors do not accumulate unseen).

**Blend**: chains are averaged with weights ``conf * blend_decay^(extra distance)`` (the nearer keyframe has drifted
less); the combined confidence is ``1 - prod(1 - conf)``. **Fill** where it is low (:func:`grid_fill`): a
confidence-weighted bilateral grid over (x, y, L*) takes colour from pixels that are near *and* of similar lightness;
the chains' own colours enter it with a small weight (``fill_floor``, scaled by their lightness match), so
low-confidence but plausible colour (water, foliage) is smoothed rather than replaced; the chains' colours, or the
fallback (global transfer from the nearest keyframe, knn, or the automatic colorizer) where even they do not match,
are the coarsest level. **Compose** (:func:`compose_full`): ``conf * chain colour + (1 - conf) * fill`` at full
resolution. The fill is read out at full resolution on the frame's L*, so it follows the frame's edges; the
confident part is not filtered again (every resampling blurs).

The older path (``fill="gauss"``: spatial normalised convolution, then a guided filter on the frame's L*,
:mod:`.guided`) is kept for comparison; it scored below the grid fill on DAVIS-2016 dev under
``benchmarks/transfer.py``'s protocol.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from chromaflow.core.arrays import F32
from chromaflow.core.errors import UsageError
from chromaflow.core.flow import FB_ALPHA, FB_SIGMA, FlowPreset, dis_flow, forward_backward_confidence
from chromaflow.core.transfer.bilateral_fill import cascade_fill
from chromaflow.core.transfer.guided import box, guided_coefficients, guided_filter, guided_upsample
from chromaflow.core.transfer.lab_arrays import chw, hwc


@dataclass(frozen=True)
class PropagationParams:
    """Tuning of propagation (defaults tuned on DAVIS-2016 dev, ``benchmarks/transfer.py``)."""

    max_side: int = 480  # working resolution: longer side in pixels
    flow_preset: FlowPreset = "ultrafast"  # consecutive frames (anchoring corrects the drift)
    fb_sigma: float = FB_SIGMA
    fb_alpha: float = FB_ALPHA
    anchor: bool = True  # re-align each chain step directly against the keyframe (drift correction)
    anchor_preset: str = "fine"  # a DIS preset, or "fine" (medium with full working-resolution patches)
    anchor_every: int = 1  # anchor every this many frames of a chain
    carry: bool = False  # chains carry a running colour estimate for content the keyframe does not show
    # (off: on DAVIS it helped long key-0-only runs slightly but cost more on short ones, benchmarks/transfer.py)
    step_low: float = 0.02  # fb confidence at or below which a step breaks the chain
    step_high: float = 0.2  # fb confidence at or above which a step keeps the chain fully
    decay: float = 0.99  # confidence kept per frame of distance from the keyframe
    blend_decay: float = 0.95  # relative weight per frame of distance when two chains are blended
    photo_sigma: float = 16.0  # L* units: tolerated difference from the keyframe's lightness
    photo_radius: int = 2  # window (working px) of the photometric check
    fill_sigma: float = 12.0  # working px: reach of the fill from confident neighbours
    fallback_weight: float = 0.05  # weight of the fallback ab against the neighbours' support
    fill: str = "grid"  # "grid": luma-guided bilateral-grid fill; "gauss": spatial fill + guided filter
    grid_sigma_s: float = 8.0  # working px: fine grid cell
    grid_sigma_l: float = 8.0  # L* units: fine grid cell
    fill_prior: str = "chain"  # where the grid has no support: "chain" colours regardless of confidence, or
    # "fallback" (global transfer / colorizer)
    fill_floor: float = 1.0  # weight of a chain's own colour in the fill where it has no confidence
    floor_photo: bool = True  # scale that weight by the chain's lightness match with the keyframe
    grid_prior: float = 2.0  # confident weight (pixels) below which a coarser estimate takes over
    slope_correct: bool = True  # correct sampled colours by the lightness difference (see sample_corrected)
    slope_radius: int = 2  # full-resolution px
    slope_eps: float = 5.0  # L* units squared
    slope_max: float = 3.0  # ab units per L* unit
    guided_radius: int = 4  # working px
    guided_eps: float = 16.0  # L* units squared
    max_distance: int = 150  # keyframes further away than this are not propagated from

    def __post_init__(self) -> None:
        if self.max_side < 16:
            raise UsageError(f"working resolution must be at least 16 px, got {self.max_side}")
        if not 0 < self.decay <= 1:
            raise UsageError(f"confidence decay must be in (0, 1], got {self.decay}")
        if not 0 <= self.step_low < self.step_high <= 1:
            raise UsageError("need 0 <= step_low < step_high <= 1")
        if self.anchor_every < 1:
            raise UsageError(f"anchor_every must be >= 1, got {self.anchor_every}")
        if self.max_distance < 1:
            raise UsageError(f"max_distance must be >= 1, got {self.max_distance}")


@dataclass(frozen=True)
class ChainState:
    """One chain at one frame: keyframe, distance in frames, source positions ``(h, w, 2)``, validity ``(h, w)``."""

    key: int
    distance: int
    pos: F32
    valid: F32
    est: F32 | None = None  # (h, w, 2) the chain's running colour estimate (see settle_estimate)


@dataclass(frozen=True)
class KeyData:
    """What a chain needs of its keyframe, at the working resolution."""

    l_work: F32  # (h, w) L* of the reference
    ab_work: F32  # (h, w, 2)


def identity_positions(size: tuple[int, int]) -> F32:
    """Pixel coordinates ``(h, w, 2)`` (x, y) of a grid."""
    h, w = size
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return np.ascontiguousarray(np.stack((gx, gy), axis=-1))


def start_chain(key: int, size: tuple[int, int], ab_work: F32 | None = None) -> ChainState:
    """The state of a chain at its keyframe: every pixel maps to itself, fully valid (estimate: its ab)."""
    return ChainState(key, 0, identity_positions(size), np.ones(size, dtype=np.float32), ab_work)


def settle_estimate(state: ChainState, key: KeyData, l_work: F32, params: PropagationParams) -> ChainState:
    """Update the chain's running colour estimate at its new frame.

    ``est_n = conf * key colour at pos_n + (1 - conf) * est_{n-1} warped to frame n``: where the chain is trusted
    it is the keyframe's colour; where it is not (content the keyframe does not show, or lost track), the colour
    of the previous frame follows the motion, as a plain flow chain would carry it. The fill uses it as the
    chains' own colour in low-confidence regions.
    """
    if state.est is None:
        return state
    colour, conf, _ = chain_colour(state, key, l_work, params)
    est = state.est + conf[..., None] * (colour - state.est)
    return ChainState(state.key, state.distance, state.pos, state.valid, np.asarray(est, dtype=np.float32))


def _sample(image: NDArray[np.floating], map_xy: F32) -> F32:
    arr = np.ascontiguousarray(image, dtype=np.float32)
    out = cv2.remap(arr, map_xy[..., 0], map_xy[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, dtype=np.float32).reshape(map_xy.shape[:2] + arr.shape[2:])


def step_chain(
    state: ChainState, flow_to_prev: F32, flow_from_prev: F32, params: PropagationParams
) -> ChainState:
    """Advance a chain by one frame.

    ``flow_to_prev`` maps the new frame's pixels to the previous frame (``compute_flow(src=prev, dst=new)``),
    ``flow_from_prev`` the reverse (``compute_flow(src=new, dst=prev)``).
    """
    grid = identity_positions(flow_to_prev.shape[:2]) + flow_to_prev
    packed = np.concatenate((state.pos, state.valid[..., None]), axis=-1)  # one remap for both
    sampled = _sample(packed, grid)
    fb = forward_backward_confidence(flow_to_prev, flow_from_prev, params.fb_sigma, params.fb_alpha)
    ramp = np.clip((fb - params.step_low) / (params.step_high - params.step_low), 0.0, 1.0)
    valid = np.asarray(sampled[..., 2] * ramp, dtype=np.float32)
    est = _sample(state.est, grid) if state.est is not None else None  # carried; settled by settle_estimate
    return ChainState(state.key, state.distance + 1, np.ascontiguousarray(sampled[..., :2]), valid, est)


def anchor_chain(
    state: ChainState,
    frame_luma: NDArray[np.uint8],
    l_work: F32,
    key_luma: NDArray[np.uint8],
    key: KeyData,
    params: PropagationParams,
) -> ChainState:
    """Drift correction: refine a chain's positions by flow straight to the keyframe, started from those positions.

    Composed flows drift a little every step. DIS from the frame to the keyframe, initialised with the chain's
    displacement, pulls positions back onto the keyframe's content; per pixel, the refined position is kept only
    where it matches the keyframe's lightness better (local squared L* difference) than the composed one.
    """
    ident = identity_positions(state.pos.shape[:2])
    flow = np.ascontiguousarray(state.pos - ident)
    # calc starts from the flow it is given when that flow has the frame's size and type CV_32FC2
    refined = dis_flow(params.anchor_preset, frame_luma, key_luma, flow, purpose="anchor")
    pos_new = np.asarray(ident + refined, dtype=np.float32)
    e_old = box((_sample(key.l_work, state.pos) - l_work) ** 2, params.photo_radius)
    e_new = box((_sample(key.l_work, pos_new) - l_work) ** 2, params.photo_radius)
    h, w = l_work.shape
    inside = (
        (pos_new[..., 0] >= 0)
        & (pos_new[..., 0] <= w - 1)
        & (pos_new[..., 1] >= 0)
        & (pos_new[..., 1] <= h - 1)
    )
    take = (e_new < e_old) & inside
    pos = np.where(take[..., None], pos_new, state.pos)
    return ChainState(
        state.key, state.distance, np.ascontiguousarray(pos, dtype=np.float32), state.valid, state.est
    )


def chain_colour(
    state: ChainState, key: KeyData, l_work: F32, params: PropagationParams
) -> tuple[F32, F32, F32]:
    """``(ab (h, w, 2), confidence (h, w), photometric match (h, w))`` a chain gives the frame with L* ``l_work``.

    The photometric match (in [0, 1]) compares the frame's lightness with the keyframe's at the chain's positions.
    """
    packed = np.concatenate((key.ab_work, key.l_work[..., None]), axis=-1)
    sampled = _sample(packed, state.pos)
    diff = (sampled[..., 2] - l_work) ** 2
    photo = np.exp(-box(diff, params.photo_radius) / (2.0 * params.photo_sigma**2))
    conf = state.valid * photo * np.float32(params.decay**state.distance)
    return (
        np.ascontiguousarray(sampled[..., :2]),
        np.asarray(conf, dtype=np.float32),
        np.asarray(photo, dtype=np.float32),
    )


def _gauss(x: NDArray[np.floating], sigma: float) -> F32:
    arr = np.ascontiguousarray(x, dtype=np.float32)
    out = cv2.GaussianBlur(arr, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    return np.asarray(out, dtype=np.float32).reshape(arr.shape)


def blend_weight(conf: F32, distance: int, nearest: int, params: PropagationParams) -> F32:
    """Weight of a chain in the blend: its confidence, times ``blend_decay`` per frame it is further from its
    keyframe than the nearest chain (``nearest`` frames): the nearer keyframe's colours have drifted less."""
    return np.asarray(conf * np.float32(params.blend_decay ** (distance - nearest)), dtype=np.float32)


def chain_blend(
    parts: Sequence[tuple[F32, F32]], size: tuple[int, int], weights: Sequence[F32] | None = None
) -> tuple[F32, F32]:
    """Weighted mean of chain colours ``(h, w, 2)`` and their combined confidence ``1 - prod(1 - conf)``."""
    h, w = size
    num = np.zeros((h, w, 2), dtype=np.float32)
    wsum = np.zeros((h, w), dtype=np.float32)
    miss = np.ones((h, w), dtype=np.float32)
    for i, (ab, conf) in enumerate(parts):
        wt = conf if weights is None else weights[i]
        num += wt[..., None] * ab
        wsum += wt
        miss *= 1.0 - conf
    ab_p = num / np.maximum(wsum, 1e-6)[..., None]
    return np.asarray(ab_p, dtype=np.float32), np.asarray(1.0 - miss, dtype=np.float32)


def gauss_fill(
    ab_p: F32, conf_tot: F32, params: PropagationParams, fallback: Callable[[], F32 | None] | None = None
) -> F32:
    """Chain colours kept where confident, filled elsewhere from confident neighbours (normalised Gaussian
    convolution) and, where there are none, from ``fallback()`` (called only when needed; ab or None)."""
    support = _gauss(conf_tot, params.fill_sigma)
    local = _gauss(conf_tot[..., None] * ab_p, params.fill_sigma) / np.maximum(support, 1e-6)[..., None]
    fw = np.float32(params.fallback_weight)
    need = (1.0 - conf_tot) * fw / (support + fw)
    fb_ab = fallback() if fallback is not None and float(need.max()) > 0.02 else None
    if fb_ab is None:
        fill = np.where((support > 1e-4)[..., None], local, 0.0)
    else:
        fill = (support[..., None] * local + fw * fb_ab) / (support + fw)[..., None]
    ab = conf_tot[..., None] * ab_p + (1.0 - conf_tot)[..., None] * fill
    return np.asarray(ab, dtype=np.float32)


def blend(
    parts: Sequence[tuple[F32, F32]],
    size: tuple[int, int],
    params: PropagationParams,
    fallback: Callable[[], F32 | None] | None = None,
    weights: Sequence[F32] | None = None,
) -> tuple[F32, F32]:
    """Blend of chain colours with fill-in; returns raw ``(ab (h, w, 2), confidence (h, w))``."""
    ab_p, conf_tot = chain_blend(parts, size, weights)
    return gauss_fill(ab_p, conf_tot, params, fallback), conf_tot


def grid_fill(
    l_work: F32, ab_p: F32, conf_tot: F32, l_out: F32, prior: F32 | None, params: PropagationParams
) -> F32:
    """Luma-guided fill of chain colours at ``l_out``'s resolution (:func:`.bilateral_fill.cascade_fill`)."""
    scales = ((params.grid_sigma_s, params.grid_sigma_l), (4 * params.grid_sigma_s, 2 * params.grid_sigma_l))
    return cascade_fill(l_work, ab_p, conf_tot, l_out, scales, prior, params.grid_prior)


def refine(l_work: F32, ab_raw: F32, params: PropagationParams) -> F32:
    """Edge-aware refinement of working-resolution ab on the frame's L* (guided filter)."""
    if params.guided_radius <= 0:
        return ab_raw
    return guided_filter(l_work, ab_raw, params.guided_radius, params.guided_eps)


def to_full_size(l_work: F32, ab_raw: F32, l_full: F32, params: PropagationParams) -> F32:
    """Refined ab at the full resolution of ``l_full`` (fast guided filter: edge-aware upsampling)."""
    if params.guided_radius <= 0:
        return resize_to(ab_raw, l_full.shape)
    return guided_upsample(l_work, ab_raw, l_full, params.guided_radius, params.guided_eps)


def upsample_ab(l_work: F32, ab_work: F32, l_full: F32, params: PropagationParams) -> F32:
    """Channels-first :func:`to_full_size`: ab ``(2, h, w)`` at ``l_work``'s size to ``(2, H, W)`` at ``l_full``'s
    (for callers outside the package, such as the video engine after temporal smoothing)."""
    return chw(to_full_size(l_work, hwc(ab_work), l_full, params))


def resize_to(plane: F32, size: tuple[int, ...]) -> F32:
    """Bilinear resize of an ``(h, w)`` or ``(h, w, C)`` plane to ``size[:2] = (H, W)``."""
    h, w = int(size[0]), int(size[1])
    if plane.shape[:2] == (h, w):
        return plane
    out = cv2.resize(np.ascontiguousarray(plane), (w, h), interpolation=cv2.INTER_LINEAR)
    return np.asarray(out, dtype=np.float32).reshape(h, w, *plane.shape[2:])


def full_positions(pos_work: F32, full_size: tuple[int, int]) -> F32:
    """A working-resolution position map ``(h, w, 2)`` as a map ``(H, W, 2)`` into full-resolution pixels.

    The displacement (position minus the pixel's own coordinates) is upsampled bilinearly and scaled to full-size
    pixel units, so the identity map stays the identity, borders included.
    """
    h, w = pos_work.shape[:2]
    big_h, big_w = full_size
    disp = resize_to(pos_work - identity_positions((h, w)), (big_h, big_w))
    disp[..., 0] *= np.float32(big_w / w)
    disp[..., 1] *= np.float32(big_h / h)
    disp += identity_positions((big_h, big_w))
    return disp


def sample_full(ab_full: F32, pos_work: F32) -> F32:
    """A keyframe's full-resolution ab ``(H, W, 2)`` sampled once through a chain's (upsampled) position map."""
    return _sample(ab_full, full_positions(pos_work, (int(ab_full.shape[0]), int(ab_full.shape[1]))))


def luma_slopes(l_key: F32, ab_key: F32, params: PropagationParams) -> F32:
    """Local slopes ``d ab / d L*`` ``(H, W, 2)`` of a keyframe (the guided filter's ``a`` coefficients)."""
    a, _ = guided_coefficients(l_key, ab_key, params.slope_radius, params.slope_eps)
    return np.asarray(np.clip(a, -params.slope_max, params.slope_max), dtype=np.float32)


def sample_corrected(ab_full: F32, l_key: F32, slopes: F32, l_frame: F32, pos_work: F32) -> F32:
    """Like :func:`sample_full`, plus a first-order correction by lightness.

    ``ab = ab_key(p) + slope_key(p) * (L_frame - L_key(p))``: where the position is right the frame's lightness
    equals the keyframe's and nothing changes; where it is a little off across an edge, the lightness difference
    moves the colour towards the side the pixel really belongs to, following the keyframe's local colour-lightness
    relation.
    """
    pos = full_positions(pos_work, (int(ab_full.shape[0]), int(ab_full.shape[1])))
    sampled = _sample(np.concatenate((ab_full, l_key[..., None]), axis=-1), pos)
    slope = _sample(slopes, pos)
    return np.asarray(sampled[..., :2] + slope * (l_frame - sampled[..., 2])[..., None], dtype=np.float32)


def compose_full(
    chains: Sequence[tuple[F32, F32, F32]],
    conf_work: F32,
    fill_full: F32,
) -> F32:
    """Final full-resolution ab: chain colours where propagation is confident, ``fill_full`` elsewhere.

    ``chains``: per chain ``(ab_full (H, W, 2), confidence (h, w), blend weight (h, w))``; ``conf_work`` the combined
    confidence ``(h, w)``. Chain colours are sampled from the keyframe at full resolution and are not filtered
    again: every resampling blurs, so edge-aware refinement is kept for the low-confidence part (``fill_full``).
    """
    size = fill_full.shape
    if not chains:
        return fill_full
    c = resize_to(conf_work, size)[..., None]
    if len(chains) == 1:
        return np.asarray(c * (chains[0][0] - fill_full) + fill_full, dtype=np.float32)
    num = np.zeros(size, dtype=np.float32)
    wsum = np.zeros(size[:2], dtype=np.float32)
    for ab, _conf, weight in chains:
        wf = resize_to(weight, size)
        num += wf[..., None] * ab
        wsum += wf
    ab_p = num / np.maximum(wsum, 1e-6)[..., None]
    return np.asarray(c * ab_p + (1.0 - c) * fill_full, dtype=np.float32)
