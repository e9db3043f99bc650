"""What a batch processes: files, folders, globs and manifests turned into one :class:`BatchItem` per input.

A manifest is a ``.jsonl`` file (one object per line: ``{"input": ..., "output": ..., "options": [...]}``, or
``"options"`` as a string) or a ``.csv`` file with the columns ``input``, ``output`` and ``options`` (the last two
optional). ``output`` is the item's file name inside the output folder; ``options`` are the verb's own flags for
that item alone, e.g. ``--ref 12=key.png``. Relative paths in a manifest are taken from the manifest's folder.
"""

import csv
import glob
import json
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from chromaflow.core.errors import InputError, UsageError

VIDEO_SUFFIXES = {
    ".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".mxf", ".ts", ".mts", ".mpg", ".mpeg", ".y4m", ".nut",
    ".wmv", ".flv", ".ogv",
}  # fmt: skip
MANIFEST_SUFFIXES = {".jsonl", ".csv"}


@dataclass(frozen=True)
class BatchItem:
    """One input: its path, the output name chosen for it (None: the input's), and its own verb flags."""

    input: str
    output: str | None = None
    options: tuple[str, ...] = field(default_factory=tuple)


def expand_inputs(specs: list[str]) -> list[BatchItem]:
    """Every item named by ``specs``, in order, each input once. A name that matches nothing is kept as an item
    (it fails alone, as a missing input); a glob that matches nothing is refused, since it names no file."""
    items: list[BatchItem] = []
    for spec in specs:
        path = Path(spec).expanduser()
        if path.suffix.lower() in MANIFEST_SUFFIXES and path.is_file():
            items.extend(read_manifest(path))
        elif path.is_dir():
            items.extend(BatchItem(str(p)) for p in sorted(path.iterdir()) if _is_video(p))
        elif glob.has_magic(spec):
            matches = sorted(glob.glob(os.path.expanduser(spec), recursive=True))
            if not matches:
                raise UsageError(
                    f"{spec!r} matches no file; check the pattern (quote it so the shell does not)"
                )
            items.extend(BatchItem(p) for p in matches if Path(p).is_file())
        else:
            items.append(BatchItem(str(path)))
    seen: set[str] = set()
    unique = []
    for item in items:
        key = os.path.abspath(item.input)
        if key not in seen:
            seen.add(key)
            unique.append(item)
    if not unique:
        raise UsageError("no input: name video files, folders, globs or a manifest (.jsonl / .csv)")
    return unique


def _is_video(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in VIDEO_SUFFIXES and not path.name.startswith(".")


def read_manifest(path: Path) -> list[BatchItem]:
    """The items of a ``.jsonl`` or ``.csv`` manifest (module docstring)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the manifest {path}: {err}") from err
    rows: list[dict[str, object]] = []
    if path.suffix.lower() == ".csv":
        rows = [dict(r) for r in csv.DictReader(text.splitlines())]
    else:
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise UsageError(
                    f"{path} line {number}: not JSON ({err.msg}); write one object per line"
                ) from None
            if not isinstance(row, dict):
                raise UsageError(f'{path} line {number}: write an object such as {{"input": "a.mp4"}}')
            rows.append(row)
    return [_item(path, i, row) for i, row in enumerate(rows, 1)]


def _item(manifest: Path, number: int, row: dict[str, object]) -> BatchItem:
    source = row.get("input")
    if not isinstance(source, str) or not source.strip():
        raise UsageError(f"{manifest} item {number}: it has no 'input'")
    output = row.get("output") or None
    if output is not None and (not isinstance(output, str) or os.path.basename(output) != output):
        raise UsageError(f"{manifest} item {number}: 'output' is a file name inside --out, got {output!r}")
    raw = row.get("options") or ()
    if isinstance(raw, str):
        options = tuple(shlex.split(raw))
    elif isinstance(raw, list | tuple) and all(isinstance(o, str) for o in raw):
        options = tuple(str(o) for o in raw)
    else:
        raise UsageError(f"{manifest} item {number}: 'options' is a list of flags or one string of them")
    base = manifest.parent
    resolved = source if os.path.isabs(source) else str(base / source)
    return BatchItem(resolved, output, tuple(_resolve_ref(o, base) for o in options))


def _resolve_ref(option: str, base: Path) -> str:
    """``N=IMAGE`` values are taken from the manifest's folder when IMAGE is relative."""
    head, sep, tail = option.partition("=")
    if sep and head.strip().isdigit() and tail and not os.path.isabs(tail) and not tail.startswith("-"):
        return f"{head}={base / tail}"
    return option
