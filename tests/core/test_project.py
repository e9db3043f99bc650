"""The studio's project file: schema version 1 read, checked and turned into the engine's inputs."""

import json
from pathlib import Path

import numpy as np
import pytest

from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.hints import Hint
from chromaflow.core.project import (
    load_project,
    project_from_json,
    save_project,
    store_reference,
)

RED = {"x": 4, "y": 5, "color": "#ff0000", "radius": 2}


def _doc(**fields: object) -> dict:
    return {"chromaflow_project": 1, **fields}


def test_shot_hints_come_before_the_frames_own_and_cover_the_shot() -> None:
    project = project_from_json(
        _doc(frame_hints={"2": [RED]}, shot_hints=[{"start": 1, "end": 3, "hints": ["1,1,#00ff00"]}]), "/tmp"
    )
    green = Hint(1, 1, (0, 255, 0))
    assert project.hints_by_frame(4) == {1: [green], 2: [green, Hint(4, 5, (255, 0, 0), 2)]}
    hints, refs = project.engine_inputs(4)
    assert refs is None and hints is not None and sorted(hints) == [1, 2]
    options = project.options(device="cpu", batch_size=3)
    assert (options.model, options.smooth, options.device, options.batch_size) == ("base", 2, "cpu", 3)


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"chromaflow_project": 2}, "project version 2 is not known"),
        ({"hints": []}, "not a chromaflow project"),
        (_doc(colour="red"), "unknown field"),
        (_doc(frame_hints={"1": [{"x": 1, "y": 2, "color": "red"}]}), "hints of frame 1: bad hint colour"),
        (_doc(frame_hints={"-1": [RED]}), "frame_hints key '-1' is not a frame number"),
        (_doc(shot_hints=[{"start": 5, "end": 5, "hints": []}]), "must end after it"),
        (
            _doc(shot_hints=[{"start": 0, "end": 5, "hints": []}, {"start": 3, "end": 8, "hints": []}]),
            "overlap",
        ),
        (_doc(smooth=-1), "radius"),
        (_doc(transfer="paint"), "transfer"),
        (_doc(size=20), "multiple of 8"),
        (_doc(model=3), "model must be a model name"),
    ],
)
def test_bad_projects_are_refused_with_what_to_do(doc: dict, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        project_from_json(doc, "/tmp")


def test_missing_reference_and_mixed_sources_are_refused(tmp_path: Path) -> None:
    project = project_from_json(_doc(keyframes={"0": "gone.png"}), tmp_path)
    with pytest.raises(
        InputError, match=r"gone\.png, which does not exist; keep the reference images beside"
    ):
        project.engine_inputs(3)
    path = tmp_path / "p.json"
    save_project(project_from_json(_doc(frame_hints={"0": [RED]}), tmp_path), path)
    with_key = store_reference(load_project(path), path, 1, np.full((6, 8, 3), 90, np.uint8))
    assert with_key.keyframes == {1: "p.refs/key-000001.png"}
    assert (tmp_path / "p.refs" / "key-000001.png").is_file()
    with pytest.raises(UsageError, match="both colour hints and keyframes"):
        with_key.engine_inputs(3)
    with pytest.raises(UsageError, match="keyframe at frame 1, but the input has 1 frames"):
        with_key.references(1)
    none = project_from_json(_doc(model="none"), tmp_path)
    with pytest.raises(UsageError, match='model "none" and no keyframes'):
        none.engine_inputs(3)


def test_save_then_load_gives_the_same_project_and_baking_drops_the_frames_hints(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    project = project_from_json(
        _doc(source="clip.mkv", model="base", size=128, frame_hints={"0": [RED], "2": [RED]}), tmp_path
    )
    save_project(project, path)
    assert json.loads(path.read_text())["chromaflow_project"] == 1
    again = load_project(path)
    assert again == project and again.source_path() == tmp_path / "clip.mkv"
    baked = store_reference(again, path, 2, np.zeros((4, 4, 3), np.uint8))
    assert sorted(baked.frame_hints) == [0] and 2 in baked.keyframes
    assert not list(tmp_path.glob("*.partial*")) and not list((tmp_path / "p.refs").glob(".*"))


def test_unreadable_project_files_are_input_errors(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        load_project(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(InputError, match="not valid JSON"):
        load_project(tmp_path / "bad.json")
