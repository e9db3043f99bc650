"""`chromaflow deepfake --detector mtcnn` end to end on the start of a DFDC dev clip: the weights imported from
facenet-pytorch's folder with `chromaflow models import mtcnn`, faces found, tracked, scored and written."""

import json
from fractions import Fraction
from pathlib import Path

import av
import pytest

from chromaflow.core import registry
from chromaflow.plugins.cli.main import main

facenet = pytest.importorskip("facenet_pytorch")  # the oracle package carries the published weights


@pytest.fixture
def dfdc_start(shared: Path, tmp_path: Path) -> Path:
    """The first three frames of the real DFDC dev clip (1920 x 1080), re-encoded losslessly."""
    path = tmp_path / "lynaeydofd-start.mkv"
    with (
        av.open(str(shared / "data/deepfake-dev/dfdc/lynaeydofd.mp4")) as src,
        av.open(str(path), "w") as out,
    ):
        stream = out.add_stream("ffv1", rate=30)
        stream.width, stream.height, stream.pix_fmt = 1920, 1080, "yuv420p"
        for i, frame in enumerate(src.decode(video=0)):
            if i == 3:
                break
            frame = frame.reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 30)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def test_deepfake_with_mtcnn_finds_faces_and_writes_scores(
    shared: Path, dfdc_start: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    registry.import_file("meso4-df", shared / "models/mesonet/Meso4_DF.h5")
    assert main(["models", "import", "mtcnn", str(Path(facenet.__file__).parent / "data")]) == 0
    assert all(registry.verify(f"mtcnn-{net}").ok for net in ("pnet", "rnet", "onet"))
    assert len(capsys.readouterr().out.splitlines()) == 3  # the three cached paths
    scores = tmp_path / "out.jsonl"
    code = main(["deepfake", str(dfdc_start), "--detector", "mtcnn", "--classifier", "meso4-df",
                 "--scores", str(scores), "--json", "--device", "cpu"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = [json.loads(line) for line in scores.read_text().splitlines()]
    frames, video = lines[:-1], lines[-1]["video"]
    assert [row["frame"] for row in frames] == [0, 1, 2]
    assert all(len(row["faces"]) == 1 for row in frames)  # one person on screen
    assert len({face["track"] for row in frames for face in row["faces"]}) == 1  # one track across the frames
    assert video["detector"] == "mtcnn" and video["frames_with_faces"] == 3 and 0 <= video["score"] <= 1
    assert json.loads(captured.out)["video"]["detector"] == "mtcnn"


def test_deepfake_with_mtcnn_but_no_weights_says_how_to_get_them(
    dfdc_start: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["deepfake", str(dfdc_start), "--detector", "mtcnn", "--device", "cpu"]) == 4
    assert "chromaflow models download mtcnn" in capsys.readouterr().err
