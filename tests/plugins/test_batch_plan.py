"""`chromaflow batch` planning without Ray: where videos are split, which neighbours a piece sees, what the inputs
are, the journal, the exit code, and the message when Ray is missing."""

import itertools
import json
import sys
from pathlib import Path

import pytest

from chromaflow.core.errors import UsageError
from chromaflow.plugins.batch.inputs import BatchItem, expand_inputs
from chromaflow.plugins.batch.journal import Journal, sha256_file
from chromaflow.plugins.batch.report import ItemReport
from chromaflow.plugins.batch.runner import exit_code
from chromaflow.plugins.batch.segments import (
    keyframe_context,
    plan_segments,
    split_points,
    window_context,
)
from chromaflow.plugins.cli.main import main


def test_split_points_end_at_cuts_and_cut_long_shots_evenly() -> None:
    assert split_points(48, [20], 16) == [0, 10, 20, 34, 48]
    assert split_points(90, [10, 30, 55], 40) == [0, 30, 55, 90]  # whole shots packed up to 40 frames
    assert split_points(10, [], 2000) == [0, 10]
    points = split_points(5000, [3000], 2000)
    assert points == [0, 1500, 3000, 5000]
    assert all(b - a <= 2000 for a, b in itertools.pairwise(points))


def test_window_context_covers_the_radius_on_model_blocks() -> None:
    rule = window_context(48, radius=2, block=4)
    assert rule(10, 20) == (8, 24)  # frames 8..21 needed, on blocks 8..11 .. 20..23
    assert rule(0, 10) == (0, 12)
    assert rule(34, 48) == (32, 48)  # the last block ends with the video
    assert window_context(48, radius=3)(10, 20) == (7, 23)


def test_keyframe_context_reaches_the_keyframes_around_the_window() -> None:
    rule = keyframe_context(48, radius=2, keys=[5, 30])
    assert rule(10, 20) == (5, 31)
    assert rule(34, 48) == (30, 48)  # no later keyframe: the window's end
    assert rule(0, 4) == (0, 6)  # frame 5, the last of the window, is the next keyframe itself
    # auto reads one frame past the window
    fused = keyframe_context(48, radius=2, keys=[5, 30], reads_ahead=1)
    assert fused(34, 40) == (30, 43) and rule(34, 40) == (30, 42)
    assert fused(34, 48) == (30, 48)


def test_segments_cover_every_frame_once() -> None:
    segments = plan_segments(48, [20], 16, window_context(48, 2, 4))
    written = [n for s in segments for n in range(s.start, s.end)]
    assert written == list(range(48))
    assert all(s.context_start <= s.start and s.context_end >= s.end for s in segments)


def test_inputs_from_folders_globs_and_manifests(tmp_path: Path) -> None:
    for name in ("a.mp4", "b.mkv", "notes.txt", ".hidden.mp4"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.mov").write_bytes(b"x")
    manifest = tmp_path / "list.jsonl"
    manifest.write_text(
        json.dumps({"input": "sub/c.mov", "output": "c-out.mkv", "options": ["--ref", "3=key.png"]})
        + "\n\n"
        + json.dumps({"input": "a.mp4", "options": "--smooth 0"})
        + "\n"
    )
    table = tmp_path / "list.csv"
    table.write_text("input,output,options\nb.mkv,,--no-smooth\n")
    items = expand_inputs([str(tmp_path), str(manifest), str(table), str(tmp_path / "sub" / "*.mov")])
    assert [Path(i.input).name for i in items] == ["a.mp4", "b.mkv", "c.mov"]
    c = items[2]
    assert c.output == "c-out.mkv" and c.options == ("--ref", f"3={tmp_path / 'key.png'}")
    assert expand_inputs([str(table)]) == [BatchItem(str(tmp_path / "b.mkv"), None, ("--no-smooth",))]
    with pytest.raises(UsageError, match="matches no file"):
        expand_inputs([str(tmp_path / "*.webm")])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"output": "x.mkv"}\n')
    with pytest.raises(UsageError, match="has no 'input'"):
        expand_inputs([str(bad)])


def test_journal_keeps_only_what_is_still_there(tmp_path: Path) -> None:
    out = tmp_path / "seg.mkv"
    out.write_bytes(b"frames")
    journal = Journal(tmp_path, resume=False)
    journal.record({"kind": "segment", "item": "k", "index": 0, "file": str(out), "sha256": sha256_file(out)})
    with open(journal.path, "a") as fh:
        fh.write('{"kind": "item", "item": "k", "files"')  # a line cut short by a crash
    again = Journal(tmp_path, resume=True)
    assert again.done_segment("k", 0) is not None and again.done_item("k") is None
    out.write_bytes(b"changed")
    assert Journal(tmp_path, resume=True).done_segment("k", 0) is None
    assert Journal(tmp_path, resume=False).segments == {}  # without --resume the record starts again


def test_exit_code_says_some_items_failed() -> None:
    ok, bad, model = (
        ItemReport("a", "A", "done"),
        ItemReport("b", "B", "failed", code=3),
        ItemReport("c", "C", "failed", code=4),
    )
    assert exit_code([ok]) == 0
    assert exit_code([ok, model]) == 3  # some failed, whatever the reason
    assert exit_code([model]) == 4 and exit_code([bad, model]) == 3


def test_missing_ray_is_a_usage_error_that_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # what an install without the [batch] extra sees
    clip = tmp_path / "a.mkv"
    clip.write_bytes(b"x")
    assert main(["batch", "colorize", str(clip), "--out", str(tmp_path / "out")]) == 2
    assert "pip install chromaflow[batch]" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
