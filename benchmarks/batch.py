"""`chromaflow batch` against the plain CLI on the same inputs, in the same run: frames/s for 1 and 2 workers, and
what the scheduling costs per segment.

The inputs are synthetic clips with scene cuts (tests/support/batch_media.py), coloured with the bundled ``base``
model and temporal smoothing. Every command is a fresh process, as a user runs it, so the figures include start-up:
the plain CLI loads torch and the model once per file; a batch starts Ray, its workers, and loads the model once
per worker. Each batch's ``DIR/.chromaflow-batch.jsonl`` gives the seconds each segment took inside its worker;
the scheduling overhead per segment is what the run's wall time holds beyond that work, shared among the
segments::

    overhead per segment = (wall x workers - sum of segment seconds - sum of join seconds) / segments

(worker start-up and Ray's own start are in it; see benchmarks/README.md for the scaling model). The outputs of
every batch are checked frame by frame against the plain CLI's (FFV1, lossless), so a fast wrong answer cannot
pass. Writes a table to stdout and ``benchmarks/results/batch.json``.

    python benchmarks/batch.py [--clips 2] [--frames 120] [--width 160] [--height 96] [--segment-frames 40]
                               [--workers 1 2] [--quick]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests"))  # generated test media: tests/support
sys.path.append(str(HERE))
import numpy as np  # noqa: E402
from _harness import describe_machine, machine  # noqa: E402

from support.batch_media import decoded_planes, write_shots  # noqa: E402

RESULTS = HERE / "results" / "batch.json"
CHROMAFLOW = str(Path(sys.executable).parent / "chromaflow")
OPTIONS = ["--smooth", "2", "--codec", "ffv1", "--quiet"]


def _run(argv: list[str]) -> float:
    started = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed ({done.returncode}): {done.stderr[-2000:]}")
    return time.perf_counter() - started


def _same(a: Path, b: Path) -> bool:
    x, y = decoded_planes(a), decoded_planes(b)
    return len(x) == len(y) and all(np.array_equal(p, q) for p, q in zip(x, y, strict=True))


def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="cf-bench-batch-") as tmp:
        folder = Path(tmp)
        clips = []
        shot = max(2, args.frames // 3)
        for i in range(args.clips):
            path = folder / f"clip{i}.mkv"
            write_shots(path, [shot, args.frames - shot], width=args.width, height=args.height)
            clips.append(path)
        frames = args.clips * args.frames
        rows: list[dict[str, Any]] = []
        plain = folder / "plain"
        plain.mkdir()
        seconds = sum(_run([CHROMAFLOW, "colorize", str(c), str(plain / c.name), *OPTIONS]) for c in clips)
        rows.append({"run": "chromaflow colorize, one file after another", "workers": 1, "seconds": seconds,
                     "fps": frames / seconds})  # fmt: skip
        for workers in args.workers:
            out = folder / f"batch{workers}"
            wall = _run([CHROMAFLOW, "batch", "colorize", *map(str, clips), "--out", str(out), "--workers",
                         str(workers), "--segment-frames", str(args.segment_frames), *OPTIONS])  # fmt: skip
            records = [json.loads(x) for x in (out / ".chromaflow-batch.jsonl").read_text().splitlines()]
            segments = [r for r in records if r["kind"] == "segment"]
            work = sum(r["seconds"] for r in segments)
            report = json.loads((out / "report.json").read_text())
            identical = all(_same(out / c.name, plain / c.name) for c in clips)
            rows.append(
                {
                    "run": f"chromaflow batch, {workers} worker(s)",
                    "workers": workers,
                    "seconds": wall,
                    "fps": frames / wall,
                    "segments": len(segments),
                    "segment_seconds": work,
                    "segment_fps": frames / work if work else None,
                    "overhead_per_segment_s": (wall * workers - work) / max(1, len(segments)),
                    "job_seconds": report["seconds"],
                    "identical_to_cli": identical,
                }
            )
    return {"machine": machine(), "clips": args.clips, "frames_per_clip": args.frames,
            "size": [args.width, args.height], "segment_frames": args.segment_frames, "rows": rows}  # fmt: skip


def table(result: dict[str, Any]) -> str:
    lines = [
        f"batch vs plain CLI: {result['clips']} clips x {result['frames_per_clip']} frames, "
        f"{result['size'][0]}x{result['size'][1]}, segments of <= {result['segment_frames']} frames; "
        f"{describe_machine(result['machine'])}",
        "| run | wall s | frames/s | segments | frames/s inside workers | overhead s/segment | identical |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in result["rows"]:
        seg_fps = r.get("segment_fps")
        lines.append(
            f"| {r['run']} | {r['seconds']:.1f} | {r['fps']:.2f} | {r.get('segments', '-')} | "
            f"{'-' if seg_fps is None else f'{seg_fps:.2f}'} | "
            f"{r['overhead_per_segment_s']:.2f} | {r['identical_to_cli']} |"
            if "segments" in r
            else f"| {r['run']} | {r['seconds']:.1f} | {r['fps']:.2f} | - | - | - | (reference) |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--frames", type=int, default=120)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=96)
    parser.add_argument("--segment-frames", type=int, default=40)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--quick", action="store_true", help="2 clips x 48 frames at 64x48")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    if args.quick:
        args.frames, args.width, args.height, args.segment_frames = 48, 64, 48, 16
    result = run(args)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
