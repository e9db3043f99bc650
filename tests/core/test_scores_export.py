"""JSONL and WebVTT sidecars: schema, atomic writes, no leftovers on error."""

import json
from pathlib import Path

import pytest

from chromaflow.core.deepfake import FaceScore, FrameResult, VideoSummary
from chromaflow.core.errors import OutputError
from chromaflow.core.scores_export import ScoresJsonlWriter, ScoresVttWriter, write_scores


def _results() -> list[tuple[FrameResult, int, float]]:
    face = FaceScore(1, (10.0, 20.0, 110.0, 120.0), 0.87, 0.9, 0.99)
    frames = [
        FrameResult(0, (face,)),
        FrameResult(1, ()),
        FrameResult(2, (face, FaceScore(2, (0, 0, 5, 5), 0.2, 0.2, 0.8))),
    ]
    return [(r, r.index, r.index / 25) for r in frames]


SUMMARY = VideoSummary(0.87, 0.87, 0.87, 3, 2, "meso4-df", "haar", "confident")


def test_jsonl_schema(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    write_scores(path, None, _results(), SUMMARY)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(lines) == 4
    for n, obj in enumerate(lines[:3]):
        assert set(obj) == {"frame", "time", "score", "faces"} and obj["frame"] == n
        assert obj["time"] == pytest.approx(n / 25)
        for face in obj["faces"]:
            assert set(face) == {"track", "box", "score"} and len(face["box"]) == 4
    assert lines[1]["score"] is None and lines[1]["faces"] == []
    assert lines[2]["score"] == 0.87
    video = lines[3]["video"]
    assert {"score", "frames", "frames_with_faces", "model"} <= set(video)
    assert (video["frames"], video["frames_with_faces"], video["model"]) == (3, 2, "meso4-df")
    assert [p.name for p in tmp_path.iterdir()] == ["s.jsonl"]


def test_vtt_cues(tmp_path: Path) -> None:
    path = tmp_path / "s.vtt"
    write_scores(None, path, _results(), SUMMARY)
    text = path.read_text()
    assert text.startswith("WEBVTT\n\n")
    assert "00:00:00.000 --> 00:00:00.040\nFAKE 87%" in text
    assert "00:00:00.040 --> 00:00:00.080\nno face" in text
    assert "00:00:00.080 --> 00:00:00.120\nFAKE 87%" in text


def test_error_leaves_nothing(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError), ScoresJsonlWriter(tmp_path / "s.jsonl") as writer:
        writer.write_frame(_results()[0][0], 0, 0.0)
        raise RuntimeError("encoder died")
    with pytest.raises(OutputError), ScoresVttWriter(tmp_path / "s.vtt") as vtt:
        vtt.add(0.5, 1.0)
        vtt.add(0.5, 0.5)  # time going backwards
    assert list(tmp_path.iterdir()) == []


def test_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        ScoresJsonlWriter(tmp_path / "nope" / "s.jsonl")
