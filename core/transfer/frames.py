"""The frames of one sequence as keyframe transfer reads them, each computed once and kept.

Frame ``n`` comes from the host's ``luma(n)``: float L* ``(H, W)`` in [0, 100], an sRGB gray plane (uint8 or
uint16) or an RGB frame (see :func:`~chromaflow.core.transfer.lab_arrays.to_lightness`). Every frame must have the
size of the first one read. What the chains work on, the frame's L* at the working resolution and the uint8 image
DIS and the cut detector see, and the flows between frames are cached in thread-safe LRU maps (hosts ask from
several threads), so frame ``n``'s chains and its neighbours' share one read and one flow per pair.
"""

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chromaflow.core.arrays import F32, U8
from chromaflow.core.errors import InputError
from chromaflow.core.flow import FlowPreset, compute_flow, to_flow_luma, working_size
from chromaflow.core.lru import LRUCache
from chromaflow.core.transfer.lab_arrays import resize_plane, to_lightness

LumaSource = Callable[[int], Any]


@dataclass(frozen=True)
class WorkFrame:
    """A frame at the working resolution."""

    l_work: F32  # L* at the working resolution
    flow_luma: U8  # what DIS sees, and what cut detection sees (ShotCuts)


class SequenceFrames:
    """Full-size L*, working-resolution frames and flows of one sequence (``max_side``: the working resolution's
    longer side; ``flow_preset``: DIS between consecutive frames; ``cache_frames``: frames kept)."""

    def __init__(
        self, luma: LumaSource, num_frames: int, max_side: int, flow_preset: FlowPreset, cache_frames: int
    ) -> None:
        self.luma = luma
        self.num_frames = num_frames
        self.max_side = max_side
        self.flow_preset: FlowPreset = flow_preset
        self._lock = threading.Lock()
        self._size: tuple[int, int] | None = None
        self._work: tuple[int, int] | None = None
        self._frames = LRUCache(cache_frames)
        self._flows = LRUCache(4 * cache_frames)

    def l_full(self, n: int) -> F32:
        """L* ``(H, W)`` of frame ``n`` at full size (the first frame read fixes the sequence's size)."""
        if not 0 <= n < self.num_frames:
            raise InputError(f"frame {n} is outside the sequence (0..{self.num_frames - 1})")
        l_full = to_lightness(self.luma(n))
        size = (int(l_full.shape[0]), int(l_full.shape[1]))
        with self._lock:
            if self._size is None:
                self._size = size
                self._work = working_size(size, self.max_side)
        if size != self._size:
            raise InputError(
                f"frame {n} is {size[1]}x{size[0]}, the sequence is {self._size[1]}x{self._size[0]}"
            )
        return l_full

    def full_size(self, n: int) -> tuple[int, int]:
        """``(H, W)`` of the frames (read from frame ``n`` when no frame has been read yet)."""
        size = self._size if self._size is not None else self.l_full(n).shape
        return int(size[0]), int(size[1])

    @property
    def work_size(self) -> tuple[int, int]:
        """``(h, w)`` of the working resolution (known after the first frame is read)."""
        if self._work is None:
            self.l_full(0)
        assert self._work is not None
        return self._work

    def frame(self, n: int, l_full: F32 | None = None) -> WorkFrame:
        """Frame ``n`` at the working resolution (``l_full``: its full-size L* if the caller has it)."""
        cached = self._frames.get(n)
        if cached is not None:
            return cached
        l_full = self.l_full(n) if l_full is None else l_full
        l_work = resize_plane(l_full, self.work_size)
        frame = WorkFrame(l_work, to_flow_luma(l_work))
        self._frames.put(n, frame)
        return frame

    def flow(self, dst: int, src: int) -> F32:
        """Flow mapping frame ``dst``'s pixels to positions in frame ``src`` (working resolution)."""
        cached = self._flows.get((dst, src))
        if cached is not None:
            return cached
        flow = compute_flow(self.frame(src).flow_luma, self.frame(dst).flow_luma, self.flow_preset)
        self._flows.put((dst, src), flow)
        return flow

    def release_before(self, n: int) -> None:
        """Forget frames and flows before frame ``n``."""
        self._frames.keep_only(lambda k: not (isinstance(k, int) and k < n))
        self._flows.keep_only(lambda k: not (isinstance(k, tuple) and min(k) < n))
