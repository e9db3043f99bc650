"""The Colorizer: luma in, colour out, at any size.

Pipeline: image -> CIE L* at full resolution -> L* resized to the model's square input -> the net predicts ab ->
ab upsampled bilinearly to the original size -> joined with the original full-resolution L* -> sRGB. Where the
joined colour falls outside the sRGB gamut, its chroma is reduced (hue and L* kept) instead of clipping the RGB
channels, so the output's lightness is the input's lightness.

Every colour net follows one protocol (:class:`~chromaflow.core.nets.colour_net.ColorNet`); nets come from the model
registry (:func:`chromaflow.core.registry.load`). The Y'CbCr steps every host shares live in
:mod:`chromaflow.core.colour.ycbcr_join` and are re-exported here, where the hosts have always imported them.
"""

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chromaflow.core import registry
from chromaflow.core.colour import Siting, YCbCrFormat, lightness
from chromaflow.core.colour.ycbcr_join import (
    eager_join_chroma,
    join_in_gamut,
    ycbcr_chroma,
    ycbcr_lab,
    ycbcr_lightness,
)
from chromaflow.core.device import Placement
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.hints import Hint, hint_tensors
from chromaflow.core.nets.colour_net import ColorNet
from chromaflow.core.options import check_model_size

__all__ = [
    "ColorNet",
    "Colorizer",
    "colorize_bgr",
    "eager_join_chroma",
    "join_in_gamut",
    "load_net",
    "ycbcr_chroma",
    "ycbcr_lab",
    "ycbcr_lightness",
]


def load_net(model: str | Path | nn.Module, arch: str | None = None) -> nn.Module:
    """A colour net from a registry name, a ``.pt``/``.pth`` state_dict file (with ``arch``), or a module."""
    if isinstance(model, nn.Module):
        return model
    return registry.load(model, arch, kind="colorizer")


# ------------------------------------------------------------------------------------------ image samples


def _luma_of(rgb: Tensor) -> Tensor:
    """L* of ``(N, 1|3, H, W)`` R'G'B' (one channel means a gray image, R' = G' = B')."""
    if rgb.shape[1] == 1:
        rgb = rgb.expand(-1, 3, -1, -1)
    return lightness(rgb)


SampleType = type[np.uint8] | type[np.uint16] | type[np.float32]


def _to_unit_float(array: np.ndarray) -> tuple[Tensor, SampleType]:
    """A numpy image's samples as float32 in [0, 1], and the dtype to give back."""
    if array.dtype == np.uint8:
        return torch.from_numpy(array.astype(np.float32) / 255.0), np.uint8
    if array.dtype == np.uint16:
        return torch.from_numpy(array.astype(np.float32) / 65535.0), np.uint16
    if np.issubdtype(array.dtype, np.floating):
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)), np.float32
    raise InputError(f"unsupported image sample type {array.dtype}: use uint8, uint16 or float in [0, 1]")


def _from_unit_float(x: np.ndarray, dtype: SampleType) -> np.ndarray:
    if dtype == np.uint8:
        return np.round(np.clip(x, 0, 1) * 255.0).astype(np.uint8)
    if dtype == np.uint16:
        return np.round(np.clip(x, 0, 1) * 65535.0).astype(np.uint16)
    return x.astype(np.float32)


# --------------------------------------------------------------------------------------------- Colorizer


class Colorizer:
    """Colorizes images and frames with one colour net.

    ``model``: a registry name (``"base"``, ``"siggraph17"``, ``"eccv16"``), a ``.pt`` state_dict path (with
    ``arch``), or an ``nn.Module`` following :class:`ColorNet`. ``size``: the square side the luma is resized to
    (a multiple of 8; 256 is what the Zhang nets were trained at). ``batch_size`` bounds how many images go through
    the net at once.
    """

    def __init__(
        self,
        model: str | Path | nn.Module = "base",
        device: str | torch.device | None = None,
        precision: str | None = None,
        size: int = 256,
        arch: str | None = None,
        batch_size: int = 8,
    ) -> None:
        check_model_size(size)
        if batch_size < 1:
            raise UsageError("batch size must be at least 1")
        self.placement = Placement.resolve(device, precision)
        self.size = size
        self.batch_size = batch_size
        self.name = str(model) if not isinstance(model, nn.Module) else type(model).__name__
        net = load_net(model, arch)
        # channels-last lets cuDNN pick its tensor-core convolutions; on the CPU the default layout is as fast
        self.memory_format = (
            torch.channels_last if self.placement.device.type == "cuda" else torch.contiguous_format
        )
        net = net.to(device=self.placement.device, dtype=self.placement.dtype)
        self.net = net.to(memory_format=self.memory_format).eval()
        self.accepts_hints = isinstance(net, ColorNet) and net.accepts_hints

    # ----------------------------------------------------------------------------- the core step

    def _check_hints(self, hints: Sequence[Hint] | None) -> Sequence[Hint]:
        if hints and not self.accepts_hints:
            raise UsageError(
                f"model {self.name} does not take colour hints; use a hint-aware model (siggraph17 or base)"
            )
        return hints or ()

    @torch.inference_mode()
    def predict_ab(
        self, l: Tensor, hints: Sequence[Hint] | None = None, hint_size: tuple[int, int] | None = None
    ) -> Tensor:
        """ab ``(N, 2, H, W)`` (float32, on the compute device) for L* ``(N, 1, H, W)``.

        ``hints`` are in pixels of a ``hint_size`` ``(height, width)`` frame (default: ``l``'s own size), so a
        caller working on a reduced copy of a frame passes the full frame's size and its hints unchanged.
        """
        hints = self._check_hints(hints)
        dev, dtype = self.placement.device, self.placement.dtype
        n, _, height, width = l.shape
        l = l.to(device=dev, dtype=torch.float32)
        side = (self.size, self.size)
        small = l if (height, width) == side else F.interpolate(l, side, mode="bilinear", antialias=True)
        ab_hint, mask = hint_tensors(hints, hint_size or (height, width), side, device=dev, dtype=dtype)
        outputs = []
        for start in range(0, n, self.batch_size):
            chunk = (
                small[start : start + self.batch_size].to(dtype).contiguous(memory_format=self.memory_format)
            )
            k = chunk.shape[0]
            ab = self.net(chunk, ab_hint.expand(k, -1, -1, -1), mask.expand(k, -1, -1, -1))
            outputs.append(ab.float())
        ab_small = torch.cat(outputs)
        if tuple(ab_small.shape[-2:]) == (height, width):
            return ab_small
        return F.interpolate(ab_small, (height, width), mode="bilinear", align_corners=False)

    def colorize_luma(self, l: Tensor, hints: Sequence[Hint] | None = None) -> tuple[Tensor, Tensor]:
        """(RGB ``(N, 3, H, W)`` in [0, 1], ab used) for L* ``(N, 1, H, W)``, on the compute device."""
        l = l.to(device=self.placement.device, dtype=torch.float32)
        return join_in_gamut(l, self.predict_ab(l, hints))

    # ------------------------------------------------------------------------------ public entries

    def colorize(
        self, images: Tensor | np.ndarray, hints: Sequence[Hint] | None = None, return_ab: bool = False
    ) -> Any:
        """Colorize RGB or gray images; the result has the input's kind, size and sample type.

        torch: ``(N, 3|1, H, W)`` or ``(3|1, H, W)`` float in [0, 1] -> float RGB on the input's device.
        numpy: ``HxW``, ``HxWx1``, ``HxWx3`` (RGB), ``HxWx4`` (RGBA, alpha kept) or ``NxHxWxC``; uint8, uint16 or
        float -> RGB(A) of the same dtype. With ``return_ab`` a pair ``(rgb, ab)`` is returned (ab as float32,
        ``(N, 2, H, W)`` / ``(2, H, W)`` for torch, ``HxWx2`` / ``NxHxWx2`` for numpy).
        """
        if isinstance(images, Tensor):
            return self._colorize_tensor(images, hints, return_ab)
        if isinstance(images, np.ndarray):
            return self._colorize_numpy(images, hints, return_ab)
        raise InputError(f"expected a torch tensor or a numpy array, got {type(images).__name__}")

    def _colorize_tensor(self, images: Tensor, hints: Sequence[Hint] | None, return_ab: bool) -> Any:
        single = images.dim() == 3
        batch = images[None] if single else images
        if batch.dim() != 4 or batch.shape[1] not in (1, 3):
            raise InputError(
                f"expected images shaped (N, 3|1, H, W) or (3|1, H, W), got {tuple(images.shape)}"
            )
        if not batch.is_floating_point():
            raise InputError(
                f"expected float samples in [0, 1], got {batch.dtype}; divide by the peak value first"
            )
        l = _luma_of(batch.to(device=self.placement.device, dtype=torch.float32).clamp(0.0, 1.0))
        rgb, ab = self.colorize_luma(l, hints)
        rgb, ab = rgb.to(images.device), ab.to(images.device)
        if single:
            rgb, ab = rgb[0], ab[0]
        return (rgb, ab) if return_ab else rgb

    def _colorize_numpy(self, image: np.ndarray, hints: Sequence[Hint] | None, return_ab: bool) -> Any:
        batched = image.ndim == 4
        if image.ndim == 2:
            arr = image[None, :, :, None]
        elif image.ndim == 3:
            arr = image[None]
        elif batched:
            arr = image
        else:
            raise InputError(f"expected an HxW, HxWxC or NxHxWxC image array, got shape {image.shape}")
        if arr.shape[-1] not in (1, 3, 4):
            raise InputError(f"expected 1, 3 or 4 channels (gray, RGB, RGBA), got {arr.shape[-1]}")
        samples, dtype = _to_unit_float(arr)
        alpha = samples[..., 3:] if arr.shape[-1] == 4 else None
        colour = samples[..., :3] if arr.shape[-1] == 4 else samples
        rgb, ab = self._colorize_tensor(colour.permute(0, 3, 1, 2).contiguous(), hints, True)
        out = rgb.permute(0, 2, 3, 1).cpu()
        if alpha is not None:
            out = torch.cat((out, alpha), dim=-1)
        result = _from_unit_float(out.numpy(), dtype)
        ab_np = ab.permute(0, 2, 3, 1).cpu().numpy()
        if not batched:
            result, ab_np = result[0], ab_np[0]
        return (result, ab_np) if return_ab else result

    def colorize_bgr(self, frame: np.ndarray, hints: Sequence[Hint] | None = None) -> np.ndarray:
        """OpenCV-style: a BGR (or gray) uint8 frame in, a colorized BGR uint8 frame of the same size out."""
        if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
            raise InputError("colorize_bgr expects a uint8 numpy frame as cv2.VideoCapture.read() returns")
        if frame.ndim == 3 and frame.shape[2] == 3:
            rgb = frame[:, :, ::-1]
        elif frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
            rgb = frame
        else:
            raise InputError(f"colorize_bgr expects an HxWx3 BGR or HxW gray frame, got shape {frame.shape}")
        out = self._colorize_numpy(np.ascontiguousarray(rgb), hints, False)
        return np.ascontiguousarray(out[:, :, ::-1])

    def colorize_ycbcr(
        self,
        y_plane: Tensor | np.ndarray,
        fmt: YCbCrFormat,
        hints: Sequence[Hint] | None = None,
        factors: tuple[int, int] = (1, 1),
        siting: Siting = "left",
    ) -> tuple[Any, Any]:
        """(Cb, Cr) planes for a Y' plane ``(H, W)`` or ``(N, H, W)``, subsampled by ``factors`` at ``siting``.

        L* comes from :func:`ycbcr_lightness`, chroma from :func:`ycbcr_chroma` (the steps every host shares); the
        caller keeps its own Y' plane unchanged and pairs it with these chroma planes. Integer formats give integer
        code values (the input's dtype for integer input, else int32), float formats float32 in [-0.5, 0.5].
        """
        is_numpy = isinstance(y_plane, np.ndarray)
        y = torch.from_numpy(np.asarray(y_plane)) if is_numpy else y_plane
        assert isinstance(y, Tensor)
        if y.dim() not in (2, 3):
            raise InputError(f"expected a Y' plane shaped (H, W) or (N, H, W), got {tuple(y.shape)}")
        if fmt.bits is None and not y.is_floating_point():
            raise InputError("a float Y'CbCr format needs float Y' samples in [0, 1]")
        batch = y[None] if y.dim() == 2 else y
        l = ycbcr_lightness(batch.to(self.placement.device), fmt)[:, None]
        planes = ycbcr_chroma(l, self.predict_ab(l, hints), fmt, factors, siting)
        if y.dim() == 2:
            planes = planes[0]
        if fmt.bits is not None and not y.is_floating_point():
            planes = planes.to(y.dtype)
        planes = planes.to(y.device) if not is_numpy else planes.cpu()
        cb, cr = planes.unbind(dim=-3)
        if is_numpy:
            return cb.numpy(), cr.numpy()
        return cb, cr


def colorize_bgr(frame: np.ndarray, colorizer: Colorizer) -> np.ndarray:
    """Function form of :meth:`Colorizer.colorize_bgr`, for ``cv2.VideoCapture`` loops."""
    return colorizer.colorize_bgr(frame)
