"""y4m (YUV4MPEG2) input: the header checked before FFmpeg reads it, and a stream cut inside a frame noticed.

FFmpeg's y4m reader turns a header whose frame size it cannot handle into "Device or resource busy", and it drops
a last frame cut short without a word, so a pipe that broke mid-frame looked like a complete run. Here the header
line is parsed first (a clear :class:`InputError` for a size FFmpeg refuses), and the stream's layout -- header,
then ``FRAME`` lines each followed by one frame of samples -- is followed: by seeking through a file (or any seekable
binary object) before the run, and by watching the bytes of a pipe as FFmpeg reads them.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

from chromaflow.core.errors import InputError

MAGIC = b"YUV4MPEG2"
_MAX_LINE = 4096  # a longer header or FRAME line is not y4m
# FFmpeg's av_image_check_size: 8 * (W + 128) * (H + 128) must stay under INT_MAX
_FFMPEG_AREA_LIMIT = (2**31 - 1) // 8
# chroma plane (width divisor, height divisor) or None for no chroma, per colour-space family
_CHROMA = {"420": (2, 2), "422": (2, 1), "444": (1, 1), "411": (4, 1), "440": (1, 2), "mono": None}


@dataclass(frozen=True)
class Y4mHeader:
    """The stream header: frame size, colour space (``C`` tag, default ``420jpeg``) and its length in bytes."""

    width: int
    height: int
    colourspace: str
    length: int

    @property
    def frame_bytes(self) -> int | None:
        """Bytes of one frame's samples, ``None`` for a colour space not known here."""
        cs = self.colourspace
        family = next((f for f in _CHROMA if cs.startswith(f)), None)
        if family is None:
            return None
        rest = cs[len(family) :]
        alpha = rest == "alpha"
        if rest.startswith("p"):
            rest = rest[1:]
        depth = int(rest) if rest.isdigit() else 8
        if rest not in ("", "jpeg", "mpeg2", "paldv", "alpha") and not rest.isdigit():
            return None
        samples = self.width * self.height * (2 if alpha else 1)
        chroma = _CHROMA[family]
        if chroma is not None:
            samples += 2 * math.ceil(self.width / chroma[0]) * math.ceil(self.height / chroma[1])
        return samples * (1 if depth <= 8 else 2)


@dataclass(frozen=True)
class Y4mLayout:
    """What a y4m stream holds: ``frames`` complete frames, then (``cut``) a last frame cut short as
    ``(sample bytes present, sample bytes of a frame)``, or ``None``."""

    header: Y4mHeader
    frames: int
    cut: tuple[int, int] | None

    def cut_message(self) -> str:
        assert self.cut is not None
        have, need = self.cut
        return (
            f"the y4m stream ends inside frame {self.frames} ({have} of its {need} bytes): the writer stopped "
            "mid-frame, and that frame was left out"
        )


def is_y4m(head: bytes) -> bool:
    return head.startswith(MAGIC)


def parse_header(line: bytes, name: str) -> Y4mHeader:
    """Parse the header line (newline included); an :class:`InputError` for a frame size FFmpeg cannot read."""
    fields = line.rstrip(b"\n").split(b" ")
    if fields[0] != MAGIC:
        raise InputError(f"{name} is not a y4m stream (its first line does not start with YUV4MPEG2)")
    tags = {f[:1]: f[1:].decode("ascii", "replace") for f in fields[1:] if f}
    width, height = tags.get(b"W", ""), tags.get(b"H", "")
    if not (width.isdigit() and height.isdigit()) or int(width) < 1 or int(height) < 1:
        raise InputError(
            f"the y4m header of {name} gives no usable frame size (W{width} H{height}); the stream is damaged "
            "or was not written as y4m"
        )
    w, h = int(width), int(height)
    if (w + 128) * (h + 128) >= _FFMPEG_AREA_LIMIT:
        raise InputError(
            f"the y4m header of {name} announces {w}x{h} frames, larger than FFmpeg reads (about 16000x16000 at "
            "most); the header is damaged or wrong"
        )
    return Y4mHeader(w, h, tags.get(b"C", "420jpeg"), len(line))


def scan(f: BinaryIO, name: str) -> Y4mLayout | None:
    """The layout of the seekable y4m stream ``f`` (its position is kept), by seeking from frame to frame;
    ``None`` when ``f`` is not y4m or its colour space is not known here."""
    start = f.tell()
    try:
        f.seek(0)
        first = f.read(_MAX_LINE)
        if not is_y4m(first):
            return None
        end = first.find(b"\n")
        if end < 0:
            raise InputError(f"the y4m header of {name} is cut or longer than {_MAX_LINE} bytes")
        header = parse_header(first[: end + 1], name)
        frame_bytes = header.frame_bytes
        if frame_bytes is None:
            return None
        size = f.seek(0, 2)
        pos, frames, cut = header.length, 0, None
        while pos < size:
            f.seek(pos)
            line = f.read(min(_MAX_LINE, size - pos))
            newline = line.find(b"\n")
            if not line.startswith(b"FRAME"[: len(line)]):
                break  # not a frame: FFmpeg reports what it makes of it
            if newline < 0:
                cut = (0, frame_bytes) if size - pos < _MAX_LINE else None  # the FRAME line itself is cut
                break
            samples = pos + newline + 1
            if samples + frame_bytes > size:
                cut = (size - samples, frame_bytes)
                break
            frames += 1
            pos = samples + frame_bytes
        return Y4mLayout(header, frames, cut)
    finally:
        f.seek(start)


class Y4mPipeWatch:
    """A pipe's bytes passed through unchanged (``read`` / ``read1``) while the y4m layout is followed.

    After the pipe ended, :meth:`layout` says whether the last frame was cut; :attr:`error` holds the
    :class:`InputError` of a header FFmpeg would refuse (FFmpeg's own message for it is misleading).
    """

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self._stream = stream
        self._read1: Callable[[int], bytes] = getattr(stream, "read1", stream.read)
        self.name = name
        self.header: Y4mHeader | None = None
        self.error: InputError | None = None
        self.ended = False
        self._line = bytearray()  # the header or FRAME line read so far
        self._left = 0  # sample bytes of the current frame still to come
        self._frames = 0
        self._following = True

    def read(self, size: int = -1) -> bytes:
        return self._seen(self._stream.read(size))

    def read1(self, size: int = -1) -> bytes:
        return self._seen(self._read1(size))

    def _seen(self, data: bytes) -> bytes:
        if not data:
            self.ended = True
        elif self._following:
            self._follow(memoryview(data))
        return data

    def _follow(self, data: memoryview) -> None:
        i = 0
        while i < len(data) and self._following:
            if self._left:
                step = min(self._left, len(data) - i)
                self._left -= step
                i += step
                if self._left == 0:
                    self._frames += 1
                continue
            end = bytes(data[i : i + _MAX_LINE]).find(b"\n")
            if end < 0:
                self._line += data[i:]
                self._following = len(self._line) < _MAX_LINE
                return
            self._line += data[i : i + end + 1]
            i += end + 1
            self._line_done(bytes(self._line))
            self._line.clear()

    def _line_done(self, line: bytes) -> None:
        if self.header is None:
            try:
                self.header = parse_header(line, self.name)
            except InputError as err:
                self.error, self._following = err, False
                return
            self._following = self.header.frame_bytes is not None
        elif line.startswith(b"FRAME"):
            self._left = self.header.frame_bytes or 0
            if self._left == 0:
                self._frames += 1
        else:
            self._following = False  # not y4m any more: FFmpeg reports it

    def layout(self) -> Y4mLayout | None:
        """The layout once the pipe ended, ``None`` when unknown (not ended, not followed to the end)."""
        if not (self.ended and self._following and self.header is not None):
            return None
        frame_bytes = self.header.frame_bytes or 0
        if self._left:
            cut = (frame_bytes - self._left, frame_bytes)  # the FRAME line was read whole
        elif self._line:
            cut = (0, frame_bytes)  # the FRAME line itself is cut
        else:
            cut = None
        return Y4mLayout(self.header, self._frames, cut)
