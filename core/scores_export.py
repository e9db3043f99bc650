"""Deepfake score sidecars: JSONL (one object per frame, then a video summary line) and WebVTT (the score over
time as subtitle cues). Both write under a partial name in the target folder (:mod:`chromaflow.core.partials`)
and rename it into place on ``close()``, so a crash, an error or a stop signal never leaves a half-written sidecar.

JSONL lines: ``{"frame": n, "time": seconds, "score": float|null, "faces": [{"track": id, "box": [x0, y0, x1, y1],
"score": s}]}`` ... then ``{"video": {"score": s, "frames": n, "frames_with_faces": m, "model": name, ...}}``.
"""

import contextlib
import json
import os
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol, Self

from chromaflow.core import partials, stopping
from chromaflow.core.errors import OutputError


class FrameLike(Protocol):
    def to_json(self, frame: int | None = None, time: float | None = None) -> dict[str, Any]: ...

    @property
    def score(self) -> float | None: ...


class SummaryLike(Protocol):
    def to_json(self) -> dict[str, Any]: ...


class _AtomicText:
    """A text file written under a temporary name in the target's folder and renamed into place on close."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        folder = self.path.parent
        if not folder.is_dir():
            raise OutputError(f"cannot write {self.path}: folder {folder} does not exist; create it first")
        self._tmp = partials.partial_file(self.path)
        partials.track(self._tmp)
        try:
            # 0o666 less the umask: the mode a plainly created file gets, kept through the rename
            fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except OSError as exc:
            partials.untrack(self._tmp)
            raise OutputError(f"cannot write in {folder}: {exc}") from exc
        self._fh: IO[str] | None = os.fdopen(fd, "w", encoding="utf-8", newline="\n")

    def write(self, text: str) -> None:
        if self._fh is None:
            raise OutputError(f"{self.path} is already closed")
        self._fh.write(text)

    def commit(self) -> None:
        if self._fh is None:
            return
        fh, self._fh = self._fh, None
        try:
            fh.flush()
            os.fsync(fh.fileno())
            fh.close()
            stopping.pause_at("commit")
            with stopping.moving_into_place():
                os.replace(self._tmp, self.path)
                partials.untrack(self._tmp)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                fh.close()
            self.abort()
            if isinstance(exc, OSError):
                raise OutputError(f"cannot write {self.path}: {exc}") from exc
            raise

    def abort(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        self._tmp.unlink(missing_ok=True)
        partials.untrack(self._tmp)


class _SidecarWriter:
    """A sidecar written under a temporary name: ``abort`` (or leaving a ``with`` block on an error) removes it."""

    _out: _AtomicText

    def abort(self) -> None:
        self._out.abort()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is not None:
            self.abort()


class ScoresJsonlWriter(_SidecarWriter):
    """Streams per-frame objects, then the video line on :meth:`close` (use as a context manager; an exception
    inside the ``with`` discards the file)."""

    def __init__(self, path: str | Path) -> None:
        self._out = _AtomicText(path)
        self.path = self._out.path
        self.frames = 0

    def write_frame(self, result: FrameLike, frame: int | None = None, time: float | None = None) -> None:
        self._out.write(json.dumps(result.to_json(frame, time), separators=(",", ":")) + "\n")
        self.frames += 1

    def close(self, summary: SummaryLike) -> None:
        """Write the summary line and move the file into place."""
        self._out.write(json.dumps(summary.to_json(), separators=(",", ":")) + "\n")
        self._out.commit()


def _vtt_time(seconds: float) -> str:
    ms = max(0, round(seconds * 1000))
    h, rest = divmod(ms, 3_600_000)
    m, rest = divmod(rest, 60_000)
    s, ms = divmod(rest, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}.{ms:03d}"


def score_text(score: float | None, threshold: float = 0.5) -> str:
    """The cue text of a score: ``FAKE 87%``, ``REAL 12%`` (the fake score) or ``no face``."""
    if score is None:
        return "no face"
    return f"{'FAKE' if score >= threshold else 'REAL'} {round(100 * score)}%"


class ScoresVttWriter(_SidecarWriter):
    """WebVTT track of the frame score: consecutive frames with the same text share one cue. Feed frames in time
    order with :meth:`add`; :meth:`close` ends the last cue at ``end_time`` (or one frame gap after it)."""

    def __init__(self, path: str | Path, threshold: float = 0.5) -> None:
        self._out = _AtomicText(path)
        self.path = self._out.path
        self.threshold = threshold
        self._out.write("WEBVTT\n\n")
        self._cue: tuple[float, str] | None = None
        self._last_time: float | None = None
        self._gap = 0.0
        self._count = 0

    def add(self, score: float | None, time: float) -> None:
        text = score_text(score, self.threshold)
        if self._last_time is not None:
            if time < self._last_time:
                raise OutputError(f"WebVTT times must increase: {time} after {self._last_time}")
            self._gap = time - self._last_time
        self._last_time = time
        if self._cue is None:
            self._cue = (time, text)
        elif self._cue[1] != text:
            self._emit(time)
            self._cue = (time, text)

    def _emit(self, end: float) -> None:
        assert self._cue is not None
        start, text = self._cue
        if end > start:
            self._count += 1
            self._out.write(f"{self._count}\n{_vtt_time(start)} --> {_vtt_time(end)}\n{text}\n\n")

    def close(self, end_time: float | None = None) -> None:
        if self._cue is not None and self._last_time is not None:
            self._emit(end_time if end_time is not None else self._last_time + (self._gap or 0.04))
            self._cue = None
        self._out.commit()


def write_scores(
    jsonl: str | Path | None,
    vtt: str | Path | None,
    results: list[tuple[FrameLike, int, float]],
    summary: SummaryLike,
    end_time: float | None = None,
) -> None:
    """Convenience: write both sidecars from ``(result, frame number, time)`` triples."""
    if jsonl is not None:
        with ScoresJsonlWriter(jsonl) as writer:
            for result, frame, time in results:
                writer.write_frame(result, frame, time)
            writer.close(summary)
    if vtt is not None:
        with ScoresVttWriter(vtt) as vwriter:
            for result, _frame, time in results:
                vwriter.add(result.score, time)
            vwriter.close(end_time)
