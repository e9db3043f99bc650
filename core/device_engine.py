"""Device-resident automatic colorization of Y'CbCr frames: code values in, chroma code values out.

The throughput path for frames that need no temporal context (automatic colour, no keyframes, no smoothing). Every
per-frame step runs on the colorizer's device, so on a GPU only the 8-16 bit Y' planes go up and the chroma planes
come down:

1. Y' codes -> L* through a table of the format's code values (:func:`~chromaflow.core.colorizer.ycbcr_lightness`);
2. L* -> the working resolution (longer side ``params.max_side``, area averaging, as the CPU video engine does);
3. the net at its input size (:meth:`Colorizer.predict_ab`, batched, reduced precision and channels-last on CUDA;
   from a larger shrink of the frame where the working copy is shorter than the net's side, then shrunk back,
   :func:`~chromaflow.core.colorizer.model_work_size`, as the video engine does);
4. edge-aware upsampling of ab to full resolution: the fast guided filter of :mod:`chromaflow.core.transfer.guided`,
   written on torch (box means with the same reflected borders as ``cv2.BORDER_REFLECT``);
5. the in-gamut join and the conversion to subsampled, quantized chroma
   (:func:`~chromaflow.core.colorizer.ycbcr_chroma`).

It follows the CPU video engine (:class:`~chromaflow.core.video.VideoColorizer` with ``smooth_radius=0``) step for
step; the two differ only by float rounding (chroma code values within one step).

:class:`PlaneTransfer` moves planes between host and device: pinned host buffers, non-blocking copies on a copy
stream that overlaps the compute stream's work. :class:`DeviceColorizerStream` batches frames and keeps one batch in
flight, so the GPU colours batch k while the host decodes and encodes around it.
"""

from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from chromaflow.core.colorizer import Colorizer, model_work_size, ycbcr_chroma, ycbcr_lightness
from chromaflow.core.colour import Siting, YCbCrFormat
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.flow import working_size
from chromaflow.core.hints import Hint
from chromaflow.core.options import ColorizeOptions
from chromaflow.core.transfer import PropagationParams

# --------------------------------------------------------------------------------------------- resizing


@lru_cache(maxsize=32)
def area_matrix(n_out: int, n_in: int) -> Tensor:
    """``(n_out, n_in)`` weights of a pixel-area shrink: each output pixel averages the input it covers, partial
    pixels weighted by their covered fraction (what ``cv2.INTER_AREA`` computes when shrinking). float64, CPU."""
    scale = n_in / n_out
    edges = torch.arange(n_out + 1, dtype=torch.float64) * scale
    left, right = edges[:-1, None], edges[1:, None]
    x = torch.arange(n_in, dtype=torch.float64)[None, :]
    overlap = (torch.minimum(right, x + 1) - torch.maximum(left, x)).clamp(min=0)
    return overlap / scale


def area_shrink(x: Tensor, size: tuple[int, int]) -> Tensor:
    """``(N, C, H, W)`` shrunk to ``size`` by pixel-area averaging (two small matrix products)."""
    h, w = x.shape[-2:]
    if (h, w) == tuple(size):
        return x
    mh = area_matrix(size[0], int(h)).to(x.device, x.dtype)
    mw = area_matrix(size[1], int(w)).to(x.device, x.dtype)
    return mh @ x @ mw.T


# --------------------------------------------------------------------------------------------- guided filter


def _reflect_indices(n: int, radius: int, device: torch.device) -> Tensor:
    """Source indices of ``n + 2 * radius`` samples padded by mirroring with the edge repeated (``cba|abc|cba``)."""
    i = torch.arange(-radius, n + radius, device=device) % (2 * n)
    return torch.where(i >= n, 2 * n - 1 - i, i)


def box_mean(x: Tensor, radius: int) -> Tensor:
    """Mean over ``(2r+1) x (2r+1)`` windows of ``(N, C, H, W)``, borders mirrored like ``cv2.BORDER_REFLECT``."""
    if radius <= 0:
        return x
    k = 2 * radius + 1
    h, w = x.shape[-2:]
    x = x.index_select(-1, _reflect_indices(w, radius, x.device))
    x = F.avg_pool2d(x, (1, k), stride=1)
    x = x.index_select(-2, _reflect_indices(h, radius, x.device))
    return F.avg_pool2d(x, (k, 1), stride=1)


def guided_upsample(
    guide_small: Tensor, src_small: Tensor, guide_full: Tensor, radius: int, eps: float
) -> Tensor:
    """Fast guided filter on tensors: ``src_small`` ``(N, C, h, w)`` refined on ``guide_small`` ``(N, 1, h, w)``
    and brought to ``guide_full``'s ``(N, 1, H, W)`` size (coefficients upsampled bilinearly)."""
    mean_i = box_mean(guide_small, radius)
    mean_p = box_mean(src_small, radius)
    var_i = box_mean(guide_small * guide_small, radius) - mean_i * mean_i
    cov_ip = box_mean(guide_small * src_small, radius) - mean_i * mean_p
    a = cov_ip / (var_i.clamp_min(0.0) + eps)
    b = mean_p - a * mean_i
    coeffs = torch.cat((box_mean(a, radius), box_mean(b, radius)), dim=1)
    size = tuple(guide_full.shape[-2:])
    if tuple(coeffs.shape[-2:]) != size:
        coeffs = F.interpolate(coeffs, size, mode="bilinear", align_corners=False)
    a_full, b_full = coeffs.chunk(2, dim=1)
    return a_full * guide_full + b_full


# --------------------------------------------------------------------------------------------- the engine


@dataclass(frozen=True)
class ChromaLayout:
    """How the output chroma is laid out: the Y'CbCr format, subsampling ``(vertical, horizontal)`` and siting."""

    fmt: YCbCrFormat
    factors: tuple[int, int] = (1, 1)
    siting: Siting = "left"

    @property
    def dtype(self) -> torch.dtype:
        """The code values' storage type on the host."""
        if self.fmt.bits is None:
            return torch.float32
        return torch.uint8 if self.fmt.bits <= 8 else torch.uint16


class DeviceColorizer:
    """Chroma code values for batches of Y' planes, every step on ``colorizer``'s device (module docstring)."""

    def __init__(
        self,
        colorizer: Colorizer,
        params: PropagationParams | None = None,
        hints: Sequence[Hint] = (),
    ) -> None:
        if hints and not colorizer.accepts_hints:
            raise UsageError(f"model {colorizer.name} does not take colour hints; use siggraph17 or base")
        self.colorizer = colorizer
        self.params = params or PropagationParams()
        self.hints = tuple(hints)
        self.device = colorizer.placement.device

    @torch.inference_mode()
    def ab(self, l_full: Tensor) -> Tensor:
        """Full-resolution ab ``(N, 2, H, W)`` (float32, on the device) for L* ``(N, 1, H, W)``."""
        l_full = l_full.to(device=self.device, dtype=torch.float32)
        height, width = l_full.shape[-2:]
        work = working_size((int(height), int(width)), self.params.max_side)
        l_work = area_shrink(l_full, work)
        extra: dict[str, Any] = (
            {"hints": list(self.hints), "hint_size": (height, width)} if self.hints else {}
        )
        model = model_work_size((int(height), int(width)), work, self.colorizer.side)  # as the video engine
        if model == work:
            ab_work = self.colorizer.predict_ab(l_work, **extra)
        else:
            ab_work = area_shrink(self.colorizer.predict_ab(area_shrink(l_full, model), **extra), work)
        if self.params.guided_radius <= 0:
            if tuple(ab_work.shape[-2:]) == (height, width):
                return ab_work
            return F.interpolate(ab_work, (height, width), mode="bilinear", align_corners=False)
        return guided_upsample(l_work, ab_work, l_full, self.params.guided_radius, self.params.guided_eps)

    @torch.inference_mode()
    def chroma(self, y: Tensor, layout: ChromaLayout) -> Tensor:
        """Chroma code values ``(N, 2, h, w)`` on the device for Y' code values ``(N, H, W)`` (any device)."""
        if y.dim() != 3:
            raise InputError(f"expected Y' planes shaped (N, H, W), got {tuple(y.shape)}")
        l_full = ycbcr_lightness(y.to(self.device, non_blocking=True), layout.fmt)[:, None]
        return ycbcr_chroma(l_full, self.ab(l_full), layout.fmt, layout.factors, layout.siting)


# --------------------------------------------------------------------------------------------- host <-> device


class PendingPlanes:
    """Planes on their way to the host; :meth:`result` waits for the copy and returns them."""

    def __init__(self, host: Tensor, event: Any) -> None:
        self._host = host
        self._event = event

    def result(self) -> np.ndarray:
        if self._event is not None:
            self._event.synchronize()
        return self._host.numpy()


class PlaneTransfer:
    """Host <-> device copies of planes: pinned buffers and a copy stream on CUDA, plain views on the CPU."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.cuda = device.type == "cuda"
        self._copy_stream = torch.cuda.Stream(device) if self.cuda else None

    def upload(self, planes: Sequence[np.ndarray]) -> Tensor:
        """``(N, H, W)`` on the device from N host planes of one shape and dtype (integer code values stay so)."""
        if not planes:
            raise InputError("no planes to upload")
        first = planes[0]
        if any(p.shape != first.shape or p.dtype != first.dtype for p in planes):
            raise InputError("planes of one batch must share shape and sample type")
        if not self.cuda:
            return torch.from_numpy(np.stack(planes))
        dtype = torch.from_numpy(np.empty(0, dtype=first.dtype)).dtype
        staging = torch.empty((len(planes), *first.shape), dtype=dtype, pin_memory=True)
        view = staging.numpy()
        for i, plane in enumerate(planes):
            view[i] = plane
        assert self._copy_stream is not None
        with torch.cuda.stream(self._copy_stream):
            on_device = staging.to(self.device, non_blocking=True)
        torch.cuda.current_stream(self.device).wait_stream(self._copy_stream)
        on_device.record_stream(torch.cuda.current_stream(self.device))
        return on_device

    def download(self, planes: Tensor) -> PendingPlanes:
        """Start copying device planes to pinned host memory; the returned handle waits for them."""
        if not self.cuda:
            return PendingPlanes(planes.cpu(), None)
        host = torch.empty(planes.shape, dtype=planes.dtype, pin_memory=True)
        host.copy_(planes, non_blocking=True)
        event = torch.cuda.Event()
        event.record(torch.cuda.current_stream(self.device))
        return PendingPlanes(host, event)


def _host_codes(codes: Tensor, layout: ChromaLayout) -> Tensor:
    return codes if layout.fmt.bits is None else codes.to(layout.dtype)


class DeviceColorizerStream:
    """Push Y' planes, get chroma planes back in order; one batch computes while the next one fills.

    ``push(index, y_plane)`` returns the ``(index, chroma (2, h, w))`` pairs that became ready; ``flush()`` the
    rest. A frame comes back at most ``2 * batch_size - 1`` pushes after it went in (:attr:`lookahead`).
    """

    def __init__(self, engine: DeviceColorizer, layout: ChromaLayout, batch_size: int = 8) -> None:
        if batch_size < 1:
            raise UsageError(f"batch size must be at least 1, got {batch_size}")
        self.engine = engine
        self.layout = layout
        self.batch_size = batch_size
        self.transfer = PlaneTransfer(engine.device)
        self._filling: list[tuple[int, np.ndarray]] = []
        self._in_flight: deque[tuple[list[int], PendingPlanes]] = deque()

    @property
    def lookahead(self) -> int:
        return 2 * self.batch_size - 1

    def push(self, index: int, y_plane: np.ndarray) -> list[tuple[int, np.ndarray]]:
        self._filling.append((index, y_plane))
        if len(self._filling) < self.batch_size:
            return []
        self._submit()
        return self._collect(keep=1)

    def flush(self) -> list[tuple[int, np.ndarray]]:
        if self._filling:
            self._submit()
        return self._collect(keep=0)

    def _submit(self) -> None:
        indices = [i for i, _ in self._filling]
        y = self.transfer.upload([p for _, p in self._filling])
        self._filling = []
        codes = _host_codes(self.engine.chroma(y, self.layout), self.layout)
        self._in_flight.append((indices, self.transfer.download(codes)))

    def _collect(self, keep: int) -> list[tuple[int, np.ndarray]]:
        ready: list[tuple[int, np.ndarray]] = []
        while len(self._in_flight) > keep:
            indices, pending = self._in_flight.popleft()
            planes = pending.result()
            ready.extend(zip(indices, planes, strict=True))
        return ready


# --------------------------------------------------------------------------------------------- choice


def device_engine_for(
    options: ColorizeOptions,
    colorizer: Colorizer | None,
    references: Mapping[int, Any] | None,
    hints: Sequence[Hint] | Mapping[int, Sequence[Hint]] | None,
) -> DeviceColorizer | None:
    """The device-resident engine for a host's colorize run, or None for the temporal video engine.

    ``options.engine``: ``video``; ``device`` (a UsageError says why when the run needs the video engine);
    ``auto`` (the device engine where it applies and ``colorizer`` is on CUDA: on the CPU the two are about as
    fast). Of the other options it honours ``params`` (working size, guided filter) and, through the host, the
    batch size and scene-cut settings; the transfer mode, propagation tuning and smoothing strength matter only
    with references or smoothing, which need the video engine.
    """
    engine = options.engine
    if engine == "video":
        return None
    why_not = None
    if not isinstance(colorizer, Colorizer):
        why_not = "it needs a colour model"
    elif references:
        why_not = "reference keyframes need the video engine"
    elif options.smooth:
        why_not = "temporal smoothing needs the video engine (use smooth=0)"
    elif isinstance(hints, Mapping):
        why_not = "per-frame hints need the video engine"
    if why_not is not None:
        if engine == "device":
            raise UsageError(f"the device engine cannot run this: {why_not}")
        return None
    assert isinstance(colorizer, Colorizer) and not isinstance(hints, Mapping)
    if engine == "auto" and colorizer.placement.device.type != "cuda":
        return None
    return DeviceColorizer(colorizer, options.params, tuple(hints or ()))
