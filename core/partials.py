"""Partial names: where an output is written until it is complete, and how a later run knows a leftover one.

Every output is first written under a partial name in its own folder and renamed at the end, so no one ever sees a
half-written file under the final name. The partial name carries the writer's process id::

    out.mp4          ->  .out.chromaflow-partial-<pid>-<8 hex>.mp4
    scores.jsonl     ->  .scores.chromaflow-partial-<pid>-<8 hex>.jsonl
    frames/%05d.png  ->  frames/.#####.png.chromaflow-partial-<pid>-<8 hex>/    (a folder of frames)

A run that was killed outright (SIGKILL, a power cut) cannot clean up. A later run writing the same output removes
such a leftover only when it is *stale*, that is when all of these hold:

- its name is the partial name of that very output (the output's own name, ``chromaflow-partial``, a process id
  and 8 hex digits);
- it is a plain file, not a link, owned by the user now running chromaflow (for a sequence: a folder holding
  nothing but plain files named by the output's own frame pattern);
- the process named in it is not running on this machine;
- it was last changed before the current run started.

Anything else is left alone, whatever its name. Partials of the running process are also registered here, so
that a second stop signal, which exits at once (see :mod:`chromaflow.core.stopping`), can still remove them.
"""

import contextlib
import logging
import os
import re
import secrets
import shutil
import stat
import threading
from pathlib import Path

from chromaflow.core.frame_pattern import FramePattern

log = logging.getLogger("chromaflow.partials")

MARK = "chromaflow-partial"

_live: set[Path] = set()
_live_lock = threading.Lock()


def _file_parts(final: Path) -> tuple[str, str]:
    """(stem, suffix) of a single output: the suffix stays last so encoders still choose by extension."""
    return final.stem, final.suffix


def _sequence_tag(pattern: FramePattern) -> str:
    """The frame pattern with its number written as ``#``: FFmpeg reads a ``%`` anywhere in the path it writes
    to as part of a pattern, so the folder's name holds none."""
    return (pattern.prefix + "#" * max(1, pattern.width) + pattern.suffix).replace("%", "_")


def partial_file(final: str | os.PathLike[str]) -> Path:
    """A new partial name for the single file ``final``, in the same folder (not created)."""
    path = Path(final)
    stem, suffix = _file_parts(path)
    return path.with_name(f".{stem}.{MARK}-{os.getpid()}-{secrets.token_hex(4)}{suffix}")


def partial_folder(pattern_path: str | os.PathLike[str]) -> Path:
    """A new partial folder for the frames of the sequence ``pattern_path``, beside them (not created)."""
    path = Path(pattern_path)
    tag = _sequence_tag(FramePattern.parse(path.name))
    return path.with_name(f".{tag}.{MARK}-{os.getpid()}-{secrets.token_hex(4)}")


def _partial_regex(final: Path, sequence: bool) -> re.Pattern[str]:
    if sequence:
        tag = _sequence_tag(FramePattern.parse(final.name))
        return re.compile(rf"\.{re.escape(tag)}\.{MARK}-(\d+)-[0-9a-f]{{8}}")
    stem, suffix = _file_parts(final)
    return re.compile(rf"\.{re.escape(stem)}\.{MARK}-(\d+)-[0-9a-f]{{8}}{re.escape(suffix)}")


def process_running(pid: int) -> bool:
    """Whether a process with this id exists on this machine (another user's counts)."""
    if pid <= 0:
        return True  # not a real owner: never treat as gone
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale_file(entry: os.DirEntry[str]) -> bool:
    info = entry.stat(follow_symlinks=False)
    return stat.S_ISREG(info.st_mode)


def _stale_folder(entry: os.DirEntry[str], pattern: FramePattern) -> bool:
    if not entry.is_dir(follow_symlinks=False):
        return False
    with os.scandir(entry.path) as inner:
        return all(
            item.is_file(follow_symlinks=False) and pattern.names(item.name) is not None for item in inner
        )


def find_stale(
    final: str | os.PathLike[str],
    *,
    sequence: bool,
    started: float,
    keep: frozenset[tuple[int, int]] = frozenset(),
) -> list[Path]:
    """The stale partials of the output ``final`` (see the module's rule); ``started``: when this run began.

    ``keep``: ``(st_dev, st_ino)`` of files this run reads, which are never stale whatever their name."""
    path = Path(final)
    folder = path.parent
    if not folder.is_dir():
        return []
    regex = _partial_regex(path, sequence)
    pattern = FramePattern.parse(path.name) if sequence else None
    uid = os.geteuid()
    found: list[Path] = []
    with os.scandir(folder) as entries:
        for entry in entries:
            match = regex.fullmatch(entry.name)
            if match is None:
                continue
            try:
                info = entry.stat(follow_symlinks=False)
                if info.st_uid != uid or info.st_mtime >= started or (info.st_dev, info.st_ino) in keep:
                    continue
                if process_running(int(match.group(1))):
                    continue
                ours = _stale_folder(entry, pattern) if pattern is not None else _stale_file(entry)
            except OSError:
                continue
            if ours:
                found.append(Path(entry.path))
    return sorted(found)


def remove_stale(
    final: str | os.PathLike[str],
    *,
    sequence: bool,
    started: float,
    keep: frozenset[tuple[int, int]] = frozenset(),
) -> list[Path]:
    """Remove the stale partials of ``final``; returns what was removed (a warning names each)."""
    removed: list[Path] = []
    for path in find_stale(final, sequence=sequence, started=started, keep=keep):
        try:
            if path.is_dir():
                for item in path.iterdir():
                    item.unlink()
                path.rmdir()
            else:
                path.unlink()
        except OSError as err:
            log.warning("could not remove %s, left by an interrupted run: %s", path, err)
            continue
        log.warning("removed %s, left by an interrupted run of %s", path.name, Path(final).name)
        removed.append(path)
    return removed


# -------------------------------------------------------------------------------- partials of this process


def track(path: str | os.PathLike[str]) -> None:
    """Register a partial of this process (a file or a folder) for :func:`remove_tracked`."""
    with _live_lock:
        _live.add(Path(path))


def untrack(path: str | os.PathLike[str]) -> None:
    with _live_lock:
        _live.discard(Path(path))


def tracked() -> list[Path]:
    with _live_lock:
        return sorted(_live)


def remove_tracked() -> None:
    """Remove every registered partial now (the last thing before an immediate exit)."""
    with _live_lock:
        paths = sorted(_live)
        _live.clear()
    for path in paths:
        with contextlib.suppress(OSError):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
