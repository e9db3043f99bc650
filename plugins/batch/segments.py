"""Where a video is split, and which neighbouring frames each piece must see to give the frames one process gives.

A segment is the frames ``[start, end)`` it writes; its *context* ``[context_start, context_end)`` is the frames it
decodes and runs through the verb's node, the frames outside ``[start, end)`` computed and discarded. The context
covers everything a written frame depends on in a single-process run:

- temporal smoothing / deflicker: ``radius`` frames on either side (windows stop at cuts, and a window never
  needs the cut flag of the context's first frame: the flag of frame ``k`` compares ``k - 1`` and ``k``);
- the colour model: fixed blocks of ``batch_size`` frames counted from frame 0 (core/video.py), so the context
  starts and ends on block boundaries (or at the end of the video) and every block holds the same frames;
- keyframe references: the previous keyframe of the window's first frame and the next keyframe of its last, so
  each frame sees the same previous, next and nearest keyframe and the same flow chains from them; the fused
  transfer (``auto``) reads ``reads_ahead`` frames past the window.

Segments end at scene cuts where they can (whole shots packed up to ``max_frames``); a shot longer than that is
cut into equal pieces inside the shot, which the context makes exact.
"""

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

ContextRule = Callable[[int, int], tuple[int, int]]  # (start, end) -> (context_start, context_end)


@dataclass(frozen=True)
class Segment:
    """Frames ``[start, end)`` written from the decoded frames ``[context_start, context_end)``."""

    index: int
    start: int
    end: int
    context_start: int
    context_end: int

    @property
    def frames(self) -> int:
        return self.end - self.start


def split_points(num_frames: int, cuts: Sequence[int], max_frames: int) -> list[int]:
    """Segment boundaries ``[0, ..., num_frames]``: at scene cuts, whole shots packed up to ``max_frames``; a
    longer shot in equal pieces of at most ``max_frames``."""
    if num_frames < 1:
        return [0]
    shots = sorted({0, *(c for c in cuts if 0 < c < num_frames), num_frames})
    points = [0]
    for a, b in itertools.pairwise(shots):
        if b - a > max_frames:
            if points[-1] != a:
                points.append(a)
            pieces = -(-(b - a) // max_frames)
            points.extend(a + (b - a) * i // pieces for i in range(1, pieces))
            points.append(b)
        elif b - points[-1] > max_frames:
            points.append(a)
    if points[-1] != num_frames:
        points.append(num_frames)
    return points


def plan_segments(
    num_frames: int, cuts: Sequence[int], max_frames: int, context: ContextRule
) -> list[Segment]:
    """The segments of one video, each with the context ``context(start, end)`` gives."""
    points = split_points(num_frames, cuts, max_frames)
    out = []
    for i, (a, b) in enumerate(itertools.pairwise(points)):
        cs, ce = context(a, b)
        out.append(Segment(i, a, b, max(0, min(cs, a)), min(num_frames, max(ce, b))))
    return out


def window_context(num_frames: int, radius: int, block: int = 1) -> ContextRule:
    """Context of a temporal window of ``radius`` frames over fixed blocks of ``block`` frames (model batches)."""

    def rule(start: int, end: int) -> tuple[int, int]:
        lo = max(0, start - radius)
        hi = min(num_frames - 1, end - 1 + radius)
        return (lo // block) * block, min(num_frames, (hi // block + 1) * block)

    return rule


def keyframe_context(num_frames: int, radius: int, keys: Sequence[int], reads_ahead: int = 0) -> ContextRule:
    """Context of keyframe transfer with smoothing ``radius``: the window, ``reads_ahead`` frames more, and the
    keyframes around it."""
    ordered = sorted(keys)

    def rule(start: int, end: int) -> tuple[int, int]:
        lo = max(0, start - radius)
        hi = min(num_frames - 1, end - 1 + radius + reads_ahead)
        before = [k for k in ordered if k <= lo]
        after = [k for k in ordered if k >= hi]
        cs = before[-1] if before else lo
        ce = after[0] if after else hi
        return cs, ce + 1

    return rule
