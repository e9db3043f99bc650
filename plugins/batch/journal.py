"""``DIR/.chromaflow-batch.jsonl``: what a batch has finished, one JSON line per segment and per item.

Each line names the file written and its SHA-256, so ``--resume`` skips only work whose result is still there
unchanged. Lines are appended and flushed to disk as work finishes; a line cut short by a crash is ignored.
"""

import hashlib
import json
import os
import threading
from pathlib import Path
from typing import Any

JOURNAL_NAME = ".chromaflow-batch.jsonl"


def sha256_file(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def verified(path: str | os.PathLike[str], sha256: str) -> bool:
    """True when ``path`` exists and still has the recorded hash."""
    try:
        return sha256_file(path) == sha256
    except OSError:
        return False


class Journal:
    """The batch's record of finished work (module docstring). ``resume``: keep what an earlier run recorded."""

    def __init__(self, folder: str | os.PathLike[str], resume: bool) -> None:
        self.path = Path(folder) / JOURNAL_NAME
        self.segments: dict[tuple[str, int], dict[str, Any]] = {}
        self.items: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()
        if resume and self.path.exists():
            for line in self.path.read_text(encoding="utf-8", errors="replace").splitlines():
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue
                self._remember(record)
        else:
            self.path.write_text("", encoding="utf-8")

    def _remember(self, record: Any) -> None:
        if not isinstance(record, dict):
            return
        if record.get("kind") == "segment":
            self.segments[(str(record.get("item")), int(record.get("index", -1)))] = record
        elif record.get("kind") == "item":
            self.items[str(record.get("item"))] = record

    def record(self, record: dict[str, Any]) -> None:
        """Append one finished segment or item and make it durable."""
        with self._lock:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(record, separators=(",", ":")) + "\n")
                fh.flush()
                os.fsync(fh.fileno())
            self._remember(record)

    def done_segment(self, item: str, index: int) -> dict[str, Any] | None:
        """The record of a finished segment whose file is still there unchanged, else None."""
        record = self.segments.get((item, index))
        if record is None or not verified(record["file"], record["sha256"]):
            return None
        return record

    def done_item(self, item: str) -> dict[str, Any] | None:
        """The record of a finished item whose outputs are all still there unchanged, else None."""
        record = self.items.get(item)
        if record is None:
            return None
        for path, digest in record.get("files", {}).items():
            if not verified(path, digest):
                return None
        return record
