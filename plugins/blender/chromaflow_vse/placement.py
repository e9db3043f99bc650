"""Where the result strip goes, and which timeline markers are keyframes: the strip arithmetic, without ``bpy``.

The operators read a strip's numbers into :class:`StripGeometry`; everything here is plain Python, unit-tested
without Blender.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from .chromaflow_cli_client import ClientError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".exr")
MAX_CHANNEL = 128  # Blender's sequencer has channels 1..128


@dataclass(frozen=True)
class StripGeometry:
    """Where a movie strip sits: content frame 0 lands on ``frame_start``; trims hide its ends."""

    channel: int
    frame_start: int
    frame_offset_start: int
    frame_offset_end: int
    frame_duration: int  # frames in the source file

    @property
    def final_start(self) -> int:
        return self.frame_start + self.frame_offset_start

    @property
    def final_end(self) -> int:
        """One past the last visible frame (Blender's ``frame_final_end``)."""
        return self.frame_start + self.frame_duration - self.frame_offset_end

    def content_index(self, scene_frame: int) -> int:
        """The frame of the source file shown at ``scene_frame``."""
        return scene_frame - self.frame_start


@dataclass(frozen=True)
class Placement:
    """The result strip: same start and trims as the source, on a free channel above it."""

    channel: int
    frame_start: int
    frame_offset_start: int
    frame_offset_end: int


def choose_channel(
    geometry: StripGeometry, occupied: Iterable[tuple[int, int, int]], max_channel: int = MAX_CHANNEL
) -> int:
    """The first channel above the strip that is free over its visible range.

    ``occupied``: ``(channel, final_start, final_end)`` of the other strips at the same level.
    """
    busy = list(occupied)
    for channel in range(geometry.channel + 1, max_channel + 1):
        if all(
            ch != channel or end <= geometry.final_start or start >= geometry.final_end
            for ch, start, end in busy
        ):
            return channel
    raise ClientError(
        f"no free channel above channel {geometry.channel} between frames {geometry.final_start} and "
        f"{geometry.final_end}; free a channel above the strip and run again"
    )


def plan_placement(
    geometry: StripGeometry, occupied: Iterable[tuple[int, int, int]], result_frames: int | None = None
) -> Placement:
    """Place a result of ``result_frames`` frames (default: as many as the source) like the source strip.

    A shorter result keeps the start trim and shows as much of the visible range as it has.
    """
    frames = geometry.frame_duration if result_frames is None else result_frames
    if frames <= geometry.frame_offset_start:
        raise ClientError(
            f"the result has {frames} frames but the strip's visible part starts at frame "
            f"{geometry.frame_offset_start} of its file; nothing of it would be visible"
        )
    visible_end = min(geometry.frame_duration - geometry.frame_offset_end, frames)
    return Placement(
        channel=choose_channel(geometry, occupied),
        frame_start=geometry.frame_start,
        frame_offset_start=geometry.frame_offset_start,
        frame_offset_end=frames - visible_end,
    )


def looks_like_image(text: str) -> bool:
    return text.lower().endswith(IMAGE_SUFFIXES)


def references_from_markers(
    markers: Iterable[tuple[str, int]],
    images: dict[str, str],
    geometry: StripGeometry,
    resolve: Callable[[str], str] = os.path.abspath,
) -> tuple[list[tuple[int, str]], list[str]]:
    """Keyframes for ``--ref N=IMAGE`` from timeline markers.

    A marker inside the strip's visible range is a keyframe when ``images`` names a still for it (by marker name)
    or when the marker's own name is an image path. ``resolve`` turns Blender paths (``//x.png``) into real ones.
    Returns ``(references sorted by frame, notes about markers that were skipped)``; a named image that does not
    exist is an error, since the user clearly meant it.
    """
    refs: dict[int, str] = {}
    notes: list[str] = []
    for name, frame in markers:
        if not geometry.final_start <= frame < geometry.final_end:
            continue
        image = images.get(name) or (name if looks_like_image(name) else "")
        if not image:
            notes.append(f"marker '{name}' at frame {frame} has no coloured still; it was not used")
            continue
        path = resolve(image)
        if not os.path.isfile(path):
            raise ClientError(
                f"the still for marker '{name}' ({path}) does not exist; point the marker to an existing image"
            )
        index = geometry.content_index(frame)
        if index in refs and refs[index] != path:
            raise ClientError(f"two markers at frame {frame} point to different stills; keep one of them")
        refs[index] = path
    return sorted(refs.items()), notes
