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
from dataclasses import dataclass
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
from chromaflow.core.mixing import MixRule, Models, members_of, mix_name
from chromaflow.core.nets import builders
from chromaflow.core.nets.colour_net import ColorNet
from chromaflow.core.options import model_side

__all__ = [
    "DEFAULT_SIDE",
    "ColorNet",
    "Colorizer",
    "colorize_bgr",
    "eager_join_chroma",
    "join_in_gamut",
    "load_net",
    "load_sided",
    "model_work_size",
    "ycbcr_chroma",
    "ycbcr_lab",
    "ycbcr_lightness",
]


DEFAULT_SIDE = 256  # the input side of a net that states none (what the Zhang nets were trained at)


def load_net(model: str | Path | nn.Module, arch: str | None = None) -> nn.Module:
    """A colour net from a registry name, a ``.pt``/``.pth`` state_dict file (with ``arch``), or a module."""
    if isinstance(model, nn.Module):
        return model
    return registry.load(model, arch, kind="colorizer")


def load_sided(model: str | Path | nn.Module, arch: str | None = None) -> tuple[nn.Module, int]:
    """A colour net (as :func:`load_net`) and the input side it runs at unless told otherwise.

    The side is the registry entry's ``input_size`` for a name, the architecture's (``arch``, or the one the file
    records) for a weights file, and a module's own ``input_size`` attribute for a module (else
    :data:`DEFAULT_SIDE`). A file's architecture is read once and handed to the loader.
    """
    if isinstance(model, nn.Module):
        side = getattr(model, "input_size", None)
        return model, side if isinstance(side, int) and not isinstance(side, bool) else DEFAULT_SIDE
    spec = registry.MODELS.get(str(model).strip().lower())
    if spec is not None:
        return registry.load(spec.name, kind="colorizer"), spec.input_size
    path = Path(str(model)).expanduser()
    if arch is None and path.is_file():
        arch = builders.arch_of_file(path)
    net = registry.load(model, arch, kind="colorizer")
    return net, builders.builder_for(arch, "colorizer").input_size if arch else DEFAULT_SIDE


def model_work_size(full: tuple[int, int], work: tuple[int, int], side: int) -> tuple[int, int]:
    """The size of the L* an engine gives a model: its working size ``work`` of a ``full`` frame, unless that is
    shorter than the model's input ``side`` and the frame is larger: then the frame scaled (never up) so that its
    shorter side is ``side``. A 512-px model is not fed a 270-row working copy of a 1080p frame; a 256-px one on
    16:9 frames of 480p and up keeps the working copy."""
    if min(work) >= side or tuple(work) == tuple(full):
        return work
    scale = min(1.0, side / min(full))
    return max(work[0], round(full[0] * scale)), max(work[1], round(full[1] * scale))


@dataclass
class ColourMember:
    """One net of a Colorizer: its name, the module, the side its luma is resized to, whether it takes hints."""

    name: str
    net: nn.Module
    size: int
    accepts_hints: bool


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
    """Colorizes images and frames with one colour net, or a mix of two.

    ``model``: a registry name (``"base"``, ``"siggraph17"``, ``"eccv16"``, ...), a ``.pt`` state_dict path (with
    ``arch``), an ``nn.Module`` following :class:`ColorNet`, or two of these as ``"A+B"`` or ``("A", "B")``, whose
    ab are combined by ``mix`` (:class:`~chromaflow.core.mixing.MixRule`, or a float: the first model's weight in a
    mean; default an equal mean). ``size``: the square side the luma is resized to (a multiple of 8, >= 16); None
    runs each net at its own default (:func:`load_sided`: 256 for the Zhang nets and ``base``).
    ``render_factor``: DeOldify's spelling of the side, ``size = 16 * render_factor`` (not both). ``batch_size``
    bounds how many images go through a net at once.
    """

    def __init__(
        self,
        model: Models = "base",
        device: str | torch.device | None = None,
        precision: str | None = None,
        size: int | None = None,
        arch: str | None = None,
        batch_size: int = 8,
        *,
        render_factor: int | None = None,
        mix: MixRule | float | None = None,
    ) -> None:
        side = model_side(size, render_factor)
        if batch_size < 1:
            raise UsageError("batch size must be at least 1")
        members = members_of(model)
        if len(members) == 1 and mix is not None:
            raise UsageError(
                "a mix rule combines two models: give the model as A+B (or a pair), or leave mix out"
            )
        self.mix: MixRule | None = None
        if len(members) == 2:
            self.mix = mix if isinstance(mix, MixRule) else MixRule(weight=0.5 if mix is None else mix)
        self.placement = Placement.resolve(device, precision)
        self.batch_size = batch_size
        self.name = mix_name(members) if len(members) == 2 else _name_of(members[0])
        # channels-last lets cuDNN pick its tensor-core convolutions; on the CPU the default layout is as fast
        self.memory_format = (
            torch.channels_last if self.placement.device.type == "cuda" else torch.contiguous_format
        )
        self.members = [self._member(m, arch, side) for m in members]
        self.accepts_hints = any(m.accepts_hints for m in self.members)

    def _member(self, model: str | Path | nn.Module, arch: str | None, size: int | None) -> ColourMember:
        net, default = load_sided(model, arch)
        net = net.to(device=self.placement.device, dtype=self.placement.dtype)
        net = net.to(memory_format=self.memory_format).eval()
        hints = isinstance(net, ColorNet) and net.accepts_hints
        return ColourMember(_name_of(model), net, default if size is None else size, hints)

    @property
    def net(self) -> nn.Module:
        """The (first) net; settable, e.g. to a ``torch.compile`` of itself."""
        return self.members[0].net

    @net.setter
    def net(self, module: nn.Module) -> None:
        self.members[0].net = module

    @property
    def size(self) -> int:
        """The (first) net's input side."""
        return self.members[0].size

    @property
    def sizes(self) -> tuple[int, ...]:
        """Every net's input side, in member order."""
        return tuple(m.size for m in self.members)

    @property
    def side(self) -> int:
        """The largest input side of its nets: engines give the Colorizer L* at least this large where the frame
        allows (:func:`model_work_size`)."""
        return max(self.sizes)

    # ----------------------------------------------------------------------------- the core step

    def _check_hints(self, hints: Sequence[Hint] | None) -> Sequence[Hint]:
        if hints and not self.accepts_hints:
            what = "neither model of the mix takes" if len(self.members) > 1 else "does not take"
            raise UsageError(
                f"model {self.name} {what} colour hints; use a hint-aware model (siggraph17 or base)"
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
        height, width = l.shape[-2:]
        l = l.to(device=self.placement.device, dtype=torch.float32)
        where = hint_size or (height, width)
        abs_ = [self._member_ab(m, l, hints if m.accepts_hints else (), where) for m in self.members]
        if self.mix is None:
            return abs_[0]
        return self.mix.combine(abs_[0], abs_[1])

    def _member_ab(
        self, member: ColourMember, l: Tensor, hints: Sequence[Hint], hint_size: tuple[int, int]
    ) -> Tensor:
        """One net's ab at ``l``'s size: L* resized to the net's side, run in batches, ab resized back."""
        dev, dtype = self.placement.device, self.placement.dtype
        n, _, height, width = l.shape
        side = (member.size, member.size)
        small = l if (height, width) == side else F.interpolate(l, side, mode="bilinear", antialias=True)
        ab_hint, mask = hint_tensors(hints, hint_size, side, device=dev, dtype=dtype)
        outputs = []
        for start in range(0, n, self.batch_size):
            chunk = (
                small[start : start + self.batch_size].to(dtype).contiguous(memory_format=self.memory_format)
            )
            k = chunk.shape[0]
            ab = member.net(chunk, ab_hint.expand(k, -1, -1, -1), mask.expand(k, -1, -1, -1))
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


def _name_of(model: str | Path | nn.Module) -> str:
    return type(model).__name__ if isinstance(model, nn.Module) else str(model)


def colorize_bgr(frame: np.ndarray, colorizer: Colorizer) -> np.ndarray:
    """Function form of :meth:`Colorizer.colorize_bgr`, for ``cv2.VideoCapture`` loops."""
    return colorizer.colorize_bgr(frame)
