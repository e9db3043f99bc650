"""Propagation of a keyframe's colours along a shot with dense optical flow (the ``propagate`` transfer mode).

Everything here works at a *working resolution* (longer side ``max_side``, e.g. 480 px): flow, chains and blending;
the final ab is brought to full size by a fast guided filter on the full-resolution L*.

A **chain** carries one keyframe in one direction (forward from the previous keyframe, backward from the next). Its
state at frame ``n`` is not a colour image but, per pixel, the position in the keyframe that the pixel came from
(``pos``) and how far that correspondence can be trusted (``valid``). One step from frame ``m`` to its neighbour
``n``::

    pos_n   = pos_m   sampled at x + flow_{n->m}(x)
    valid_n = valid_m sampled there * ramp(fb_conf(x))

with ``fb_conf`` the forward-backward consistency of the pair (Sundaram et al. 2010; 0 for occluded, disoccluded and
out-of-frame pixels, :func:`chromaflow.core.flow.forward_backward_confidence`) and ``ramp`` a soft threshold.
Composing positions (smooth fields) rather than re-warping colours each step keeps colours sharp: ab is sampled
once, from the keyframe, however long the chain. A chain stops at a scene cut (the caller decides that).

The colour of a chain at frame ``n`` is the keyframe's ab at ``pos_n``, and its confidence

    conf = valid_n * exp(-D / (2 * photo_sigma^2)) * decay^distance

where ``D`` is the local mean of the squared L* difference between frame ``n`` and the keyframe at ``pos_n``
(photometric check against the keyframe itself, so errors do not accumulate unseen).

**Blend** (:func:`blend`): chains are averaged with their confidences as weights; the combined confidence is
``1 - prod(1 - conf)``. Where it is low, colour is filled from confident neighbours (normalised Gaussian
convolution) and, where there are none, from a fallback ab (global transfer from the nearest keyframe, or the
automatic colorizer), weighted by ``fallback_weight``. Then the guided filter on the frame's L* (:mod:`.guided`)
snaps colour to the frame's edges, so colour does not bleed across them.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.typing import NDArray

from chromaflow.core.bilateral_fill import cascade_fill
from chromaflow.core.errors import UsageError
from chromaflow.core.flow import FB_ALPHA, FB_SIGMA, FlowPreset, forward_backward_confidence
from chromaflow.core.guided import box, guided_filter, guided_upsample

F32 = NDArray[np.float32]


@dataclass(frozen=True)
class PropagationParams:
    """Tuning of propagation (defaults tuned on DAVIS-2016 dev, ``benchmarks/transfer.py``)."""

    max_side: int = 480  # working resolution: longer side in pixels
    flow_preset: FlowPreset = "medium"
    fb_sigma: float = FB_SIGMA
    fb_alpha: float = FB_ALPHA
    step_low: float = 0.1  # fb confidence at or below which a step breaks the chain
    step_high: float = 0.4  # fb confidence at or above which a step keeps the chain fully
    decay: float = 0.99  # confidence kept per frame of distance from the keyframe
    blend_decay: float = 0.85  # relative weight per frame of distance when two chains are blended
    photo_sigma: float = 8.0  # L* units: tolerated difference from the keyframe's lightness
    photo_radius: int = 2  # window (working px) of the photometric check
    fill_sigma: float = 12.0  # working px: reach of the fill from confident neighbours
    fallback_weight: float = 0.05  # weight of the fallback ab against the neighbours' support
    fill: str = "grid"  # "grid": luma-guided bilateral-grid fill; "gauss": spatial fill + guided filter
    grid_sigma_s: float = 8.0  # working px: fine grid cell
    grid_sigma_l: float = 6.0  # L* units: fine grid cell
    grid_prior: float = 2.0  # confident weight (pixels) below which a coarser estimate takes over
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
        if self.max_distance < 1:
            raise UsageError(f"max_distance must be >= 1, got {self.max_distance}")


@dataclass(frozen=True)
class ChainState:
    """One chain at one frame: keyframe, distance in frames, source positions ``(h, w, 2)``, validity ``(h, w)``."""

    key: int
    distance: int
    pos: F32
    valid: F32


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


def start_chain(key: int, size: tuple[int, int]) -> ChainState:
    """The state of a chain at its keyframe: every pixel maps to itself, fully valid."""
    return ChainState(key, 0, identity_positions(size), np.ones(size, dtype=np.float32))


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
    return ChainState(state.key, state.distance + 1, np.ascontiguousarray(sampled[..., :2]), valid)


def chain_colour(state: ChainState, key: KeyData, l_work: F32, params: PropagationParams) -> tuple[F32, F32]:
    """``(ab (h, w, 2), confidence (h, w))`` that a chain gives the frame whose L* is ``l_work``."""
    packed = np.concatenate((key.ab_work, key.l_work[..., None]), axis=-1)
    sampled = _sample(packed, state.pos)
    diff = (sampled[..., 2] - l_work) ** 2
    photo = np.exp(-box(diff, params.photo_radius) / (2.0 * params.photo_sigma**2))
    conf = state.valid * photo * np.float32(params.decay**state.distance)
    return np.ascontiguousarray(sampled[..., :2]), np.asarray(conf, dtype=np.float32)


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
    num = np.zeros(size, dtype=np.float32)
    wsum = np.zeros(size[:2], dtype=np.float32)
    for ab, _conf, weight in chains:
        wf = resize_to(weight, size)
        num += wf[..., None] * ab
        wsum += wf
    ab_p = num / np.maximum(wsum, 1e-6)[..., None]
    c = resize_to(conf_work, size)[..., None]
    return np.asarray(c * ab_p + (1.0 - c) * fill_full, dtype=np.float32)
