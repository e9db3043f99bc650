"""Deepfake overlays on RGB uint8 frames: a box per face coloured by its fake score (green, amber, red), a label
such as ``FAKE 87%`` or ``REAL 12%`` (the percentage is the fake score unless ``percent="confidence"``), the track id,
an optional score bar, an optional frame-score bar, and a caption naming the classifier that made the scores. Sizes scale with the frame (480p to 4K); everything is
clamped so nothing is drawn outside the frame."""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import cv2
import numpy as np

from chromaflow.core.faces import Box, as_rgb_frame

Colour = tuple[int, int, int]


class ScoredBox(Protocol):
    """Anything with a frame-pixel ``box``, a fake ``score`` in [0, 1] and a ``track`` id (e.g. FaceScore)."""

    @property
    def box(self) -> Box: ...
    @property
    def score(self) -> float: ...
    @property
    def track(self) -> int: ...


@dataclass(frozen=True)
class OverlayStyle:
    """Drawing options. Sizes are for a 1080-line frame and scale with the frame's shorter side."""

    real_colour: Colour = (40, 200, 80)
    unsure_colour: Colour = (255, 176, 0)
    fake_colour: Colour = (230, 40, 40)
    amber_from: float = 0.4  # scores at or above are amber
    red_from: float = 0.7  # scores at or above are red
    fake_label_from: float = 0.5  # scores at or above read FAKE
    percent: Literal["fake", "confidence"] = "fake"
    line_width: float = 3.0
    font_scale: float = 0.9
    show_track: bool = True
    show_bar: bool = True
    show_frame_bar: bool = False
    label_background: bool = True
    text_colour: Colour = (255, 255, 255)


def colour_for(score: float, style: OverlayStyle) -> Colour:
    """The box colour of a fake score."""
    if score >= style.red_from:
        return style.fake_colour
    if score >= style.amber_from:
        return style.unsure_colour
    return style.real_colour


def label_for(score: float, track: int | None, style: OverlayStyle) -> str:
    """``FAKE 87%`` / ``REAL 12%`` (fake score) or, with ``percent="confidence"``, ``REAL 88%``; ``#id`` appended."""
    fake = score >= style.fake_label_from
    value = score if style.percent == "fake" or fake else 1.0 - score
    text = f"{'FAKE' if fake else 'REAL'} {round(100 * value)}%"
    if style.show_track and track is not None:
        text += f" #{track}"
    return text


def _clamp_box(box: Box, w: int, h: int) -> tuple[int, int, int, int] | None:
    x0, y0, x1, y1 = (round(v) for v in box)
    x0, x1 = max(0, min(w - 1, x0)), max(0, min(w - 1, x1))
    y0, y1 = max(0, min(h - 1, y0)), max(0, min(h - 1, y1))
    if x1 <= x0 or y1 <= y0:
        return None
    return x0, y0, x1, y1


def label_rect(
    box: tuple[int, int, int, int], text_w: int, text_h: int, pad: int, w: int, h: int
) -> tuple[int, int]:
    """Top-left corner of a label of the given size: above the box when it fits, else inside its top, always kept
    within the frame."""
    lw, lh = text_w + 2 * pad, text_h + 2 * pad
    x = max(0, min(w - lw, box[0]))
    y = box[1] - lh if box[1] - lh >= 0 else box[1]
    y = max(0, min(h - lh, y))
    return x, y


def draw_overlay(
    frame: np.ndarray,
    faces: Sequence[ScoredBox],
    style: OverlayStyle | None = None,
    frame_score: float | None = None,
    inplace: bool = False,
    caption: str | None = None,
) -> np.ndarray:
    """Draw ``faces`` onto ``frame`` (RGB uint8 HxWx3); returns the drawn frame (a copy unless ``inplace``).

    ``caption`` (e.g. the classifier's name) is written in the bottom-right corner when faces are drawn."""
    style = style or OverlayStyle()
    img = as_rgb_frame(frame)
    if not inplace or img is not frame:
        img = img.copy()
    h, w = img.shape[:2]
    unit = min(h, w) / 1080.0
    thick = max(1, round(style.line_width * unit))
    font_scale = max(0.3, style.font_scale * unit)
    font_thick = max(1, round(2 * unit))
    pad = max(1, round(6 * unit))
    for face in faces:
        box = _clamp_box(face.box, w, h)
        if box is None:
            continue
        colour = colour_for(face.score, style)
        cv2.rectangle(img, box[:2], box[2:], colour, thick, cv2.LINE_8)
        text = label_for(face.score, face.track, style)
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, font_scale, font_thick)
        th += base
        if tw + 2 * pad <= w and th + 2 * pad <= h:
            lx, ly = label_rect(box, tw, th, pad, w, h)
            if style.label_background:
                cv2.rectangle(img, (lx, ly), (lx + tw + 2 * pad - 1, ly + th + 2 * pad - 1), colour, -1)
            cv2.putText(
                img, text, (lx + pad, ly + pad + th - base), cv2.FONT_HERSHEY_SIMPLEX, font_scale,
                style.text_colour, font_thick, cv2.LINE_AA,
            )  # fmt: skip
        if style.show_bar:
            _bar(
                img,
                (box[0], box[3] + thick, box[2], box[3] + thick + max(2, round(8 * unit))),
                face.score,
                colour,
            )
    if caption and faces:
        _caption(img, caption, style, font_scale * 0.7, font_thick, pad)
    if style.show_frame_bar and frame_score is not None:
        margin = max(2, round(16 * unit))
        bar_h = max(3, round(14 * unit))
        _bar(
            img, (margin, h - margin - bar_h, w // 3, h - margin), frame_score, colour_for(frame_score, style)
        )
    return img


def _caption(img: np.ndarray, text: str, style: OverlayStyle, scale: float, thick: int, pad: int) -> None:
    """``text`` on a dark band in the bottom-right corner (left out when the frame is too small for it)."""
    h, w = img.shape[:2]
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thick)
    x0, y0 = w - tw - 3 * pad, h - th - base - 3 * pad
    if x0 < 0 or y0 < 0:
        return
    img[y0 : h - pad, x0 : w - pad] = (img[y0 : h - pad, x0 : w - pad] * 0.35).astype(np.uint8)
    cv2.putText(
        img, text, (x0 + pad, h - 2 * pad - base), cv2.FONT_HERSHEY_SIMPLEX, scale, style.text_colour, thick,
        cv2.LINE_AA,
    )  # fmt: skip


def _bar(img: np.ndarray, rect: tuple[int, int, int, int], value: float, colour: Colour) -> None:
    """A filled bar of ``value`` in [0, 1] over a dark track, moved inside the frame if needed."""
    h, w = img.shape[:2]
    x0, y0, x1, y1 = rect
    bh = y1 - y0
    if y1 > h:  # no room under the box: draw it on the box's bottom edge instead
        y1 = h
        y0 = max(0, h - bh)
    x0, x1 = max(0, x0), min(w, x1)
    if x1 <= x0 or y1 <= y0:
        return
    img[y0:y1, x0:x1] = (img[y0:y1, x0:x1] * 0.35).astype(np.uint8)
    fill = x0 + round((x1 - x0) * min(1.0, max(0.0, float(value))))
    if fill > x0:
        img[y0:y1, x0:fill] = colour
