"""Dense optical flow helpers shared by temporal smoothing and keyframe transfer.

Convention (used by every function here and by their callers): a flow is an ``(H, W, 2)`` float32 array that
maps pixels of the *destination* frame to positions in the *source* frame::

    flow = compute_flow(src, dst)
    dst(y, x)  ~  src(y + flow[y, x, 1], x + flow[y, x, 0])

so ``warp(src_image, flow)`` resamples the source onto the destination's pixel grid (backward warping; no holes).
Channel 0 is the horizontal (x) displacement, channel 1 the vertical (y) one, both in pixels of the array the flow
belongs to. ``compute_flow(dst, src)`` (arguments swapped) gives the opposite flow, needed for the
forward-backward consistency check.

Flow is OpenCV's DIS (Kroeger et al., "Fast Optical Flow using Dense Inverse Search", ECCV 2016). DIS instances are
kept per thread (hosts such as VapourSynth request frames from several threads; an OpenCV DIS object is not safe to
share), and DIS is deterministic for a given input.
"""

import threading
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from chromaflow.core.errors import InputError, UsageError

FlowPreset = Literal["ultrafast", "fast", "medium"]
_PRESETS: dict[str, int] = {
    "ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
    "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
    "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM,
}
DEFAULT_PRESET: FlowPreset = "medium"

# Forward-backward consistency (Sundaram, Brox and Keutzer, ECCV 2010): a pixel is consistent when
# |w + w_back(x + w)|^2 is small relative to sigma^2 + alpha * (|w|^2 + |w_back|^2).
FB_SIGMA = 1.0
FB_ALPHA = 0.05

_local = threading.local()

Array = NDArray[np.float32]


def thread_dis(preset: str, shape: tuple[int, int], purpose: str = "flow") -> cv2.DISOpticalFlow:
    """This thread's DIS instance for ``preset`` (a :data:`FlowPreset`, or ``fine``: medium refined down to full
    resolution) and frame ``shape``, one set per ``purpose``.

    OpenCV DIS objects are not thread-safe, and one that has seen frames of another size gives slightly different
    flow (measured here: up to 11 ab units of downstream colour difference), which would make results depend on
    what a thread computed before: hence one instance per thread, purpose and frame size.
    """
    cache: dict[tuple[str, str, tuple[int, int]], cv2.DISOpticalFlow] | None = getattr(_local, "dis", None)
    if cache is None:
        cache = {}
        _local.dis = cache
    key = (purpose, preset, shape)
    if key not in cache:
        if preset == "fine":
            dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
            dis.setFinestScale(0)
        elif preset in _PRESETS:
            dis = cv2.DISOpticalFlow.create(_PRESETS[preset])
        else:
            raise UsageError(f"unknown flow preset {preset!r}; use one of {', '.join(_PRESETS)} or fine")
        if len(cache) >= 8:  # a long-lived thread that met many sizes: start over
            cache.clear()
        cache[key] = dis
    return cache[key]


def to_flow_luma(luma: NDArray[np.generic]) -> NDArray[np.uint8]:
    """An ``(H, W)`` luma plane as the uint8 image DIS needs.

    uint8 input is used as is; floating-point input is taken as CIE L* in [0, 100] and scaled to [0, 255].
    """
    arr = np.asarray(luma)
    if arr.ndim != 2:
        raise InputError(f"expected a single luma plane of shape (H, W), got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"luma must be uint8 or float L* in [0, 100], got dtype {arr.dtype}")
    return np.clip(arr * (255.0 / 100.0) + 0.5, 0, 255).astype(np.uint8)


def compute_flow(
    src_luma: NDArray[np.generic], dst_luma: NDArray[np.generic], preset: FlowPreset = DEFAULT_PRESET
) -> Array:
    """Dense flow mapping ``dst`` pixels to ``src`` positions (see the module docstring), shape ``(H, W, 2)``."""
    src = to_flow_luma(src_luma)
    dst = to_flow_luma(dst_luma)
    if src.shape != dst.shape:
        raise InputError(f"flow needs two frames of the same size, got {src.shape} and {dst.shape}")
    if min(src.shape) < 8:
        raise InputError(f"frames of {src.shape[1]}x{src.shape[0]} are too small for optical flow (min 8x8)")
    # DIS calc(I0, I1) returns u with I0(x) ~ I1(x + u(x)): I0 is our destination, I1 our source.
    flow = thread_dis(preset, src.shape).calc(dst, src, None)  # type: ignore[call-overload]
    return np.ascontiguousarray(flow, dtype=np.float32)


def _remap_grid(flow: Array) -> tuple[Array, Array]:
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx + flow[..., 0], gy + flow[..., 1]


def _check_flow(flow: NDArray[np.generic]) -> Array:
    f = np.asarray(flow, dtype=np.float32)
    if f.ndim != 3 or f.shape[2] != 2:
        raise InputError(f"a flow must have shape (H, W, 2), got {f.shape}")
    return f


def warp(image: NDArray[np.generic], flow: NDArray[np.generic]) -> NDArray[np.float32]:
    """Backward-warp ``image`` (the flow's source frame; ``(H, W)`` or ``(H, W, C)``) onto the destination grid.

    Bilinear interpolation, replicated border. Returns float32 of the image's shape.
    """
    f = _check_flow(flow)
    img = np.asarray(image, dtype=np.float32)
    if img.shape[:2] != f.shape[:2]:
        raise InputError(f"image of shape {img.shape} does not match a flow of shape {f.shape}")
    map_x, map_y = _remap_grid(f)
    if img.ndim == 3 and img.shape[2] > 4:  # cv2.remap handles at most 4 channels at once
        planes = [
            cv2.remap(img[..., c], map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
            for c in range(img.shape[2])
        ]
        return np.stack(planes, axis=-1)
    out = cv2.remap(img, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return np.asarray(out, dtype=np.float32).reshape(img.shape)


def inside_mask(flow: NDArray[np.generic]) -> NDArray[np.bool_]:
    """True where ``x + flow`` lands inside the source frame (``0 <= x' <= W-1``, ``0 <= y' <= H-1``)."""
    f = _check_flow(flow)
    h, w = f.shape[:2]
    map_x, map_y = _remap_grid(f)
    return (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)


def forward_backward_error(flow: NDArray[np.generic], flow_back: NDArray[np.generic]) -> Array:
    """Squared forward-backward mismatch ``|flow(x) + flow_back(x + flow(x))|^2`` per destination pixel.

    ``flow`` maps destination to source (``compute_flow(src, dst)``), ``flow_back`` maps source to destination
    (``compute_flow(dst, src)``). Both in pixels; the result is in pixels squared.
    """
    f = _check_flow(flow)
    b = warp(_check_flow(flow_back), f)
    return np.sum((f + b) ** 2, axis=-1).astype(np.float32)


def forward_backward_confidence(
    flow: NDArray[np.generic],
    flow_back: NDArray[np.generic],
    sigma: float = FB_SIGMA,
    alpha: float = FB_ALPHA,
) -> Array:
    """Per-pixel confidence in [0, 1] that ``flow`` is right, from forward-backward consistency.

    ``conf = exp(-e / (sigma^2 + alpha * (|w|^2 + |w_back|^2)))`` with ``e`` the squared mismatch of
    :func:`forward_backward_error`; pixels whose source position falls outside the frame get 0. Occluded and
    disoccluded pixels have inconsistent flows and so a low confidence (Sundaram et al., ECCV 2010, use the hard
    test ``e > alpha * (...) + sigma^2``; :func:`occlusion_mask` gives that form).
    """
    f = _check_flow(flow)
    b = warp(_check_flow(flow_back), f)
    err = np.sum((f + b) ** 2, axis=-1)
    mag = np.sum(f**2, axis=-1) + np.sum(b**2, axis=-1)
    conf = np.exp(-err / (sigma * sigma + alpha * mag))
    conf[~inside_mask(f)] = 0.0
    return conf.astype(np.float32)


def occlusion_mask(
    flow: NDArray[np.generic],
    flow_back: NDArray[np.generic],
    sigma: float = FB_SIGMA,
    alpha: float = FB_ALPHA,
) -> NDArray[np.bool_]:
    """True where a destination pixel has no reliable source (occluded, disoccluded or outside the frame)."""
    return forward_backward_confidence(flow, flow_back, sigma, alpha) < np.exp(-1.0)


# ---------------------------------------------------------------------------------------------- resolution


def resize_flow(flow: NDArray[np.generic], size: tuple[int, int]) -> Array:
    """Resample a flow to ``size = (height, width)`` and rescale its vectors to the new pixel units."""
    f = _check_flow(flow)
    h, w = f.shape[:2]
    out_h, out_w = size
    if out_h < 1 or out_w < 1:
        raise InputError(f"cannot resize a flow to {out_w}x{out_h}")
    interp = cv2.INTER_AREA if out_h * out_w < h * w else cv2.INTER_LINEAR
    out = cv2.resize(f, (out_w, out_h), interpolation=interp)
    out[..., 0] *= out_w / w
    out[..., 1] *= out_h / h
    return np.ascontiguousarray(out, dtype=np.float32)


def working_size(size: tuple[int, int], max_side: int) -> tuple[int, int]:
    """``(height, width)`` scaled down (never up) so the longer side is at most ``max_side``."""
    h, w = size
    scale = min(1.0, max_side / max(h, w))
    return max(8, round(h * scale)), max(8, round(w * scale))


def resize_luma(luma: NDArray[np.generic], size: tuple[int, int]) -> NDArray[np.generic]:
    """A luma plane resized to ``size = (height, width)`` (area averaging when shrinking)."""
    arr = np.asarray(luma)
    if arr.shape[:2] == tuple(size):
        return arr
    interp = cv2.INTER_AREA if size[0] * size[1] < arr.shape[0] * arr.shape[1] else cv2.INTER_LINEAR
    src = arr.astype(np.float32) if arr.dtype not in (np.uint8, np.float32) else arr
    return cv2.resize(src, (size[1], size[0]), interpolation=interp)


def compute_flow_scaled(
    src_luma: NDArray[np.generic],
    dst_luma: NDArray[np.generic],
    max_side: int = 512,
    preset: FlowPreset = DEFAULT_PRESET,
    full_size: bool = True,
) -> Array:
    """:func:`compute_flow` at a working resolution (longer side ``max_side``), for speed on large frames.

    Returns the flow at the input's size (vectors rescaled) unless ``full_size`` is false.
    """
    src = np.asarray(src_luma)
    size = src.shape[:2]
    work = working_size((int(size[0]), int(size[1])), max_side)
    flow = compute_flow(resize_luma(src, work), resize_luma(np.asarray(dst_luma), work), preset)
    return resize_flow(flow, (int(size[0]), int(size[1]))) if full_size and work != size else flow
