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
share), and DIS is deterministic for a given input. Frames of any size work: DIS itself refuses a frame whose
sides are under 12 px and, for thin frames (64x8, 100x12), picks its pyramid from the width alone and reads outside
the picture (a crash), so :func:`dis_flow` pads such frames (edge pixels repeated) to a size DIS handles and crops
the flow back.
"""

import math
import threading
from typing import Literal

import cv2
import numpy as np
from numpy.typing import NDArray

from chromaflow.core.arrays import F32
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


def thread_dis(preset: str, shape: tuple[int, int], purpose: str = "flow") -> cv2.DISOpticalFlow:
    """This thread's DIS instance for ``preset`` (a :data:`FlowPreset`, or ``fine``: medium refined down to full
    resolution) and frame ``shape``, one set per ``purpose``.

    OpenCV DIS objects are not thread-safe, and one that has seen frames of another size gives slightly different
    flow (enough to change the colours downstream; ``tests/core/test_flow.py`` checks ours does not), which would make
    results depend on what a thread computed before: hence one instance per thread, purpose and frame size.
    """
    cache: dict[tuple[str, str, tuple[int, int]], cv2.DISOpticalFlow] | None = getattr(_local, "dis", None)
    if cache is None:
        cache = {}
        _local.dis = cache
    key = (purpose, preset, shape)
    if key not in cache:
        dis = _new_dis(preset)
        if len(cache) >= 8:  # a long-lived thread that met many sizes: start over
            cache.clear()
        cache[key] = dis
    return cache[key]


def _new_dis(preset: str) -> cv2.DISOpticalFlow:
    if preset == "fine":
        dis = cv2.DISOpticalFlow.create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        dis.setFinestScale(0)
        return dis
    if preset in _PRESETS:
        return cv2.DISOpticalFlow.create(_PRESETS[preset])
    raise UsageError(f"unknown flow preset {preset!r}; use one of {', '.join(_PRESETS)} or fine")


_PARAMS: dict[str, tuple[int, int]] = {}


def _dis_params(preset: str) -> tuple[int, int]:
    """``(patch size, finest scale)`` a fresh DIS instance of ``preset`` starts with (a calc may change them)."""
    if preset not in _PARAMS:
        probe = _new_dis(preset)
        _PARAMS[preset] = (int(probe.getPatchSize()), int(probe.getFinestScale()))
    return _PARAMS[preset]


def _dis_handles(height: int, width: int, patch: int, finest: int) -> bool:
    """Whether DIS computes flow for a ``height`` x ``width`` frame without leaving its pyramid.

    Mirrors OpenCV's ``DISOpticalFlowImpl::calc`` (4.x): the coarsest scale is the smaller of a movement bound from
    the longer side and the deepest level whose shorter side still holds a patch; under 0 DIS refuses the frame, and
    under the finest scale it re-picks its scales from the width alone, which is safe only while every pyramid level
    it then uses keeps both sides at least one patch wide (8 px).
    """
    longer, shorter = max(height, width), min(height, width)
    if shorter < patch:
        return False
    coarsest = min(
        int(math.log(longer / (4.0 * patch)) / math.log(2.0) + 0.5),  # C truncation, as OpenCV
        int(math.log(shorter // patch) / math.log(2.0)),
    )
    if coarsest < 0:
        return False
    if coarsest >= finest:
        return True
    rescaled = max(0, math.floor(math.log2(2.0 * width / (5.0 * 8))))
    return (height >> rescaled) >= 8 and (width >> rescaled) >= 8


def dis_shape(shape: tuple[int, int], preset: str) -> tuple[int, int]:
    """The smallest ``(height, width)``, at least ``shape``, that DIS with ``preset`` handles (``shape`` itself
    for any ordinary frame size)."""
    patch, finest = _dis_params(preset)
    h, w = max(1, int(shape[0])), max(1, int(shape[1]))
    while not _dis_handles(h, w, patch, finest):
        if h <= w:
            h += 1
        else:
            w += 1
    return h, w


def _pad(image: NDArray[np.generic], shape: tuple[int, int]) -> NDArray[np.generic]:
    """``image`` grown at the bottom and right to ``shape`` by repeating its edge pixels."""
    bottom, right = shape[0] - image.shape[0], shape[1] - image.shape[1]
    if bottom == 0 and right == 0:
        return image
    return np.pad(image, ((0, bottom), (0, right)) + ((0, 0),) * (image.ndim - 2), mode="edge")


def dis_flow(
    preset: str,
    i0: NDArray[np.uint8],
    i1: NDArray[np.uint8],
    initial: NDArray[np.float32] | None = None,
    purpose: str = "flow",
) -> F32:
    """DIS ``calc(i0, i1)``: the flow ``u`` with ``i0(x) ~ i1(x + u(x))``, ``(H, W, 2)``, for frames of any size.

    ``initial``: a flow to start from (DIS refines it). Frames DIS cannot handle at their size (see
    :func:`dis_shape`) are padded with their edge pixels and the flow is cropped back, so a 2x2 or 64x6 frame gets
    a flow (near zero: there is little to track) instead of an OpenCV error or a crash.
    """
    if i0.shape != i1.shape or i0.ndim != 2:
        raise InputError(f"flow needs two luma planes of the same size, got {i0.shape} and {i1.shape}")
    if min(i0.shape) < 1:
        raise InputError(f"frames of {i0.shape[1]}x{i0.shape[0]} have no pixels to compute flow on")
    size = (int(i0.shape[0]), int(i0.shape[1]))
    work = dis_shape(size, preset)
    dis = thread_dis(preset, work, purpose)
    a, b = np.ascontiguousarray(_pad(i0, work)), np.ascontiguousarray(_pad(i1, work))
    start = None
    if initial is not None:
        start = np.array(_pad(initial, work), dtype=np.float32, order="C")  # a copy: DIS writes into it
    flow = dis.calc(a, b, start)  # type: ignore[arg-type]  # OpenCV takes None (no initial flow); its stubs do not
    return np.ascontiguousarray(flow[: size[0], : size[1]], dtype=np.float32)


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
) -> F32:
    """Dense flow mapping ``dst`` pixels to ``src`` positions (see the module docstring), shape ``(H, W, 2)``."""
    src = to_flow_luma(src_luma)
    dst = to_flow_luma(dst_luma)
    if src.shape != dst.shape:
        raise InputError(f"flow needs two frames of the same size, got {src.shape} and {dst.shape}")
    # DIS calc(I0, I1) returns u with I0(x) ~ I1(x + u(x)): I0 is our destination, I1 our source.
    return dis_flow(preset, dst, src)


def _remap_grid(flow: F32) -> tuple[F32, F32]:
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx + flow[..., 0], gy + flow[..., 1]


def _check_flow(flow: NDArray[np.generic]) -> F32:
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


def compose_flow(first: NDArray[np.generic], second: NDArray[np.generic]) -> F32:
    """The flow of two steps in one: ``first`` maps frame a's pixels into frame b, ``second`` b's into c; the
    result maps a's pixels into c (``first(x) + second(x + first(x))``, bilinear, replicated border).

    Lets a chain of consecutive flows stand for the flow between frames further apart (one DIS per frame pair
    instead of one per pair of frames in a window); where a link is wrong the forward-backward check of the
    composed flows sees it.
    """
    f = _check_flow(first)
    return np.ascontiguousarray(f + warp(_check_flow(second), f), dtype=np.float32)


def inside_mask(flow: NDArray[np.generic]) -> NDArray[np.bool_]:
    """True where ``x + flow`` lands inside the source frame (``0 <= x' <= W-1``, ``0 <= y' <= H-1``)."""
    f = _check_flow(flow)
    h, w = f.shape[:2]
    map_x, map_y = _remap_grid(f)
    return (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)


def forward_backward_error(flow: NDArray[np.generic], flow_back: NDArray[np.generic]) -> F32:
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
) -> F32:
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


def resize_flow(flow: NDArray[np.generic], size: tuple[int, int]) -> F32:
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
) -> F32:
    """:func:`compute_flow` at a working resolution (longer side ``max_side``), for speed on large frames.

    Returns the flow at the input's size (vectors rescaled) unless ``full_size`` is false.
    """
    src = np.asarray(src_luma)
    size = src.shape[:2]
    work = working_size((int(size[0]), int(size[1])), max_side)
    flow = compute_flow(resize_luma(src, work), resize_luma(np.asarray(dst_luma), work), preset)
    return resize_flow(flow, (int(size[0]), int(size[1]))) if full_size and work != size else flow
