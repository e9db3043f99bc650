"""Where video comes from and goes to: files, image sequences, y4m on stdin/stdout; atomic output files.

An output is first written under a temporary name in the destination folder and renamed at the end, so a failed
or interrupted run never leaves a partial file (or a partial image sequence) under the final name.
"""

import contextlib
import os
import re
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import av

from chromaflow.core.errors import InputError, OutputError, UsageError

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
        stream = _PipeReader(stdin if stdin is not None else sys.stdin.buffer)
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
    so frames flow as soon as the writer at the other end sends them."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._read1 = getattr(stream, "read1", stream.read)

    def read(self, size: int = -1) -> bytes:
        return bytes(self._read1(size if size and size > 0 else 1 << 16))


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
        """Move the finished output under its final name."""
        if self.is_pipe:
            return
        if self.is_sequence:
            assert self._temp_dir is not None
            dest = Path(self.final).parent
            for item in sorted(self._temp_dir.iterdir()):
                os.replace(item, dest / item.name)
            self._temp_dir.rmdir()
            self._temp_dir = None
            return
        os.replace(str(self.write_to), self.final)

    def discard(self) -> None:
        """Remove whatever was written (safe to call more than once)."""
        if self.is_pipe:
            return
        if self.is_sequence:
            if self._temp_dir is not None:
                shutil.rmtree(self._temp_dir, ignore_errors=True)
                self._temp_dir = None
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(str(self.write_to))


def prepare_output(
    dest: str | os.PathLike[str], source_name: str | None = None, *, stdout: BinaryIO | None = None
) -> OutputTarget:
    """Check ``dest`` and choose the temporary name; ``-`` means y4m on stdout."""
    if isinstance(dest, str) and dest == STDIO:
        return OutputTarget(STDIO, stdout if stdout is not None else sys.stdout.buffer, "yuv4mpegpipe", True)
    path = os.fspath(dest)
    if source_name is not None and source_name != STDIO and _same_path(source_name, path):
        raise OutputError(f"output {path!r} is the input; choose a different output path")
    folder = Path(path).parent
    if not folder.is_dir():
        raise OutputError(
            f"output folder {str(folder)!r} does not exist; create it first (mkdir -p {folder})"
        )
    if not os.access(folder, os.W_OK):
        raise OutputError(f"output folder {str(folder)!r} is not writable; check its permissions")
    token = secrets.token_hex(4)
    if is_sequence_pattern(path):
        temp_dir = folder / f".chromaflow-partial-{token}"
        temp_dir.mkdir()
        return OutputTarget(
            path, str(temp_dir / Path(path).name), "image2", is_sequence=True, _temp_dir=temp_dir
        )
    if Path(path).is_dir():
        raise OutputError(f"output {path!r} is a folder; give a file name or a pattern like {path}/%05d.png")
    if not Path(path).suffix:
        raise UsageError(
            f"output {path!r} has no extension; add one (.mp4, .mkv, .webm, .mov, .y4m, .nut ...)"
        )
    name = Path(path).name
    temp = folder / f".{Path(name).stem}.chromaflow-partial-{token}{Path(name).suffix}"
    return OutputTarget(path, str(temp), None)


def _same_path(a: str, b: str) -> bool:
    try:
        if os.path.exists(a) and os.path.exists(b):
            return os.path.samefile(a, b)
    except OSError:
        pass
    return os.path.realpath(a) == os.path.realpath(b)
