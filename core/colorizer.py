"""The Colorizer: luma in, colour out, at any size.

Pipeline: image -> CIE L* at full resolution -> L* resized to the model's square input -> the net predicts ab ->
ab upsampled bilinearly to the original size -> joined with the original full-resolution L* -> sRGB. Where the
joined colour falls outside the sRGB gamut, its chroma is reduced (hue and L* kept) instead of clipping the RGB
channels, so the output's lightness is the input's lightness.

Every colour net follows one protocol (:class:`ColorNet`): ``forward(l, ab_hint, mask) -> ab`` with
``l`` ``(N, 1, S, S)`` CIE L* in [0, 100], ``ab_hint`` ``(N, 2, S, S)`` in ab units, ``mask`` ``(N, 1, S, S)`` in
{0, 1}; it returns ab in ab units, ``(N, 2, h, w)`` with ``h, w <= S`` (the Colorizer upsamples). A class attribute
``accepts_hints`` says whether the net uses the hint inputs.
"""

import logging
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chromaflow.core import registry
from chromaflow.core.colour import (
    D65_WHITE,
    LAB_EPSILON,
    LAB_KAPPA,
    XYZ_TO_LINEAR_RGB,
    Siting,
    YCbCrFormat,
    downsample_chroma,
    lab_to_rgb,
    lightness,
    quantize,
    rgb_to_lab,
    rgb_to_ycbcr,
    rgb_to_ypbpr_matrix,
    upsample_chroma,
    ycbcr_to_rgb,
)
from chromaflow.core.device import Placement
from chromaflow.core.errors import InputError, ModelError, UsageError
from chromaflow.core.gamut_join_cpu import join_to_chroma
from chromaflow.core.gamut_join_gpu import fused_chroma
from chromaflow.core.hints import Hint, hint_tensors
from chromaflow.core.weights_io import checkpoint_info, load_state_dict

log = logging.getLogger(__name__)

COLORIZER_ARCHS = ("eccv16", "siggraph17", "base")
_GAMUT_TOLERANCE = 1e-5
_GAMUT_STEPS = 14


@runtime_checkable
class ColorNet(Protocol):
    """The protocol every colorizer net follows (see the module docstring)."""

    accepts_hints: ClassVar[bool]

    def __call__(self, l: Tensor, ab_hint: Tensor, mask: Tensor) -> Tensor: ...


# ------------------------------------------------------------------------------------------- building nets


def build_arch(arch: str, state_dict: dict[str, Tensor]) -> nn.Module:
    """A colorizer of architecture ``arch`` loaded with ``state_dict``, in eval mode."""
    if arch in ("eccv16", "siggraph17"):
        from chromaflow.core.nets.zhang import build_zhang

        return build_zhang(arch, state_dict)
    if arch == "base":
        try:
            from chromaflow.core.nets.base import build_base
        except ImportError as err:
            raise ModelError(
                "the 'base' architecture is not part of this install (chromaflow.core.nets.base is missing); "
                "use --model siggraph17 or --model eccv16"
            ) from err
        try:
            net = build_base(state_dict=state_dict)
        except (RuntimeError, KeyError) as err:
            reason = str(err).splitlines()[0] if str(err) else type(err).__name__
            raise ModelError(f"the weights do not fit the 'base' architecture: {reason}") from err
        return net.eval()
    raise UsageError(f"unknown colorizer architecture {arch!r}: use one of {', '.join(COLORIZER_ARCHS)}")


def load_net(model: str | Path | nn.Module, arch: str | None = None) -> nn.Module:
    """A colour net from a registry name, a ``.pt``/``.pth`` state_dict file (with ``arch``), or a module."""
    if isinstance(model, nn.Module):
        return model
    text = str(model)
    if text.strip().lower() in registry.MODELS:
        spec = registry.get_spec(text)
        if spec.kind != "colorizer":
            raise UsageError(
                f"model {spec.name!r} is a {spec.kind}, not a colorizer: use {', '.join(COLORIZER_ARCHS)}"
            )
        return build_arch(spec.arch, load_state_dict(registry.weights_path(spec.name)))
    path = Path(text).expanduser()
    if path.suffix.lower() in (".pt", ".pth") or path.exists():
        if not path.is_file():
            raise ModelError(f"weights file {path} does not exist")
        chosen = arch or checkpoint_info(path).get("arch")
        if not isinstance(chosen, str):
            raise UsageError(
                f"say which architecture {path.name} holds: add --arch with one of {', '.join(COLORIZER_ARCHS)}"
            )
        return build_arch(chosen, load_state_dict(path))
    raise ModelError(
        f"unknown model {text!r}: use one of {', '.join(n for n in registry.names() if n in COLORIZER_ARCHS)}, "
        "or a path to a .pt state_dict file"
    )


# ----------------------------------------------------------------------------------------- colour helpers


def join_in_gamut(l: Tensor, ab: Tensor) -> tuple[Tensor, Tensor]:
    """sRGB for L* ``l`` ``(N, 1, H, W)`` and ``ab`` ``(N, 2, H, W)``, with out-of-gamut chroma scaled down.

    Returns ``(rgb, ab_used)``; each pixel keeps its L* and hue, its chroma is the largest fraction of the
    requested one (to 1/2^14) that sRGB can show.
    """
    rgb = lab_to_rgb(torch.cat((l, ab), dim=1), clip=False)
    outside = ((rgb < -_GAMUT_TOLERANCE) | (rgb > 1 + _GAMUT_TOLERANCE)).any(dim=1)  # (N, H, W)
    if not bool(outside.any()):
        return rgb.clamp(0.0, 1.0), ab
    idx = outside.nonzero(as_tuple=True)
    l_out = l[:, 0][idx]  # (K,)
    ab_out = torch.stack((ab[:, 0][idx], ab[:, 1][idx]))  # (2, K)
    lo = torch.zeros_like(l_out)
    hi = torch.ones_like(l_out)
    for _ in range(_GAMUT_STEPS):
        mid = (lo + hi) / 2
        trial = lab_to_rgb(torch.cat((l_out[None], ab_out * mid), dim=0)[:, None, :], clip=False)[:, 0, :]
        inside = ((trial >= -_GAMUT_TOLERANCE) & (trial <= 1 + _GAMUT_TOLERANCE)).all(dim=0)
        lo = torch.where(inside, mid, lo)
        hi = torch.where(inside, hi, mid)
    fitted = ab_out * lo
    ab = ab.clone()
    ab[:, 0][idx] = fitted[0]
    ab[:, 1][idx] = fitted[1]
    rgb = rgb.clone()
    fixed = lab_to_rgb(torch.cat((l_out[None], fitted), dim=0)[:, None, :], clip=False)[:, 0, :]
    for c in range(3):
        rgb[:, c][idx] = fixed[c]
    return rgb.clamp(0.0, 1.0), ab


@lru_cache(maxsize=16)
def _lightness_table(fmt: YCbCrFormat) -> Tensor:
    """L* of the gray picture R' = G' = B' = E'Y for every integer Y' code value of ``fmt`` (float32, CPU)."""
    ys, yo, _, _ = fmt.scale_offset()
    codes = torch.arange(fmt.peak + 1, dtype=torch.float64)
    gray = ((codes - yo) / ys).clamp(0.0, 1.0).view(1, 1, -1).expand(3, 1, -1)
    return lightness(gray).flatten().to(torch.float32)


def ycbcr_lightness(y: Tensor | np.ndarray, fmt: YCbCrFormat) -> Tensor:
    """CIE L* (float32, same shape) of Y' code values: how every host reads a luma plane.

    L* is that of the gray picture R' = G' = B' = E'Y. Integer planes go through a table of ``fmt``'s code values
    (exact and fast); float planes (float formats, or float code values) are converted directly. The result is on
    the input's device (numpy input: on the CPU).
    """
    integer = not (
        np.issubdtype(y.dtype, np.floating) if isinstance(y, np.ndarray) else y.is_floating_point()
    )
    if integer and fmt.bits is None:
        raise InputError("a float Y'CbCr format needs float Y' samples in [0, 1]")
    if isinstance(y, np.ndarray):
        if integer:
            return torch.from_numpy(_lightness_table(fmt).numpy()[np.clip(y, 0, fmt.peak)])
        t = torch.from_numpy(y.astype(np.float32))  # a copy: frames handed in may be read-only
    else:
        t = y
    if integer:
        return _lightness_table(fmt).to(t.device)[t.to(torch.int64).clamp(0, fmt.peak)]
    ys, yo, _, _ = fmt.scale_offset()
    gray = ((t.to(torch.float32) - yo) / ys).clamp(0.0, 1.0)
    return lightness(gray.unsqueeze(-3).expand(*gray.shape[:-2], 3, *gray.shape[-2:])).squeeze(-3)


def ycbcr_chroma(
    l: Tensor, ab: Tensor, fmt: YCbCrFormat, factors: tuple[int, int] = (1, 1), siting: Siting = "left"
) -> Tensor:
    """Chroma code values ``(N, 2, h, w)`` of ``fmt`` for full-resolution L* ``(N, 1, H, W)`` and ab ``(N, 2, H, W)``.

    The one place where colour becomes Y'CbCr for every host: L* and ab are joined in gamut (:func:`join_in_gamut`:
    L* and hue kept, chroma reduced where sRGB cannot show it), converted with ``fmt``'s matrix and range,
    subsampled by ``factors`` (vertical, horizontal) at ``siting``, and, for integer formats, rounded to int32 code
    values; float formats give float32 in [-0.5, 0.5]. The caller keeps its own Y' plane. The join and the
    conversion run fused: a numba kernel on the CPU (:mod:`chromaflow.core.gamut_join_cpu`), a compiled pointwise
    kernel on CUDA (:mod:`chromaflow.core.gamut_join_gpu`; the eager tensor join where compiling fails).
    """
    l, ab = l.to(torch.float32), ab.to(device=l.device, dtype=torch.float32)
    _, _, scale, offset = fmt.scale_offset()
    if l.device.type == "cpu":
        chroma = torch.from_numpy(_cpu_chroma(l[:, 0].numpy(), ab.numpy(), fmt))
    else:
        fused = fused_chroma(l, ab, fmt.matrix, scale, offset, _GAMUT_TOLERANCE, _GAMUT_STEPS)
        chroma = eager_join_chroma(l, ab, fmt) if fused is None else fused
    if tuple(factors) != (1, 1):
        chroma = downsample_chroma(chroma, factors, siting)
    return chroma.to(torch.float32) if fmt.bits is None else quantize(chroma, fmt.bits)


def ycbcr_lab(
    y: np.ndarray,
    chroma: np.ndarray,
    fmt: YCbCrFormat,
    factors: tuple[int, int] = (1, 1),
    siting: Siting = "left",
) -> tuple[np.ndarray, np.ndarray]:
    """CIE L* ``(H, W)`` and ab ``(2, H, W)`` (float32) of a Y'CbCr picture: the inverse of :func:`ycbcr_chroma`.

    ``y``: the luma plane ``(H, W)``; ``chroma``: the Cb, Cr planes ``(2, h, w)``, subsampled by ``factors`` at
    ``siting`` (brought to full size by linear interpolation at their sites), as code values of ``fmt`` (or
    float, luma in [0, 1] and chroma in [-0.5, 0.5], for float formats). R'G'B' outside [0, 1] is clipped.
    """
    y_t = torch.from_numpy(np.asarray(y, dtype=np.float32))
    c_t = torch.from_numpy(np.asarray(chroma, dtype=np.float32))
    if tuple(factors) != (1, 1):
        c_t = upsample_chroma(c_t, (int(y_t.shape[0]), int(y_t.shape[1])), factors, siting)
    lab = rgb_to_lab(ycbcr_to_rgb(torch.cat((y_t[None], c_t)), fmt, clip=True))
    return lab[0].numpy(), np.ascontiguousarray(lab[1:].numpy())


def eager_join_chroma(l: Tensor, ab: Tensor, fmt: YCbCrFormat) -> Tensor:
    """Unsubsampled, unrounded Cb, Cr of the in-gamut join as whole-frame tensor operations: the form before the
    join was fused, and the fallback where compiling is not possible."""
    rgb, _ = join_in_gamut(l, ab)
    return rgb_to_ycbcr(rgb, fmt)[:, 1:3]


def _cpu_chroma(l_star: np.ndarray, ab: np.ndarray, fmt: YCbCrFormat) -> np.ndarray:
    _, _, scale, offset = fmt.scale_offset()
    return join_to_chroma(
        l_star,
        ab,
        XYZ_TO_LINEAR_RGB.numpy(),
        np.array(D65_WHITE),
        (LAB_EPSILON, LAB_KAPPA),
        rgb_to_ypbpr_matrix(fmt.matrix)[1:].numpy(),
        (scale, offset),
        _GAMUT_TOLERANCE,
        _GAMUT_STEPS,
    )


def _luma_of(rgb: Tensor) -> Tensor:
    """L* of ``(N, 1|3, H, W)`` R'G'B' (one channel means a gray image, R' = G' = B')."""
    if rgb.shape[1] == 1:
        rgb = rgb.expand(-1, 3, -1, -1)
    return lightness(rgb)


def _to_unit_float(array: np.ndarray) -> tuple[Tensor, Any]:
    """A numpy image's samples as float32 in [0, 1], and the dtype to give back."""
    if array.dtype == np.uint8:
        return torch.from_numpy(array.astype(np.float32) / 255.0), np.uint8
    if array.dtype == np.uint16:
        return torch.from_numpy(array.astype(np.float32) / 65535.0), np.uint16
    if np.issubdtype(array.dtype, np.floating):
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)), np.float32
    raise InputError(f"unsupported image sample type {array.dtype}: use uint8, uint16 or float in [0, 1]")


def _from_unit_float(x: np.ndarray, dtype: Any) -> np.ndarray:
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
        if size < 16 or size % 8:
            raise UsageError(
                f"--size {size} is not usable: the model input side must be a multiple of 8, >= 16"
            )
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
        self.accepts_hints = bool(getattr(net, "accepts_hints", False))

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
