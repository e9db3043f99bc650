"""What a batch tells: one progress line or bar for the whole job, the summary table, report.json, scores.csv.

Progress goes to stderr: a tqdm bar (items, frames, fps, ETA) or, with ``--progress json``, lines such as
``{"items_done": 2, "items": 5, "frames": 900, "total": 3000, "fps": 41.5, "eta_s": 50.6}`` (``total`` and
``eta_s`` null until every input was scanned).
"""

import csv
import json
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPORT_NAME = "report.json"
SCORES_NAME = "scores.csv"


@dataclass
class ItemReport:
    """One item's outcome, as report.json lists it."""

    input: str
    output: str | None
    status: str = "pending"  # done, skipped (finished by an earlier run), failed
    frames: int = 0
    seconds: float = 0.0
    error: str | None = None
    code: int = 0
    segments: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] | None = None  # deepfake: the video line

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "input": self.input,
            "output": self.output,
            "status": self.status,
            "frames": self.frames,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }
        if self.segments:
            out["segments"] = self.segments
        if self.summary is not None:
            out["video"] = self.summary
        return out


class JobProgress:
    """Progress of the whole job on stderr (module docstring). ``mode``: auto, bar, json or none."""

    def __init__(self, mode: str, items: int, interval: float = 0.5) -> None:
        if mode == "auto":
            mode = "bar" if sys.stderr.isatty() else "none"
        self.mode = mode
        self.items = items
        self.items_done = 0
        self.frames = 0
        self.total: int | None = None
        self._started = time.monotonic()
        self._last = 0.0
        self._interval = interval
        self._bar: Any = None
        if mode == "bar":
            from tqdm import tqdm

            self._bar = tqdm(desc="batch", unit="frame", file=sys.stderr, dynamic_ncols=True)
        self._show(force=True)

    def add_total(self, frames: int) -> None:
        self.total = (self.total or 0) + frames
        if self._bar is not None:
            self._bar.total = self.total
            self._bar.refresh()

    def add_frames(self, frames: int) -> None:
        self.frames += frames
        if self._bar is not None:
            self._bar.update(frames)
        self._show()

    def item_done(self) -> None:
        self.items_done += 1
        self._show(force=True)

    def _show(self, force: bool = False) -> None:
        if self._bar is not None:
            self._bar.set_postfix_str(f"items {self.items_done}/{self.items}", refresh=True)
            return
        now = time.monotonic()
        if self.mode != "json" or (not force and now - self._last < self._interval):
            return
        elapsed = now - self._started
        fps = self.frames / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.frames) / fps if self.total is not None and fps > 0 else None
        line = {
            "items_done": self.items_done,
            "items": self.items,
            "frames": self.frames,
            "total": self.total,
            "fps": round(fps, 2),
            "eta_s": None if eta is None else round(eta, 1),
        }
        print(json.dumps(line), file=sys.stderr, flush=True)
        self._last = now

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        else:
            self._show(force=True)


def summary_table(items: list[ItemReport]) -> str:
    """A plain-text table of the items (status, frames, seconds, error)."""
    rows = [("status", "frames", "seconds", "input", "error")]
    for item in items:
        rows.append(
            (
                item.status,
                str(item.frames),
                f"{item.seconds:.1f}",
                os.path.basename(item.input),
                item.error or "",
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(r[:4], widths, strict=False)) + "  " + r[4] for r in rows
    ]
    counts = {s: sum(i.status == s for i in items) for s in ("done", "skipped", "failed")}
    lines.append(f"{counts['done']} done, {counts['skipped']} already done, {counts['failed']} failed")
    return "\n".join(line.rstrip() for line in lines)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_report(folder: Path, verb: str, items: list[ItemReport], seconds: float) -> dict[str, Any]:
    """``DIR/report.json``: the job and every item; returned as written."""
    data = {
        "verb": verb,
        "seconds": round(seconds, 3),
        "items": [i.to_json() for i in items],
        "done": sum(i.status in ("done", "skipped") for i in items),
        "failed": sum(i.status == "failed" for i in items),
    }
    write_json_atomic(folder / REPORT_NAME, data)
    return data


def write_scores(folder: Path, items: list[ItemReport]) -> None:
    """``DIR/scores.csv``: one row per scored video (score, verdict, frames with faces, model)."""
    path = folder / SCORES_NAME
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["input", "score", "verdict", "frames", "frames_with_faces", "model", "detector"])
        for item in items:
            video = item.summary
            if video is None:
                continue
            score = video.get("score")
            verdict = video.get("verdict") or ("no face" if score is None else "")
            writer.writerow(
                [
                    item.input,
                    "" if score is None else f"{score:.6f}",
                    verdict,
                    video.get("frames"),
                    video.get("frames_with_faces"),
                    video.get("model"),
                    video.get("detector"),
                ]
            )
    os.replace(tmp, path)
