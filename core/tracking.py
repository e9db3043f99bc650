"""Track ids for faces across frames: greedy IoU matching with a centre-distance fallback for fast motion or
sparse sampling, and a grace period so a face missed for a few frames keeps its id."""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from chromaflow.core.faces import Box, box_iou


@dataclass
class Track:
    """One tracked face: a stable id, its last box, and bookkeeping."""

    id: int
    box: Box
    hits: int = 1
    missed: int = 0
    velocity: tuple[float, float] = (0.0, 0.0)

    def predicted(self) -> Box:
        """The box moved by the last observed centre velocity (per update)."""
        dx, dy = self.velocity
        step = self.missed + 1
        x0, y0, x1, y1 = self.box
        return (x0 + dx * step, y0 + dy * step, x1 + dx * step, y1 + dy * step)


def _centre(b: Box) -> tuple[float, float]:
    return ((b[0] + b[2]) / 2, (b[1] + b[3]) / 2)


class IoUTracker:
    """Assigns each box of a frame to a track. ``update(boxes)`` returns one id per box, in order.

    A box joins the track whose predicted box it overlaps most (IoU >= ``min_iou``), or failing that, whose centre
    lies within ``max_centre_shift`` box sizes; tracks unseen for more than ``max_missed`` updates end. Ids count up
    from 1 and are never reused.
    """

    def __init__(self, min_iou: float = 0.3, max_centre_shift: float = 0.6, max_missed: int = 5) -> None:
        self.min_iou = min_iou
        self.max_centre_shift = max_centre_shift
        self.max_missed = max_missed
        self.tracks: list[Track] = []
        self._next_id = 1

    def reset(self) -> None:
        """Forget all tracks (for a scene cut or a new video); ids keep counting up."""
        self.tracks = []

    def update(self, boxes: Sequence[Box]) -> list[int]:
        """Match this frame's boxes to tracks; returns the track id of each box."""
        boxes = [(float(b[0]), float(b[1]), float(b[2]), float(b[3])) for b in boxes]
        ids = [0] * len(boxes)
        free_boxes = set(range(len(boxes)))
        free_tracks = set(range(len(self.tracks)))
        if boxes and self.tracks:
            pred = np.array([t.predicted() for t in self.tracks])
            cur = np.array(boxes)
            iou = box_iou(cur, pred)
            pairs = sorted(
                ((iou[b, t], b, t) for b in range(len(boxes)) for t in range(len(self.tracks))), reverse=True
            )
            for value, b, t in pairs:
                if value < self.min_iou:
                    break
                if b in free_boxes and t in free_tracks:
                    self._assign(t, boxes[b])
                    ids[b] = self.tracks[t].id
                    free_boxes.discard(b)
                    free_tracks.discard(t)
            shifts = []
            for b in free_boxes:
                for t in free_tracks:
                    cb, ct = _centre(boxes[b]), _centre(self.tracks[t].predicted())
                    size = max(boxes[b][2] - boxes[b][0], boxes[b][3] - boxes[b][1], 1.0)
                    shift = float(np.hypot(cb[0] - ct[0], cb[1] - ct[1])) / size
                    if shift <= self.max_centre_shift:
                        shifts.append((shift, b, t))
            for _, b, t in sorted(shifts):
                if b in free_boxes and t in free_tracks:
                    self._assign(t, boxes[b])
                    ids[b] = self.tracks[t].id
                    free_boxes.discard(b)
                    free_tracks.discard(t)
        for t in free_tracks:
            self.tracks[t].missed += 1
        for b in sorted(free_boxes):
            self.tracks.append(Track(self._next_id, boxes[b]))
            ids[b] = self._next_id
            self._next_id += 1
        self.tracks = [t for t in self.tracks if t.missed <= self.max_missed]
        return ids

    def _assign(self, t: int, box: Box) -> None:
        track = self.tracks[t]
        (ox, oy), (nx, ny) = _centre(track.box), _centre(box)
        step = track.missed + 1
        track.velocity = ((nx - ox) / step, (ny - oy) / step)
        track.box = box
        track.hits += 1
        track.missed = 0
