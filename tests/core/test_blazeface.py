"""BlazeFace port against the reference implementation's raw outputs and detections."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from chromaflow.core.errors import ModelError
from chromaflow.core.nets.blazeface import load_blazeface


@pytest.fixture(scope="module")
def detector(shared: Path):  # type: ignore[no-untyped-def]
    return load_blazeface(shared / "models/blazeface/blazeface.pth", shared / "models/blazeface/anchors.npy")


def _input(shared: Path, spec: str) -> np.ndarray:
    if spec.startswith("random"):
        seed = int(spec.split("default_rng(")[1].split(")")[0])
        return np.random.default_rng(seed).random((128, 128, 3), dtype=np.float32) * 255
    image = cv2.cvtColor(
        cv2.imread(str(shared / "data/deepfake-dev/dfdc" / spec.split(":")[0])), cv2.COLOR_BGR2RGB
    )
    h, w = image.shape[:2]
    square = np.zeros((max(h, w), max(h, w), 3), np.uint8)
    square[:h, :w] = image
    return cv2.resize(square, (128, 128), interpolation=cv2.INTER_AREA)


def test_raw_outputs_and_detections_match_reference(shared: Path, detector) -> None:  # type: ignore[no-untyped-def]
    ref = json.loads((shared / "reference/blazeface_reference_outputs.json").read_text())
    for case in ref["cases"]:
        x = _input(shared, case["input"])
        scores, boxes = detector.raw(x)
        s = scores[0, :, 0].numpy()
        np.testing.assert_allclose(s[:16], case["raw_scores_first16"], atol=1e-3)
        assert int(s.argmax()) == case["raw_scores_argmax"]
        assert s.max() == pytest.approx(case["raw_scores_max"], abs=1e-3)
        assert s.mean() == pytest.approx(case["raw_scores_mean"], abs=1e-3)
        np.testing.assert_allclose(boxes[0, :4].numpy(), case["raw_boxes_first4"], atol=1e-3)
        found = detector.detect(x)[0]
        assert len(found) == len(case["detections"])
        for det, want in zip(found, case["detections"], strict=True):
            np.testing.assert_allclose(det.as_row(), want, atol=1e-4)


def test_corrupt_weights_are_a_model_error(shared: Path, tmp_path: Path) -> None:
    bad = tmp_path / "blazeface.pth"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(ModelError, match="download"):
        load_blazeface(bad, shared / "models/blazeface/anchors.npy")
    bad_anchors = tmp_path / "anchors.npy"
    np.save(bad_anchors, np.zeros((10, 4), np.float32))
    with pytest.raises(ModelError, match="anchors"):
        load_blazeface(shared / "models/blazeface/blazeface.pth", bad_anchors)
