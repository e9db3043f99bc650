"""FaceDetector: real faces found in frame coordinates, nothing on empty/gray/tiny frames, bad input rejected."""

from pathlib import Path

import cv2
import numpy as np
import pytest

from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.faces import Face, FaceDetector, box_iou, nms

FACE = (851, 302, 1047, 498)  # the face in lynaeydofd_fr0.jpg (1920x1080), found by BlazeFace


def _frame(shared: Path) -> np.ndarray:
    return cv2.cvtColor(
        cv2.imread(str(shared / "data/deepfake-dev/dfdc/lynaeydofd_fr0.jpg")), cv2.COLOR_BGR2RGB
    )


def _blaze(shared: Path, **kw: object) -> FaceDetector:
    return FaceDetector(
        "blazeface",
        blazeface_weights=shared / "models/blazeface/blazeface.pth",
        blazeface_anchors=shared / "models/blazeface/anchors.npy",
        **kw,  # type: ignore[arg-type]
    )


def test_haar_finds_the_face_in_a_1080p_frame(shared: Path) -> None:
    faces = FaceDetector("haar", min_size=120).detect(_frame(shared))
    assert faces and all(0 <= f.score <= 1 for f in faces)
    assert max(box_iou(np.array([f.box for f in faces]), np.array([FACE]))[:, 0]) > 0.4


def test_blazeface_tiles_find_one_face_in_a_1080p_frame(shared: Path) -> None:
    detector = _blaze(shared, min_size=150)
    faces = detector.detect(_frame(shared))
    assert len(faces) == 1
    assert box_iou(np.array([faces[0].box]), np.array([FACE]))[0, 0] > 0.6
    assert len(faces[0].keypoints) == 6 and faces[0].score >= 0.75


@pytest.mark.parametrize("backend", ["haar", "blazeface"])
def test_no_face_gray_and_tiny_frames(shared: Path, backend: str) -> None:
    detector = FaceDetector("haar") if backend == "haar" else _blaze(shared)
    rng = np.random.default_rng(0)
    assert detector.detect(np.full((360, 640, 3), 128, np.uint8)) == []
    assert detector.detect(rng.integers(0, 256, (240, 320), dtype=np.uint8)) == []  # gray 2-D frame
    assert detector.detect(np.zeros((8, 8, 3), np.uint8)) == []
    assert detector.detect(np.zeros((1, 1, 1), np.uint8)) == []


def test_gray_version_of_a_real_frame_still_has_its_face(shared: Path) -> None:
    gray = cv2.cvtColor(_frame(shared), cv2.COLOR_RGB2GRAY)
    faces = FaceDetector("haar", min_size=120).detect(gray)
    assert max(box_iou(np.array([f.box for f in faces]), np.array([FACE]))[:, 0]) > 0.4


def test_bad_input_and_options() -> None:
    detector = FaceDetector("haar")
    with pytest.raises(InputError, match="uint8"):
        detector.detect(np.zeros((64, 64, 3), np.float32))
    with pytest.raises(InputError, match="HxWx3"):
        detector.detect(np.zeros((64, 64, 4), np.uint8))
    with pytest.raises(UsageError):
        FaceDetector("dlib")  # type: ignore[arg-type]


def test_min_size_drops_small_faces(shared: Path) -> None:
    assert FaceDetector("haar", min_size=400).detect(_frame(shared)) == []


def test_nms_merges_overlaps_and_keeps_separate_faces() -> None:
    faces = [Face((0, 0, 100, 100), 0.9), Face((5, 5, 105, 105), 0.8), Face((300, 300, 400, 400), 0.7)]
    kept = nms(faces)
    assert len(kept) == 2 and kept[0].score == 0.9 and 0 < kept[0].box[0] < 5
