"""Track ids: stable for a moving face (synthetic clip from a real face photo), new ids for new faces."""

from pathlib import Path

import cv2
import numpy as np

from chromaflow.core.faces import FaceDetector
from chromaflow.core.tracking import IoUTracker


def moving_face_clip(shared: Path, frames: int = 8, step: int = 18) -> list[np.ndarray]:
    """A real face photo (MesoNet test image) pasted onto a seeded noise background, moving right and down."""
    face = cv2.cvtColor(
        cv2.imread(str(shared / "data/deepfake-dev/mesonet-test-images/real/real00240.jpg")),
        cv2.COLOR_BGR2RGB,
    )
    face = cv2.resize(face, (160, 160), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(7)
    background = cv2.GaussianBlur(rng.integers(0, 256, (360, 480, 3), dtype=np.uint8), (0, 0), 3)
    clip = []
    for i in range(frames):
        frame = np.roll(background, 4 * i, axis=1).copy()  # the background pans too
        x, y = 20 + step * i, 30 + step // 3 * i
        frame[y : y + 160, x : x + 160] = face
        clip.append(frame)
    return clip


def test_ids_stable_across_a_moving_real_face(shared: Path) -> None:
    detector, tracker = FaceDetector("haar", min_size=60), IoUTracker()
    ids = []
    for frame in moving_face_clip(shared):
        faces = detector.detect(frame)
        assert len(faces) == 1
        ids.extend(tracker.update([f.box for f in faces]))
    assert ids == [1] * len(ids)


def test_fast_motion_uses_centre_fallback_and_new_faces_get_new_ids() -> None:
    tracker = IoUTracker(max_missed=1)
    assert tracker.update([(0, 0, 100, 100)]) == [1]
    assert tracker.update([(60, 0, 160, 100), (400, 400, 500, 500)]) == [1, 2]  # IoU 0.25: centre shift 0.6
    assert tracker.update([(400, 410, 500, 510)]) == [2]  # track 1 missed once
    assert tracker.update([(400, 420, 500, 520)]) == [2]  # track 1 missed twice: ended
    assert tracker.update([(120, 0, 220, 100)]) == [3]  # ids are never reused
    tracker.reset()
    assert tracker.update([(400, 420, 500, 520)]) == [4]


def test_empty_frames_keep_tracks_for_a_while() -> None:
    tracker = IoUTracker(max_missed=2)
    assert tracker.update([(0, 0, 50, 50)]) == [1]
    assert tracker.update([]) == []
    assert tracker.update([(2, 2, 52, 52)]) == [1]
