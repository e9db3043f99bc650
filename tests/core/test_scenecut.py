"""Scene-cut detector: luma histogram distance plus block-mean jump, with an exposed threshold."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from chromaflow.core.errors import UsageError
from chromaflow.core.scenecut import SceneCutDetector, shot_ids


def gradient(h: int = 48, w: int = 64, lo: float = 10, hi: float = 60) -> np.ndarray:
    return np.tile(np.linspace(lo, hi, w, dtype=np.float32), (h, 1))


def test_identical_frames_score_zero_and_cut_is_found() -> None:
    det = SceneCutDetector()
    a = gradient()
    assert det.score(a, a) == 0.0
    dark = np.full((48, 64), 85.0, np.float32)
    assert det.is_cut(a, dark)
    frames = [a, a + 1.0, a + 2.0, dark, dark, a]
    assert det.detect(frames) == [3, 5]
    np.testing.assert_array_equal(shot_ids(6, [3, 5]), [0, 0, 0, 1, 1, 2])


def test_threshold_is_exposed() -> None:
    a = gradient()
    b = gradient(lo=20, hi=70)  # a moderate brightness change
    score = SceneCutDetector().score(a, b)
    assert SceneCutDetector(threshold=score * 0.9).is_cut(a, b)
    assert not SceneCutDetector(threshold=score * 1.1).is_cut(a, b)
    with pytest.raises(UsageError):
        SceneCutDetector(threshold=0)


def test_uint8_and_lstar_agree() -> None:
    det = SceneCutDetector()
    a = (gradient() * 2.55).astype(np.uint8)
    b = np.roll(a, 7, axis=1)
    s8 = det.score(a, b)
    sf = det.score(a.astype(np.float32) / 2.55, b.astype(np.float32) / 2.55)
    assert s8 == pytest.approx(sf, abs=1e-6)


def _lstar(path: Path) -> np.ndarray:
    img = cv2.imread(str(path)).astype(np.float32) / 255.0
    return cv2.resize(cv2.cvtColor(img, cv2.COLOR_BGR2Lab)[..., 0], (128, 72), interpolation=cv2.INTER_AREA)


def test_davis_motion_is_not_a_cut_but_a_sequence_change_is(shared: Path) -> None:
    root = shared / "data" / "davis-dev"
    a = [_lstar(p) for p in sorted((root / "bmx-trees").glob("*.jpg"))[:6]]
    b = [_lstar(p) for p in sorted((root / "dog").glob("*.jpg"))[:3]]
    det = SceneCutDetector()
    assert det.detect(a + b) == [6]
