"""DeepfakeScorer end to end with the official weights: real faces score low and fake faces high, no-face frames
give None, tracks are smoothed, video aggregates are right."""

import importlib.util
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest

from chromaflow.core.deepfake import (
    CROP_SPECS,
    DeepfakeScorer,
    FrameFaces,
    ScoreSmoother,
    confident_aggregate,
    crop_face,
)
from chromaflow.core.errors import UsageError
from chromaflow.core.faces import Face, FaceDetector

_spec = importlib.util.spec_from_file_location("moving_clip", Path(__file__).with_name("test_tracking.py"))
assert _spec is not None and _spec.loader is not None
_tracking = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tracking)
moving_face_clip = _tracking.moving_face_clip


def _scorer(shared: Path, **kw: object) -> DeepfakeScorer:
    return DeepfakeScorer(
        FaceDetector("haar", min_size=60),
        "meso4-df",
        classifier_path=shared / "models/mesonet/Meso4_DF.h5",
        device="cpu",
        **kw,  # type: ignore[arg-type]
    )


def _on_canvas(shared: Path, rel: str) -> np.ndarray:
    """A MesoNet test face (256 px) placed on a gray 480x640 frame, as a detector would meet it."""
    face = cv2.cvtColor(
        cv2.imread(str(shared / "data/deepfake-dev/mesonet-test-images" / rel)), cv2.COLOR_BGR2RGB
    )
    frame = np.full((480, 640, 3), 90, np.uint8)
    frame[100:356, 200:456] = cv2.resize(face, (256, 256), interpolation=cv2.INTER_AREA)
    return frame


def test_real_and_fake_test_faces(shared: Path) -> None:
    scorer = _scorer(shared, smoothing="none")
    frames = [_on_canvas(shared, r) for r in ("df/df00204.jpg", "df/df01254.jpg", "real/real00240.jpg")]
    results = scorer.score_frames(frames)
    scores = [r.score for r in results]
    assert all(s is not None for s in scores)
    assert min(scores[:2]) > 0.5 > scores[2]  # type: ignore[operator]
    assert [r.index for r in results] == [0, 1, 2]


def test_no_face_gray_and_tiny_frames(shared: Path) -> None:
    scorer = _scorer(shared)
    frames = [
        np.zeros((480, 640, 3), np.uint8),
        np.full((120, 160), 200, np.uint8),
        np.zeros((4, 4, 3), np.uint8),
    ]
    results = scorer.score_frames(frames, start_index=10)
    assert [r.score for r in results] == [None, None, None]
    assert [r.index for r in results] == [10, 11, 12]
    summary = scorer.finish()
    assert summary.score is None and summary.frames == 3 and summary.frames_with_faces == 0
    assert results[0].to_json(time=0.4) == {
        "frame": 10,
        "time": 0.4,
        "score": None,
        "faces": [],
        "model": "meso4-df",
    }


def test_moving_face_keeps_one_track_and_smoothing_follows(shared: Path) -> None:
    scorer = _scorer(shared, smoothing="ema", alpha=0.5)
    results, summary = scorer.score_video(moving_face_clip(shared), batch=3)
    tracks = {f.track for r in results for f in r.faces}
    assert tracks == {1}
    faces = [r.faces[0] for r in results]
    expected = faces[0].raw_score
    for face in faces[1:]:
        expected = 0.5 * face.raw_score + 0.5 * expected
        assert face.score == pytest.approx(expected, abs=1e-6)
    assert summary.frames == summary.frames_with_faces == len(results)
    assert summary.model == "meso4-df" and summary.detector == "haar"
    assert summary.mean == pytest.approx(np.mean([r.score for r in results]))


def test_crop_is_square_256_and_handles_the_frame_edge() -> None:
    frame = np.zeros((100, 100, 3), np.uint8)
    frame[:, :50] = 255
    crop = crop_face(frame, (-20, -20, 30, 30), CROP_SPECS["haar"])
    assert crop.shape == (256, 256, 3) and crop.dtype == np.uint8
    assert crop[128, 0].tolist() == [255, 255, 255]  # replicated edge, not black
    assert crop_face(frame, (500, 500, 600, 600), CROP_SPECS["haar"]).shape == (256, 256, 3)


def test_smoothers_and_aggregates() -> None:
    median = ScoreSmoother("median", window=3)
    assert [median.update(1, s) for s in (0.9, 0.1, 0.8, 0.2)] == [0.9, 0.5, 0.8, 0.2]
    assert ScoreSmoother("none").update(1, 0.3) == 0.3
    with pytest.raises(UsageError):
        ScoreSmoother("kalman")  # type: ignore[arg-type]
    assert confident_aggregate([0.9, 0.95, 0.85, 0.1, 0.3]) == pytest.approx(0.9)
    assert confident_aggregate([0.05] * 10 + [0.5]) == pytest.approx(0.05)
    assert confident_aggregate([0.3, 0.6]) == pytest.approx(0.45)
    assert confident_aggregate([]) is None


def test_bad_options(shared: Path) -> None:
    with pytest.raises(UsageError, match="classifier"):
        DeepfakeScorer("haar", "xception")
    with pytest.raises(UsageError, match="detector"):
        DeepfakeScorer("dlib", "meso4-df", classifier_path=shared / "models/mesonet/Meso4_DF.h5")


def test_two_stages_give_score_frames_results_from_any_thread(shared: Path) -> None:
    """Stage (1) depends on a frame alone, so threads may run it in any order; stage (2) in order then matches."""
    frames = moving_face_clip(shared, frames=6)
    expected = _scorer(shared).score_frames(frames)
    scorer = _scorer(shared)
    sequential = [scorer.analyse([f])[0] for f in frames]
    order = [5, 2, 0, 4, 1, 3, 2, 5]
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = dict(zip(order, pool.map(lambda n: scorer.analyse([frames[n]])[0], order), strict=True))
    for n, faces in enumerate(sequential):
        assert parallel[n] == faces  # exact: boxes and raw scores
    results = [scorer.track(parallel[n]) for n in range(len(frames))]
    for got, want in zip(results, expected, strict=True):
        assert got.index == want.index
        assert [f.track for f in got.faces] == [f.track for f in want.faces] == [1]
        assert [f.box for f in got.faces] == [f.box for f in want.faces]
        # the batch the classifier saw differs (1 frame vs 6), so only float rounding may differ
        assert [f.score for f in got.faces] == pytest.approx([f.score for f in want.faces], abs=1e-5)
    assert results[3].faces[0].score != results[3].faces[0].raw_score  # smoothing at work
    assert scorer.finish().frames == len(frames)
    assert scorer.track(scorer.analyse([frames[0]])[0], index=40).index == 40


def test_min_track_hides_short_lived_faces_until_their_track_is_confirmed(shared: Path) -> None:
    """A face in one frame only (a false detection) is never reported; a lasting face from its third frame on,
    with a score smoothed over the frames it was hidden in."""
    lasting, blip = Face((100.0, 100.0, 200.0, 200.0), 0.9), Face((400.0, 50.0, 480.0, 130.0), 0.8)
    frames = [FrameFaces((lasting, blip), (0.2, 0.95))] + [
        FrameFaces((Face((100.0 + 3 * i, 100.0, 200.0 + 3 * i, 200.0), 0.9),), (0.2 + 0.1 * i,))
        for i in range(1, 5)
    ]
    confirmed = _scorer(shared, smoothing="ema", alpha=0.5, min_track=3)
    every = _scorer(shared, smoothing="ema", alpha=0.5)
    got = [confirmed.track(f) for f in frames]
    ref = [every.track(f) for f in frames]
    assert [len(r.faces) for r in ref] == [2, 1, 1, 1, 1]
    assert [len(r.faces) for r in got] == [0, 0, 1, 1, 1]
    assert [r.score for r in got[:2]] == [None, None]
    for g, r in zip(got[2:], ref[2:], strict=True):
        assert g.faces == r.faces  # same track id, box and smoothed score as without the rule
    assert confirmed.finish().frames_with_faces == 3
    with pytest.raises(UsageError, match="min_track"):
        _scorer(shared, min_track=0)
