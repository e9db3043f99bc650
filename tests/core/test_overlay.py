"""Overlays: colours by score, labels, scaling with the frame, and nothing outside the frame."""

from dataclasses import dataclass

import numpy as np
import pytest

from chromaflow.core.faces import Box
from chromaflow.core.overlay import OverlayStyle, colour_for, draw_overlay, label_for, label_rect


@dataclass
class Scored:
    box: Box
    score: float
    track: int


def test_labels_and_colours() -> None:
    style = OverlayStyle()
    assert label_for(0.87, 3, style) == "FAKE 87% #3"
    assert label_for(0.12, None, style) == "REAL 12%"
    assert label_for(0.12, 1, OverlayStyle(percent="confidence", show_track=False)) == "REAL 88%"
    assert colour_for(0.1, style) == style.real_colour
    assert colour_for(0.5, style) == style.unsure_colour
    assert colour_for(0.9, style) == style.fake_colour


@pytest.mark.parametrize("shape", [(480, 854), (2160, 3840), (40, 30)])
def test_boxes_partly_outside_are_drawn_inside(shape: tuple[int, int]) -> None:
    h, w = shape
    frame = np.zeros((h, w, 3), np.uint8)
    faces = [Scored((-50, -50, w * 0.3, h * 0.3), 0.9, 1), Scored((w * 0.8, h * 0.8, w + 80, h + 80), 0.1, 2)]
    out = draw_overlay(frame, faces, OverlayStyle(show_frame_bar=True), frame_score=0.9)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert frame.max() == 0  # input untouched (a copy was drawn)
    red = np.all(out == OverlayStyle().fake_colour, axis=2)
    green = np.all(out == OverlayStyle().real_colour, axis=2)
    assert red.any() and green.any()


def test_label_stays_in_frame() -> None:
    for box in [(0, 0, 50, 50), (1900, 1060, 1919, 1079), (-10, 500, 40, 600)]:
        x, y = label_rect(box, 200, 30, 6, 1920, 1080)  # type: ignore[arg-type]
        assert x >= 0 and x + 212 <= 1920 and y >= 0 and y + 42 <= 1080


def test_line_width_scales_with_frame() -> None:
    def thickness(h: int, w: int) -> int:
        frame = np.zeros((h, w, 3), np.uint8)
        out = draw_overlay(
            frame, [Scored((w / 4, h / 4, w / 2, h / 2), 0.1, 1)], OverlayStyle(show_bar=False)
        )
        row = out[h * 3 // 8, : w * 3 // 8]  # through the middle of the box's left edge
        return int(np.all(row == OverlayStyle().real_colour, axis=1).sum())

    assert thickness(2160, 3840) > thickness(1080, 1920) > thickness(480, 854) >= 1


def test_gray_frames_and_inplace() -> None:
    gray = np.zeros((100, 100), np.uint8)
    assert draw_overlay(gray, [Scored((10, 10, 60, 60), 0.5, 1)]).shape == (100, 100, 3)
    frame = np.zeros((100, 100, 3), np.uint8)
    out = draw_overlay(frame, [Scored((10, 10, 60, 60), 0.5, 1)], inplace=True)
    assert out is frame and frame.any()
