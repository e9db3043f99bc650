"""Hint parsing and placement at the model resolution."""

import json

import pytest
import torch

from chromaflow.core.colour import rgb_to_lab
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.hints import (
    Hint,
    collect_hints,
    hint_tensors,
    hints_from_json,
    load_hints_json,
    parse_hint,
)


def _lab_ab(rgb: tuple[int, int, int]) -> tuple[float, float]:
    lab = rgb_to_lab(torch.tensor(rgb, dtype=torch.float64).view(3, 1, 1) / 255).flatten()
    return float(lab[1]), float(lab[2])


def test_parse_hint_with_and_without_radius():
    assert parse_hint("10,20,#FF8000") == Hint(10.0, 20.0, (255, 128, 0), 0.0)
    assert parse_hint(" 3.5 , 4 , 00ff00 , 2 ") == Hint(3.5, 4.0, (0, 255, 0), 2.0)


@pytest.mark.parametrize(
    "bad", ["10,20", "a,2,#ffffff", "1,2,#fff", "1,2,#gggggg", "1,2,#ffffff,-1", "1,2,3,4,5"]
)
def test_bad_hints_are_usage_errors(bad):
    with pytest.raises(UsageError, match="hint"):
        parse_hint(bad)


def test_json_forms(tmp_path):
    data = [
        "1,2,#ff0000",
        [3, 4, "#00ff00", 1.5],
        {"x": 5, "y": 6, "color": "#0000ff"},
        {"x": 7, "y": 8, "colour": "#010203", "radius": 2},
    ]
    hints = hints_from_json(data)
    assert [h.rgb for h in hints] == [(255, 0, 0), (0, 255, 0), (0, 0, 255), (1, 2, 3)]
    assert [h.radius for h in hints] == [0, 1.5, 0, 2]
    path = tmp_path / "h.json"
    path.write_text(json.dumps(data))
    assert load_hints_json(path) == hints
    assert collect_hints(["0,0,#ffffff"], path)[1:] == hints
    path.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_hints_json(path)
    with pytest.raises(UsageError):
        hints_from_json({"x": 1})


def test_single_point_lands_on_the_model_pixel_containing_it():
    # Image 100 wide x 50 high, model 20x20: x=37 -> column floor(37.5 * 20 / 100) = 7; y=26 -> row floor(26.5 * 20/50) = 10.
    hint = Hint(37, 26, (200, 30, 40))
    ab, mask = hint_tensors([hint], (50, 100), 20)
    assert ab.shape == (1, 2, 20, 20) and mask.shape == (1, 1, 20, 20)
    assert mask.sum() == 1 and mask[0, 0, 10, 7] == 1
    a, b = _lab_ab((200, 30, 40))
    assert ab[0, 0, 10, 7].item() == pytest.approx(a, abs=1e-4)
    assert ab[0, 1, 10, 7].item() == pytest.approx(b, abs=1e-4)
    assert ab[0, :, mask[0, 0] == 0].abs().max() == 0


def test_radius_covers_exactly_the_model_pixels_within_it():
    # Same scale on both axes (64 -> 32: a model pixel is 2 image pixels, centres at 1, 3, 5, ... in image units).
    _ab, mask = hint_tensors([Hint(20, 30, (0, 0, 255), radius=3)], (64, 64), 32)
    rows, cols = torch.nonzero(mask[0, 0], as_tuple=True)
    found = set(zip(rows.tolist(), cols.tolist(), strict=True))
    # Point centre (20.5, 30.5); model pixel (i, j) has centre (2j + 1, 2i + 1).
    expected = {
        (i, j) for i in range(32) for j in range(32) if (2 * j + 1 - 20.5) ** 2 + (2 * i + 1 - 30.5) ** 2 <= 9
    }
    expected.add((15, 10))
    assert found == expected
    assert len(found) > 4


def test_later_hints_overwrite_and_points_outside_are_refused():
    ab, _mask = hint_tensors([Hint(0, 0, (255, 0, 0)), Hint(0, 0, (0, 255, 0))], (8, 8), 8)
    a, _ = _lab_ab((0, 255, 0))
    assert ab[0, 0, 0, 0].item() == pytest.approx(a, abs=1e-4)
    with pytest.raises(InputError, match="outside"):
        hint_tensors([Hint(8, 0, (0, 0, 0))], (8, 8), 8)
