"""Where video comes from and goes to: files, image sequences, y4m on stdin/stdout; atomic output files.

An output is first written under a partial name in the destination folder (:mod:`chromaflow.core.partials`) and
renamed at the end, so a failed or interrupted run never leaves a partial file (or a partial image sequence) under
the final name. Before anything is written the output is checked against the input (by path, by inode, by the
files a sequence pattern names: :mod:`chromaflow.core.write_plan`) and its name against the containers FFmpeg
knows.
"""

import contextlib
import io
import os
import re
import select
import shutil
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import av

from chromaflow.core import partials, stopping
from chromaflow.core.errors import InputError, OutputError, UsageError
from chromaflow.core.write_plan import WritePlan

STDIO = "-"
_PATTERN = re.compile(r"%0?\d*d")
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".exr", ".dpx", ".ppm", ".pgm"}


def is_sequence_pattern(path: str | os.PathLike[str]) -> bool:
    """``frames/%05d.png``-style names (FFmpeg's image2 numbering) denote image sequences."""
    text = os.fspath(path)
    return bool(_PATTERN.search(os.path.basename(text))) and Path(text).suffix.lower() in IMAGE_EXTENSIONS


@dataclass
class InputSource:
    """An opened input container and a name for messages."""

    container: av.container.InputContainer
    name: str
    is_pipe: bool = False


def open_input(
    source: str | os.PathLike[str] | BinaryIO,
    *,
    framerate: str | None = None,
    options: dict[str, str] | None = None,
    stdin: BinaryIO | None = None,
) -> InputSource:
    """Open a file, an image-sequence pattern, ``-`` (y4m on stdin) or a readable binary file object."""
    opts = dict(options or {})
    if isinstance(source, str) and source == STDIO:
        reader = stdin if stdin is not None else sys.stdin.buffer
        stream = _PipeReader(reader, _waitable_fd(reader))
        return InputSource(
            _open_read(stream, "stdin (y4m)", "yuv4mpegpipe", opts), "stdin (y4m)", is_pipe=True
        )
    if not isinstance(source, str | os.PathLike):
        return InputSource(_open_read(source, "input stream", None, opts), "input stream", is_pipe=True)
    path = os.fspath(source)
    if is_sequence_pattern(path):
        folder = Path(path).parent
        if not folder.is_dir():
            raise InputError(f"image sequence folder {folder} does not exist; check the path of {path!r}")
        if framerate:
            opts.setdefault("framerate", str(framerate))
        return InputSource(_open_read(path, path, "image2", opts), path)
    p = Path(path)
    if not p.exists():
        raise InputError(f"input {path!r} does not exist; check the path (use '-' to read y4m from stdin)")
    if p.is_dir():
        raise InputError(
            f"input {path!r} is a folder; give a video file or an image sequence pattern like {path}/%05d.png"
        )
    if not os.access(p, os.R_OK):
        raise InputError(f"input {path!r} is not readable; check its permissions")
    return InputSource(_open_read(path, path, None, opts), path)


class _PipeReader:
    """Hands FFmpeg whatever bytes a pipe has ready instead of blocking until a whole buffer is full,
    so frames flow as soon as the writer at the other end sends them.

    With ``fd`` (our own stdin), it waits for data in short steps and ends the stream once a stop signal has
    arrived: a writer that has gone quiet must not keep a stopped run (and its partial output) waiting."""

    def __init__(self, stream: BinaryIO, fd: int | None = None) -> None:
        self._stream = stream
        self._read1 = getattr(stream, "read1", stream.read)
        self._fd = fd

    def read(self, size: int = -1) -> bytes:
        if self._fd is not None:
            while not select.select([self._fd], [], [], 0.1)[0]:
                if stopping.requested():
                    return b""
        return bytes(self._read1(size if size and size > 0 else 1 << 16))


def _waitable_fd(stream: object) -> int | None:
    """The descriptor behind ``stream`` where it can be waited on (a pipe, FIFO, socket or terminal on POSIX),
    else None. A wrapper passes it on by offering ``fileno()``."""
    if os.name != "posix":
        return None
    try:
        fd = int(stream.fileno())  # type: ignore[attr-defined]
        mode = os.fstat(fd).st_mode
    except (OSError, ValueError, AttributeError, TypeError, io.UnsupportedOperation):
        return None
    return fd if stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or stat.S_ISCHR(mode) else None


def _open_read(
    what: "str | BinaryIO | _PipeReader", name: str, fmt: str | None, options: dict[str, str]
) -> av.container.InputContainer:
    try:
        return av.open(what, mode="r", format=fmt, options=options)
    except av.error.FFmpegError as err:
        hint = "is it a complete video file?"
        if fmt == "yuv4mpegpipe":
            hint = "pipe y4m into it, e.g. ffmpeg -i in.mp4 -f yuv4mpegpipe - | chromaflow ..."
        elif fmt == "image2":
            hint = "no image matches the pattern, or the first image cannot be read"
        raise InputError(f"cannot open {name}: {_reason(err)}; {hint}") from err


def _reason(err: BaseException) -> str:
    text = getattr(err, "strerror", None) or str(err)
    return str(text).rstrip(".")


@dataclass
class OutputTarget:
    """The final destination and the temporary place a run writes to until :meth:`commit`."""

    final: str
    write_to: str | BinaryIO
    format: str | None
    is_pipe: bool = False
    is_sequence: bool = False
    _temp_dir: Path | None = None
    _extra: list[Path] = field(default_factory=list)

    @property
    def suffix(self) -> str:
        return "" if self.is_pipe else Path(self.final).suffix.lower()

    def commit(self) -> None:
        """Move the finished output under its final name (stop signals wait until it is there)."""
        if self.is_pipe:
            return
        stopping.pause_at("commit")
        with stopping.moving_into_place():
            try:
                if self.is_sequence:
                    assert self._temp_dir is not None
                    dest = Path(self.final).parent
                    for item in sorted(self._temp_dir.iterdir()):
                        os.replace(item, dest / item.name)
                    self._temp_dir.rmdir()
                    partials.untrack(self._temp_dir)
                    self._temp_dir = None
                    return
                os.replace(str(self.write_to), self.final)
                partials.untrack(str(self.write_to))
            except OSError as err:
                raise OutputError(f"cannot put {self.final} in place: {err.strerror or err}") from err

    def discard(self) -> None:
        """Remove whatever was written (safe to call more than once)."""
        if self.is_pipe:
            return
        if self.is_sequence:
            if self._temp_dir is not None:
                shutil.rmtree(self._temp_dir, ignore_errors=True)
                partials.untrack(self._temp_dir)
                self._temp_dir = None
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(self.write_to))
        partials.untrack(str(self.write_to))


_CONTAINERS_HINT = ".mp4, .mkv, .webm, .mov, .nut, .y4m, .avi, or an image sequence such as frames/%05d.png"


def check_output_name(dest: str | os.PathLike[str]) -> None:
    """Refuse (:class:`UsageError`, exit 2) an output name no container is known for, before any work.

    FFmpeg guesses the container from the name as ``av.open(name, "w")`` does; opening for writing creates no
    file until the first packet, and the name is tried inside a folder that does not exist, so nothing is made."""
    path = os.fspath(dest)
    if path == STDIO:
        return
    if not is_sequence_pattern(path) and not Path(path).suffix:
        raise UsageError(f"output {path!r} has no extension; add one ({_CONTAINERS_HINT})")
    probe = os.path.join(os.path.sep, f"chromaflow-name-check-{os.getpid()}-absent", Path(path).name)
    try:
        av.open(probe, mode="w").close()
    except (ValueError, av.error.FFmpegError) as err:
        raise UsageError(
            f"output {path!r}: no container format is known for {Path(path).suffix!r} ({_reason(err)}); "
            f"use {_CONTAINERS_HINT}"
        ) from err


def prepare_output(
    dest: str | os.PathLike[str], source_name: str | None = None, *, stdout: BinaryIO | None = None
) -> OutputTarget:
    """Check ``dest`` (its name, its folder, that it is not the input) and choose its partial name; ``-`` means
    y4m on stdout. Stale partials an interrupted run left for ``dest`` are removed."""
    if isinstance(dest, str) and dest == STDIO:
        return OutputTarget(STDIO, stdout if stdout is not None else sys.stdout.buffer, "yuv4mpegpipe", True)
    path = os.fspath(dest)
    check_output_name(path)
    sequence = is_sequence_pattern(path)
    plan = WritePlan()
    if source_name is not None and source_name != STDIO:
        if is_sequence_pattern(source_name):
            plan.read_sequence(source_name, "the input")
        else:
            plan.read(source_name, "the input")
    if sequence:
        plan.write_sequence(path, "the output")
    else:
        plan.write(path, "the output")
    plan.check()
    plan.remove_stale_partials()
    if sequence:
        temp_dir = partials.partial_folder(path)
        try:
            temp_dir.mkdir()
        except OSError as err:
            raise OutputError(f"cannot write {path}: {err.strerror or err}") from err
        partials.track(temp_dir)
        return OutputTarget(
            path, str(temp_dir / Path(path).name), "image2", is_sequence=True, _temp_dir=temp_dir
        )
    temp = partials.partial_file(path)
    partials.track(temp)
    return OutputTarget(path, str(temp), None)
