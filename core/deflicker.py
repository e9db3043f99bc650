"""Deflicker: remove colour flicker from video that is already in colour, keeping its lightness and its detail.

Colour from per-frame colorizers (ours without smoothing, or any other tool) flickers: a region, or the whole frame,
changes hue from one frame to the next. This runs the colorize pipeline's temporal smoothing
(:class:`~chromaflow.core.temporal.TemporalSmoother`: motion-compensated, stopping at scene cuts) on the video's
own colour:

1. each frame's CIE L* and a*b* planes (full size, from the host) are shrunk by pixel area to the working size
   (longer side ``max_side``);
2. the smoother returns the frame's smoothed ab there; its change, ``smoothed - ab``, is low-frequency by
   construction (the smoother low-passes its temporal correction);
3. that change, resized to full size, is added to the frame's own full-size ab. L* is left alone, and so is the
   chroma detail finer than the correction, so a frame without flicker comes back as it was.

Hosts read a frame's L* and ab with :func:`chromaflow.core.colorizer.ycbcr_lab` (Y'CbCr) or
:func:`chromaflow.core.transfer.rgb_to_lab_planes` (RGB) and write the result with :func:`deflickered_chroma` /
:func:`deflickered_rgb`, which add the *change* of colour to the frame's own samples: a frame whose ab did not move
comes back bit for bit (no chroma resampling round trip), and the luma plane is never touched. Two access patterns, one core, identical frames: :class:`Deflicker` (random access from
several threads, for VapourSynth) and :class:`DeflickerStream` (push/flush, for PyAV nodes and the CLI; frame ``n``
comes out after frame ``n + radius`` went in).
"""

import threading
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import torch

from chromaflow.core.arrays import F32
from chromaflow.core.colorizer import join_in_gamut, ycbcr_chroma
from chromaflow.core.colour import Siting, YCbCrFormat, downsample_chroma, quantize
from chromaflow.core.errors import InputError
from chromaflow.core.flow import working_size
from chromaflow.core.gray_content import GrayContentCheck
from chromaflow.core.options import DeflickerOptions, given
from chromaflow.core.temporal import Smoothed, TemporalSmoother
from chromaflow.core.transfer import resize_chw, resize_plane

LabFrame = tuple[F32, F32]  # L* (H, W) and ab (2, H, W), float32, full size
DEFAULT_RADIUS = DeflickerOptions.radius  # the defaults and their reasons live in DeflickerOptions
DEFAULT_MAX_SIDE = DeflickerOptions.max_side


class Deflickered(NamedTuple):
    """One output frame of :class:`DeflickerStream`: its index and its full-size ab ``(2, H, W)``."""

    frame_index: int
    ab: F32


def _check(l_star: F32, ab: F32) -> None:
    if l_star.ndim != 2 or ab.shape != (2, *l_star.shape):
        raise InputError(
            f"expected L* (H, W) and ab (2, H, W) of one size, got {l_star.shape} and {ab.shape}"
        )


class _Core:
    """What both access patterns share: the smoother, the working size and the full-size correction."""

    def __init__(self, options: DeflickerOptions) -> None:
        self.options = options
        self.smoother = TemporalSmoother(
            options.radius,
            options.strength,
            scene_cut=options.cut_detector(),
            detect_cuts=options.detect_cuts,
            flow_max_side=options.max_side,
            backend="numba",
        )
        self.max_side = options.max_side
        self._work: tuple[int, int] | None = None

    def restart(self) -> None:
        """Forget the working size (a new stream may have another frame size)."""
        self._work = None

    def work(self, l_star: F32, ab: F32) -> LabFrame:
        """The frame at the working size: L* ``(h, w)`` and ab ``(2, h, w)``."""
        _check(l_star, ab)
        size = (int(l_star.shape[0]), int(l_star.shape[1]))
        if self._work is None:
            self._work = working_size(size, self.max_side)
        l_w = resize_plane(l_star, self._work)
        return l_w, resize_chw(ab, self._work)

    @staticmethod
    def corrected(ab: F32, ab_work: F32, smoothed: F32 | torch.Tensor) -> F32:
        """Full-size ``ab`` plus the working-size change ``smoothed - ab_work`` resized to full size."""
        smoothed_np = smoothed.cpu().numpy() if isinstance(smoothed, torch.Tensor) else np.asarray(smoothed)
        full = resize_chw(np.asarray(smoothed_np - ab_work), (int(ab.shape[1]), int(ab.shape[2])))
        return np.ascontiguousarray(ab + full, dtype=np.float32)


class Deflicker:
    """Random access: ``ab(n)`` is frame ``n``'s deflickered ab, from frames ``n - radius .. n + radius``.

    ``get_lab(k)`` returns frame ``k`` as full-size ``(L*, ab)`` float32 planes. ``options``: the run's
    :class:`DeflickerOptions` (radius, strength, working size, scene cuts); the keywords are their keyword form,
    for direct callers (the hosts pass ``options``; given ones replace the options' values). Thread-safe.
    """

    def __init__(
        self,
        num_frames: int,
        get_lab: Callable[[int], LabFrame],
        options: DeflickerOptions | None = None,
        *,
        radius: int | None = None,
        strength: float | None = None,
        max_side: int | None = None,
        scene_cut_threshold: float | None = None,
        detect_cuts: bool | None = None,
    ) -> None:
        opts = given(
            options or DeflickerOptions(),
            radius=radius,
            strength=strength,
            max_side=max_side,
            scene_cut_threshold=scene_cut_threshold,
            detect_cuts=detect_cuts,
        )
        if num_frames < 1:
            raise InputError("the clip has no frames to deflicker")
        self.num_frames = num_frames
        self.get_lab = get_lab
        self._core = _Core(opts)
        self._gray_check: GrayContentCheck | None = GrayContentCheck(self.radius)
        self._gray_lock = threading.Lock()

    @property
    def radius(self) -> int:
        return self._core.smoother.radius

    @property
    def options(self) -> DeflickerOptions:
        """The run's options."""
        return self._core.options

    def _loader(self, k: int) -> LabFrame | None:
        if k < 0 or k >= self.num_frames:
            return None
        return self._core.work(*self.get_lab(k))

    def _check_colour(self) -> None:
        """Refuse gray content stored in a colour format, from the clip's first frames (once; see
        :mod:`chromaflow.core.gray_content`)."""
        with self._gray_lock:
            check = self._gray_check
            if check is None:
                return
            k = 0
            while not check.done and k < self.num_frames:
                check.add(*self._core.work(*self.get_lab(k)))
                check.settle()
                k += 1
            check.settle(final=True)
            self._gray_check = None

    def ab(self, n: int, frame: LabFrame | None = None) -> F32:
        """Deflickered ab ``(2, H, W)`` of frame ``n`` (``frame``: its ``(L*, ab)`` when the caller has it)."""
        if not 0 <= n < self.num_frames:
            raise InputError(f"frame {n} is outside the clip (0 .. {self.num_frames - 1})")
        self._check_colour()
        l_star, ab = self.get_lab(n) if frame is None else frame
        work = self._core.work(l_star, ab)
        smoothed = self._core.smoother.smooth_at(n, lambda k: work if k == n else self._loader(k))
        return self._core.corrected(ab, work[1], smoothed)


class DeflickerStream:
    """Streaming: ``push(L*, ab)`` returns the frames that became ready, ``flush()`` the rest (options as
    :class:`Deflicker`; the same frames come out). Frame ``n`` is ready once frame ``n + radius`` was pushed."""

    def __init__(
        self,
        options: DeflickerOptions | None = None,
        *,
        radius: int | None = None,
        strength: float | None = None,
        max_side: int | None = None,
        scene_cut_threshold: float | None = None,
        detect_cuts: bool | None = None,
    ) -> None:
        opts = given(
            options or DeflickerOptions(),
            radius=radius,
            strength=strength,
            max_side=max_side,
            scene_cut_threshold=scene_cut_threshold,
            detect_cuts=detect_cuts,
        )
        self._core = _Core(opts)
        self._held: dict[int, tuple[F32, F32]] = {}  # frame -> (full-size ab, working-size ab)
        self._count = 0
        self._gray_check = GrayContentCheck(self.lookahead)

    @property
    def lookahead(self) -> int:
        """Frames pushed after frame ``n`` before it comes out."""
        return self._core.smoother.radius

    @property
    def options(self) -> DeflickerOptions:
        """The stream's options."""
        return self._core.options

    def push(self, l_star: F32, ab: F32) -> list[Deflickered]:
        """Add the next frame; gray content stored in a colour format is refused (:class:`InputError`) from the
        first frames, before the first frame comes out (see :mod:`chromaflow.core.gray_content`)."""
        l_work, ab_work = self._core.work(l_star, ab)
        self._gray_check.add(l_work, ab_work)
        self._gray_check.settle()
        self._held[self._count] = (ab, ab_work)
        self._count += 1
        return self._finish(self._core.smoother.push(l_work, ab_work))

    def flush(self) -> list[Deflickered]:
        """The frames still held; the stream then starts over."""
        self._gray_check.settle(final=True)
        out = self._finish(self._core.smoother.flush())
        self._held.clear()
        self._count = 0
        self._core.restart()
        self._gray_check = GrayContentCheck(self.lookahead)
        return out

    def _finish(self, ready: list[Smoothed]) -> list[Deflickered]:
        out = []
        for item in ready:
            ab, ab_work = self._held.pop(item.frame_index)
            out.append(Deflickered(item.frame_index, self._core.corrected(ab, ab_work, item.ab)))
        return out


def deflickered_chroma(
    chroma: np.ndarray,
    l_star: F32,
    ab_old: F32,
    ab_new: F32,
    fmt: YCbCrFormat,
    factors: tuple[int, int] = (1, 1),
    siting: Siting = "left",
) -> np.ndarray:
    """The frame's chroma planes ``(2, h, w)`` (code values of ``fmt``) moved by the change from ``ab_old`` to
    ``ab_new`` (full size, with the frame's L*): ``chroma + C(L*, ab_new) - C(L*, ab_old)``, where ``C`` is the
    in-gamut join of :func:`ycbcr_chroma`, subsampled by ``factors`` at ``siting``. int32 codes, clamped to the
    format's range, for integer formats; float32 for float formats."""
    unit = YCbCrFormat(fmt.matrix, fmt.full_range, None)  # unrounded E'Pb, E'Pr at full size
    l_t = torch.from_numpy(np.ascontiguousarray(l_star, dtype=np.float32))[None, None]
    new = ycbcr_chroma(l_t, torch.from_numpy(np.ascontiguousarray(ab_new, dtype=np.float32))[None], unit)
    old = ycbcr_chroma(l_t, torch.from_numpy(np.ascontiguousarray(ab_old, dtype=np.float32))[None], unit)
    change = new[0] - old[0]  # exactly 0 where the colour did not move
    if tuple(factors) != (1, 1):
        change = downsample_chroma(change, factors, siting)  # linear: the change of the subsampled planes
    moved = torch.from_numpy(np.asarray(chroma, dtype=np.float32)) + change * fmt.scale_offset()[2]
    return (moved if fmt.bits is None else quantize(moved, fmt.bits)).numpy()


def deflickered_rgb(rgb: np.ndarray, l_star: F32, ab_old: F32, ab_new: F32, clip: bool = True) -> np.ndarray:
    """The frame's R'G'B' ``(3, H, W)`` moved by the in-gamut colour change from ``ab_old`` to ``ab_new`` (float64;
    the caller scales and rounds to its sample format). ``clip``: limit the result to [0, 1] (for integer samples);
    float samples outside [0, 1] may stay there, so they come back unchanged where the colour did not move."""
    l_t = torch.from_numpy(np.ascontiguousarray(l_star, dtype=np.float64))[None, None].expand(2, -1, -1, -1)
    joined, _ = join_in_gamut(l_t, torch.from_numpy(np.stack((ab_new, ab_old)).astype(np.float64)))
    moved = np.asarray(rgb, dtype=np.float64) + (joined[0] - joined[1]).numpy()
    return np.clip(moved, 0.0, 1.0) if clip else moved
