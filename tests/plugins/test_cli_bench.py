"""`chromaflow bench` measures the real engine with a tiny random-weight net saved to a file."""

import json
from pathlib import Path

import pytest
import torch

from chromaflow.core.errors import UsageError
from chromaflow.core.nets.base import build_base
from chromaflow.plugins.cli.main import main


def test_bench_reports_each_batch_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "tiny.pt"
    torch.save(build_base(width=4).state_dict(), model)
    args = ["bench", "--model", str(model), "--arch", "base", "--size", "32", "--frame-size", "40x24"]
    assert main([*args, "--batch", "1,3", "--repeats", "1", "--device", "cpu", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["batch"] for r in rows] == [1, 3]
    assert all(r["frames_per_s"] > 0 and r["device"] == "cpu" and r["frame"] == "40x24" for r in rows)


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [("--batch", "0", "positive"), ("--batch", "a", "whole numbers"), ("--frame-size", "40by24", "854x480")],
)
def test_bench_rejects_bad_options(
    option: str, value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bench", option, value]) == UsageError.exit_code
    assert message in capsys.readouterr().err
