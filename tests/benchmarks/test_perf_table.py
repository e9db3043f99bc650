"""The README's performance tables are generated from the committed benchmark results and stay current."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import perf_table  # noqa: E402


def test_readme_tables_match_the_committed_results() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "tools" / "perf_table.py"), "--check"], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr


def test_figures_and_machine_come_from_the_results(tmp_path: Path) -> None:
    rows = [
        {"path": "engine", "model": "base", "resolution": "1080p", "device": "cuda", "frames_per_s": fps}
        for fps in (812.5, 1234.56)
    ]
    (tmp_path / "engine.json").write_text(json.dumps({"machine": {"gpu": "Test GPU 9000"}, "rows": rows}))
    block = perf_table.render(tmp_path)
    line = next(x for x in block.splitlines() if "`base`" in x)
    assert "1234.6 frames/s" in line and "Test GPU 9000" in line, (
        "the best batch's rate, on the named machine"
    )
    assert "quality.py" not in block, "absent results add no rows"


def test_deepfake_rows_name_the_rule_and_the_absent_classifiers() -> None:
    run = {"videos": {"a.mp4": {}, "b.mp4": {}}, "accuracy": 0.5, "auc": 0.75, "fps": 2.0}
    data = {"aggregate": "confident", "dfdc": {"mtcnn/meso4-df": run, "mtcnn/effnet-b7-dfdc": "absent"}}
    rows = [what + " | " + figure for what, figure, _ in perf_table.deepfake_rows(data)]
    assert rows == [
        "deepfake, DFDC (2 clips, video score confident), mtcnn/meso4-df | accuracy 50%, AUC 0.75, 2.0 frames/s",
        "deepfake, DFDC, weights absent when measured | effnet-b7-dfdc",
    ]


def test_transfer_ceiling_rows_keep_tuning_and_reporting_apart() -> None:
    def row(match: float, fused: float | None) -> dict[str, float]:
        r = {"match": match, "oracle_flow_match": 1.0, "oracle_all": 2.0, "best_confidence_power": 0.0}
        return r if fused is None else {**r, "fused_fitted_elsewhere": fused}

    gains = {
        "t1": {"key0": row(-1.0, 0.2), "key0_last": row(-2.0, 0.0)},
        "t2": {"key0": row(-3.0, 0.4), "key0_last": row(-2.0, 0.0)},
        "r1": {"key0": row(-0.5, -0.1), "key0_last": row(-1.0, 0.1)},
    }
    rows = list(perf_table.transfer_ceilings_rows({"gains_db": gains, "fit_on": ["t1", "t2"]}))
    assert len(rows) == 2
    what, figure, _ = rows[0]
    assert "tuning (t1, t2) / reporting (r1)" in what and "key 0" in what
    assert "matching alone -2.00 / -0.50" in figure
    assert "fusion fitted on other sequences +0.30 / -0.10" in figure


def test_splice_replaces_only_the_block(tmp_path: Path) -> None:
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{perf_table.START}\nold\n{perf_table.END}\noutro\n")
    results = tmp_path / "results"
    results.mkdir()
    assert perf_table.main(["--readme", str(readme), "--results", str(results), "--check"]) == 1
    assert perf_table.main(["--readme", str(readme), "--results", str(results)]) == 0
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(f"{perf_table.END}\noutro\n") and "old" not in text
    assert perf_table.main(["--readme", str(readme), "--results", str(results), "--check"]) == 0
