"""The files a command will read and write, checked against each other before any work starts.

A command lists what it reads (the input file, the frames of an input sequence, reference images, hint files,
model files given as paths) and what it writes (the output, sidecars, compare images, the frames of an output
sequence). :meth:`WritePlan.check` then refuses, with :class:`~chromaflow.core.errors.OutputError` (exit 6) and a
message naming both files:

- an output that is an input or another output: by resolved path, by ``(st_dev, st_ino)`` where the files exist
  (hard links, links), and by frame numbering for sequences (``%d`` and ``%01d`` name the same files);
- an output that cannot be put in place: a folder, something that is not a plain file (a device, a FIFO, which the
  final rename would replace), a file this user may not write, a missing or unwritable folder.

Temporary names need no entry: they are the outputs' partial names (:mod:`chromaflow.core.partials`), unique to
the process, and an input that happens to look like one is never removed as stale.
"""

import os
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from chromaflow.core import partials
from chromaflow.core.errors import OutputError
from chromaflow.core.frame_pattern import FramePattern

Identity = tuple[int, int]


@dataclass(frozen=True)
class _Item:
    """One thing a command reads or writes, as the user named it."""

    given: str
    what: str
    pattern: FramePattern | None = None
    make_folder: bool = False

    @property
    def path(self) -> Path:
        return Path(os.path.abspath(self.given))

    def label(self, frame: str | None = None) -> str:
        text = f"{self.what} {self.given}"
        return f"{text} (its frame {frame})" if frame is not None and self.pattern is not None else text


@dataclass(frozen=True)
class _File:
    """A concrete file of an item: where it is, where it leads, and which file it is if it exists."""

    item: _Item
    path: Path
    real: str
    ident: Identity | None

    @classmethod
    def of(cls, item: _Item, path: Path) -> "_File":
        try:
            info = os.stat(path)
            ident: Identity | None = (info.st_dev, info.st_ino)
        except OSError:
            ident = None
        return cls(item, path, os.path.realpath(path), ident)

    @property
    def places(self) -> set[str]:
        """Where a rename onto this name, or a write through it, lands."""
        return {self.real, os.path.join(os.path.realpath(self.path.parent), self.path.name)}


def _frames(item: _Item) -> list[_File]:
    """The existing files an item names: itself, or the frames of its sequence present now."""
    if item.pattern is None:
        return [_File.of(item, item.path)]
    folder = item.path.parent
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    return [_File.of(item, folder / name) for name in names if item.pattern.names(name) is not None]


class WritePlan:
    """Collects what a run reads and writes; :meth:`check` before any work, then :meth:`remove_stale_partials`."""

    def __init__(self) -> None:
        self.started = time.time()
        self._reads: list[_Item] = []
        self._writes: list[_Item] = []

    # -- collecting -------------------------------------------------------------------------------------
    def read(self, path: str | os.PathLike[str] | None, what: str) -> None:
        """A file the run reads (``None`` and ``-``, stdin, are skipped)."""
        if path is not None and os.fspath(path) != "-":
            self._reads.append(_Item(os.fspath(path), what))

    def read_sequence(self, pattern: str | os.PathLike[str], what: str) -> None:
        """The frames of an input image sequence (``frames/%05d.png``)."""
        text = os.fspath(pattern)
        self._reads.append(_Item(text, what, FramePattern.parse(os.path.basename(text))))

    def write(self, path: str | os.PathLike[str] | None, what: str, *, make_folder: bool = False) -> None:
        """A file the run writes (``None`` and ``-``, stdout, are skipped); ``make_folder``: the run creates
        missing folders on its way."""
        if path is not None and os.fspath(path) != "-":
            self._writes.append(_Item(os.fspath(path), what, make_folder=make_folder))

    def write_sequence(self, pattern: str | os.PathLike[str], what: str) -> None:
        """The frames of an output image sequence: every file the pattern can name in its folder."""
        text = os.fspath(pattern)
        self._writes.append(_Item(text, what, FramePattern.parse(os.path.basename(text))))

    @property
    def read_identities(self) -> frozenset[Identity]:
        return frozenset(f.ident for item in self._reads for f in _frames(item) if f.ident is not None)

    # -- checking ---------------------------------------------------------------------------------------
    def check(self) -> None:
        """Raise :class:`OutputError` for the first output that clashes or cannot be put in place."""
        for item in self._writes:
            _check_writable(item)
        targets = [_Target.of(item) for item in self._writes]
        read_files = [f for item in self._reads for f in _frames(item)]
        for target in targets:
            for other in read_files:
                how = target.overwrites(other)
                if how is not None:
                    raise OutputError(
                        f"{target.item.label(how[0])} is {other.item.label(other.path.name)} ({how[1]}): "
                        f"writing it would destroy it. Nothing was written; choose another name for "
                        f"{target.item.what}"
                    )
        for i, first in enumerate(targets):
            for second in targets[i + 1 :]:
                how = first.collides(second)
                if how is not None:
                    raise OutputError(
                        f"{first.item.label(how[0])} and {second.item.label(how[0])} are {how[1]}: one would "
                        "overwrite the other. Nothing was written; give them different names"
                    )

    def remove_stale_partials(self) -> list[Path]:
        """Remove what interrupted runs left under the partial names of this plan's outputs (the rule is in
        :mod:`chromaflow.core.partials`); files this run reads are never touched."""
        keep = self.read_identities
        removed: list[Path] = []
        for item in self._writes:
            removed += partials.remove_stale(
                item.path, sequence=item.pattern is not None, started=self.started, keep=keep
            )
        return removed


@dataclass(frozen=True)
class _Target:
    """An output with what is needed to compare it: its own file, or its folder and present frames."""

    item: _Item
    file: _File | None
    folder: str
    frames: dict[Identity, str]

    @classmethod
    def of(cls, item: _Item) -> "_Target":
        folder = os.path.realpath(item.path.parent)
        if item.pattern is None:
            return cls(item, _File.of(item, item.path), folder, {})
        frames = {f.ident: f.path.name for f in _frames(item) if f.ident is not None}
        return cls(item, None, folder, frames)

    def overwrites(self, other: _File) -> tuple[str | None, str] | None:
        """(the output's frame name, how) when writing this output would replace or write through ``other``."""
        if self.file is not None:
            if self.file.places & other.places:
                return None, "the same file"
            if self.file.ident is not None and self.file.ident == other.ident:
                return None, "the same file under another name (a hard link)"
            return None
        assert self.item.pattern is not None
        for place in sorted(other.places):
            name = os.path.basename(place)
            if os.path.dirname(place) == self.folder and self.item.pattern.names(name) is not None:
                return name, "the same file"
        if other.ident is not None and other.ident in self.frames:
            return self.frames[other.ident], "the same file under another name (a hard link)"
        return None

    def collides(self, other: "_Target") -> tuple[str | None, str] | None:
        """(a frame name, how) when two outputs would land on the same file."""
        mine, theirs = self.item.pattern, other.item.pattern
        if mine is not None and theirs is not None:
            overlap = (mine.prefix, mine.suffix) == (theirs.prefix, theirs.suffix)
            same = overlap and self.folder == other.folder
            return (None, "the same files") if same else None
        if other.file is not None:
            return self.overwrites(other.file)
        assert self.file is not None
        return other.overwrites(self.file)


# ---------------------------------------------------------------------------------------- can it be written


def _check_writable(item: _Item) -> None:
    folder = item.path.parent
    _check_folder(item, folder)
    targets = [f.path for f in _frames(item)] if item.pattern is not None else [item.path]
    for target in targets:
        _check_target(item, target)


def _check_folder(item: _Item, folder: Path) -> None:
    if folder.is_dir():
        if not os.access(folder, os.W_OK | os.X_OK):
            raise OutputError(
                f"cannot write {item.what} {item.given}: the folder {folder} is not writable; check its "
                "permissions or choose another folder"
            )
        return
    if folder.exists():
        raise OutputError(f"cannot write {item.what} {item.given}: {folder} is a file, not a folder")
    if not item.make_folder:
        raise OutputError(
            f"output folder {str(folder)!r} does not exist; create it first (mkdir -p {folder}) or correct "
            f"{item.what}"
        )
    ancestor = folder
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"cannot create the folder {folder} for {item.what}: {ancestor} is a file")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise OutputError(
            f"cannot create the folder {folder} for {item.what}: {ancestor} is not writable; check its "
            "permissions or choose another folder"
        )


def _check_target(item: _Item, target: Path) -> None:
    try:
        info = os.stat(target)
    except FileNotFoundError:
        return  # nothing there (or a dangling link, which the rename replaces)
    except OSError as err:
        raise OutputError(f"cannot write {item.what} {target}: {err.strerror or err}") from err
    shown = item.label(target.name)
    if stat.S_ISDIR(info.st_mode):
        raise OutputError(f"{shown} is a folder; give a file name")
    if not stat.S_ISREG(info.st_mode):
        raise OutputError(
            f"{shown} exists and is not a plain file (a device, a pipe or a socket); outputs are put in place "
            "by renaming, which would replace it: give the name of a file"
        )
    if not os.access(target, os.W_OK):
        raise OutputError(
            f"{shown} exists and is write-protected, so it is not replaced; make it writable or remove it "
            "first, or choose another name"
        )
    holder = os.stat(target.parent)
    owner = os.lstat(target).st_uid
    uid = os.geteuid()
    if holder.st_mode & stat.S_ISVTX and uid != 0 and uid not in (owner, holder.st_uid):
        raise OutputError(
            f"{shown} belongs to another user in a shared folder (sticky bit) and cannot be replaced; choose "
            "another name"
        )
