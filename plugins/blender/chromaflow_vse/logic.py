"""The Blender add-on's plain-Python half: commands, progress, strip placement, keyframes, the CLI run.

Nothing here imports ``bpy``, ``torch`` or ``chromaflow``: the add-on only ever talks to the ``chromaflow``
command line of a configured environment, and this module is unit-tested without Blender. It must run on the
Python that Blender bundles (3.10 for Blender 3.4, 3.11 for 4.x), so it sticks to the standard library.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp", ".exr")
MAX_CHANNEL = 128  # Blender's sequencer has channels 1..128
SUFFIXES = {"colorize": "colorized", "deepfake": "deepfake", "deflicker": "deflickered"}


class AddonError(Exception):
    """A problem the user can fix; the message says what was wrong and what to do."""


# ----------------------------------------------------------------------------------------------------------------
# Which program to run


def cli_prefix(configured: str = "", which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """The argv prefix that runs the chromaflow CLI.

    ``configured`` (the add-on preference) may be: empty (``chromaflow`` found on PATH), the ``chromaflow``
    executable, a Python interpreter of an environment where chromaflow is installed (run as ``python -m
    chromaflow``), or the environment's folder itself (its ``bin/chromaflow`` or ``Scripts/chromaflow.exe``).
    """
    text = os.path.expanduser(configured.strip())
    if not text:
        found = which("chromaflow")
        if found is None:
            raise AddonError(
                "the 'chromaflow' command was not found on PATH; set its path (or the Python of the environment "
                "where chromaflow is installed) in the add-on preferences"
            )
        return [found]
    path = Path(text)
    if path.is_dir():
        for candidate in (path / "bin" / "chromaflow", path / "Scripts" / "chromaflow.exe"):
            if candidate.is_file():
                return [str(candidate)]
        raise AddonError(f"{path} is a folder without bin/chromaflow; point the preference to the executable")
    if not path.is_file():
        raise AddonError(
            f"the configured chromaflow program {path} does not exist; fix the add-on preference"
        )
    if path.name.lower().startswith("python"):
        return [str(path), "-m", "chromaflow"]
    return [str(path)]


def child_environment(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for the CLI: the host's, minus the host's own Python settings, unbuffered."""
    env = dict(os.environ if base is None else base)
    for key in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONNOUSERSITE", "PYTHONEXECUTABLE"):
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


# ----------------------------------------------------------------------------------------------------------------
# Commands


@dataclass
class ColorizeOptions:
    """Options of the ``Colorize strip`` operator, as the panel holds them."""

    model: str = "base"
    smooth: int | None = None  # temporal smoothing radius in frames; None: the CLI's default, 0: off
    references: list[tuple[int, str]] = field(default_factory=list)  # (frame index in the file, image path)
    device: str = ""  # "" = the CLI's default
    extra: list[str] = field(default_factory=list)


@dataclass
class DeepfakeOptions:
    """Options of the ``Deepfake scan strip`` operator."""

    detector: str = ""
    classifier: str = ""
    overlay: bool = True
    device: str = ""
    extra: list[str] = field(default_factory=list)


@dataclass
class DeflickerOptions:
    """Options of the ``Deflicker strip`` operator; ``None`` leaves a setting to the CLI's default."""

    radius: int | None = None  # frames on either side a frame's colour is smoothed with
    strength: float | None = None  # weight of the neighbouring frames; 0: no change
    extra: list[str] = field(default_factory=list)


def colorize_command(prefix: Sequence[str], source: str, output: str, opts: ColorizeOptions) -> list[str]:
    """``chromaflow colorize IN OUT ...`` for a movie file; ``--json`` so the summary can be read back."""
    argv = [*prefix, "colorize", source, output, "--json"]
    if opts.model:
        argv += ["--model", opts.model]
    if opts.smooth is not None:
        argv += ["--no-smooth"] if opts.smooth <= 0 else ["--smooth", str(int(opts.smooth))]
    for index, image in sorted(opts.references):
        argv += ["--ref", f"{index}={image}"]
    if opts.device:
        argv += ["--device", opts.device]
    return argv + list(opts.extra)


def deepfake_command(
    prefix: Sequence[str], source: str, output: str | None, scores: str | None, opts: DeepfakeOptions
) -> list[str]:
    """``chromaflow deepfake IN [OUT] --scores F.jsonl ...``; no OUT when the overlay is off."""
    argv = [*prefix, "deepfake", source]
    if opts.overlay and output:
        argv.append(output)
    argv.append("--json")
    if scores:
        argv += ["--scores", scores]
    if opts.detector:
        argv += ["--detector", opts.detector]
    if opts.classifier:
        argv += ["--classifier", opts.classifier]
    if opts.device:
        argv += ["--device", opts.device]
    return argv + list(opts.extra)


def deflicker_command(prefix: Sequence[str], source: str, output: str, opts: DeflickerOptions) -> list[str]:
    """``chromaflow deflicker IN OUT ...`` for a movie already in colour; ``--json`` for the summary."""
    argv = [*prefix, "deflicker", source, output, "--json"]
    if opts.radius is not None:
        argv += ["--radius", str(int(opts.radius))]
    if opts.strength is not None:
        argv += ["--strength", f"{float(opts.strength):g}"]
    return argv + list(opts.extra)


def output_path(source: str, mode: str, folder: str = "", suffix: str = "", ext: str = ".mp4") -> Path:
    """Where a result goes: ``<folder or source folder>/<stem>.<suffix><ext>``, never an existing file."""
    src = Path(source)
    dest_dir = Path(folder) if folder else src.parent
    tag = suffix or SUFFIXES[mode]
    candidate = dest_dir / f"{src.stem}.{tag}{ext}"
    n = 1
    while candidate.exists() or candidate.resolve() == src.resolve():
        candidate = dest_dir / f"{src.stem}.{tag}-{n}{ext}"
        n += 1
    return candidate


# ----------------------------------------------------------------------------------------------------------------
# Progress


@dataclass
class Progress:
    """What the CLI said so far."""

    done: int = 0
    total: int | None = None
    fps: float | None = None
    message: str = ""

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return max(0.0, min(1.0, self.done / self.total))

    def describe(self) -> str:
        parts = [f"{self.done}/{self.total} frames" if self.total else f"{self.done} frames"]
        if self.fraction is not None:
            parts.insert(0, f"{self.fraction:.0%}")
        if self.fps:
            parts.append(f"{self.fps:.1f} fps")
        return " ".join(parts)


_COUNT = re.compile(r"(?<![\w./\\:-])(\d+)/(\d+|\?)(?![\w/\\])")
_FPS = re.compile(r"(\d+(?:\.\d+)?)\s*(?:frames?|fr|f|it)/s")
_ERROR = re.compile(r"^(?:chromaflow[\w -]*: )?error: (.*)$")
_BAR_HINT = re.compile(r"[|%\[]|frame")  # a count only counts on a line that looks like a progress bar
_FRAMES = re.compile(r"(?:frame[s]?[ =:]+(\d+))|(?:(\d+)\s+frames?\b)", re.IGNORECASE)


class ProgressParser:
    """Turns the CLI's stderr into :class:`Progress`.

    Understands a tqdm-style bar (``45%|####  | 45/100 [00:03<00:04, 12.3 frame/s]``, updated with ``\\r``),
    JSON progress lines (``{"frames": 45, "total": 100}``, also nested under ``"progress"``) and plain
    ``frame 45`` / ``45 frames`` counters. ``expected_total`` fills in the total when the CLI does not know it.
    Error lines (``chromaflow: error: ...``) are kept for the user.
    """

    def __init__(self, expected_total: int | None = None) -> None:
        self.progress = Progress(total=expected_total)
        self.errors: list[str] = []
        self.lines: list[str] = []
        self._pending = ""

    def feed(self, text: str) -> bool:
        """Consume a chunk of stderr; ``True`` when the progress changed."""
        self._pending += text
        *segments, self._pending = re.split(r"[\r\n]", self._pending)
        changed = False
        for segment in segments:
            changed |= self._segment(segment)
        # A bar redrawn with \r may sit unterminated; read it without consuming it.
        if self._pending and _COUNT.search(self._pending) and _BAR_HINT.search(self._pending):
            changed |= self._segment(self._pending, keep=False)
        return changed

    def close(self) -> None:
        if self._pending:
            self._segment(self._pending)
            self._pending = ""

    def _segment(self, line: str, keep: bool = True) -> bool:
        line = line.strip()
        if not line:
            return False
        if keep:
            error = _ERROR.match(line)
            if error:
                self.errors.append(error.group(1).strip())
            self.lines.append(line)
            del self.lines[:-200]
        if line.startswith("{"):
            return self._json(line)
        before = (self.progress.done, self.progress.total, self.progress.fps)
        counts = _COUNT.findall(line) if _BAR_HINT.search(line) else []
        if counts:
            done, total = counts[-1]
            self.progress.done = int(done)
            if total != "?":
                self.progress.total = int(total)
        else:
            frames = _FRAMES.findall(line)
            if frames:
                self.progress.done = int(frames[-1][0] or frames[-1][1])
        fps = _FPS.findall(line)
        if fps:
            self.progress.fps = float(fps[-1])
        return before != (self.progress.done, self.progress.total, self.progress.fps)

    def _json(self, line: str) -> bool:
        try:
            data = json.loads(line)
        except ValueError:
            return False
        if not isinstance(data, dict):
            return False
        data = data.get("progress", data) if isinstance(data.get("progress"), dict) else data
        done = data.get("frames", data.get("done", data.get("frame")))
        if not isinstance(done, int):
            return False
        self.progress.done = done
        total = data.get("total")
        if isinstance(total, int) and total > 0:
            self.progress.total = total
        if isinstance(data.get("fps"), (int, float)):
            self.progress.fps = float(data["fps"])
        return True


def parse_summary(stdout: str) -> dict[str, object]:
    """The last JSON object the CLI printed on stdout (its ``--json`` summary), or ``{}``."""
    for line in reversed(stdout.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict):
                return data
    try:
        data = json.loads(stdout)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


# ----------------------------------------------------------------------------------------------------------------
# Strips and markers


@dataclass(frozen=True)
class StripGeometry:
    """Where a movie strip sits: content frame 0 lands on ``frame_start``; trims hide its ends."""

    channel: int
    frame_start: int
    frame_offset_start: int
    frame_offset_end: int
    frame_duration: int  # frames in the source file

    @property
    def final_start(self) -> int:
        return self.frame_start + self.frame_offset_start

    @property
    def final_end(self) -> int:
        """One past the last visible frame (Blender's ``frame_final_end``)."""
        return self.frame_start + self.frame_duration - self.frame_offset_end

    def content_index(self, scene_frame: int) -> int:
        """The frame of the source file shown at ``scene_frame``."""
        return scene_frame - self.frame_start


@dataclass(frozen=True)
class Placement:
    """The result strip: same start and trims as the source, on a free channel above it."""

    channel: int
    frame_start: int
    frame_offset_start: int
    frame_offset_end: int


def choose_channel(
    geometry: StripGeometry, occupied: Iterable[tuple[int, int, int]], max_channel: int = MAX_CHANNEL
) -> int:
    """The first channel above the strip that is free over its visible range.

    ``occupied``: ``(channel, final_start, final_end)`` of the other strips at the same level.
    """
    busy = list(occupied)
    for channel in range(geometry.channel + 1, max_channel + 1):
        if all(
            ch != channel or end <= geometry.final_start or start >= geometry.final_end
            for ch, start, end in busy
        ):
            return channel
    raise AddonError(
        f"no free channel above channel {geometry.channel} between frames {geometry.final_start} and "
        f"{geometry.final_end}; free a channel above the strip and run again"
    )


def plan_placement(
    geometry: StripGeometry, occupied: Iterable[tuple[int, int, int]], result_frames: int | None = None
) -> Placement:
    """Place a result of ``result_frames`` frames (default: as many as the source) like the source strip.

    A shorter result keeps the start trim and shows as much of the visible range as it has.
    """
    frames = geometry.frame_duration if result_frames is None else result_frames
    if frames <= geometry.frame_offset_start:
        raise AddonError(
            f"the result has {frames} frames but the strip's visible part starts at frame "
            f"{geometry.frame_offset_start} of its file; nothing of it would be visible"
        )
    visible_end = min(geometry.frame_duration - geometry.frame_offset_end, frames)
    return Placement(
        channel=choose_channel(geometry, occupied),
        frame_start=geometry.frame_start,
        frame_offset_start=geometry.frame_offset_start,
        frame_offset_end=frames - visible_end,
    )


def looks_like_image(text: str) -> bool:
    return text.lower().endswith(IMAGE_SUFFIXES)


def references_from_markers(
    markers: Iterable[tuple[str, int]],
    images: dict[str, str],
    geometry: StripGeometry,
    resolve: Callable[[str], str] = os.path.abspath,
) -> tuple[list[tuple[int, str]], list[str]]:
    """Keyframes for ``--ref N=IMAGE`` from timeline markers.

    A marker inside the strip's visible range is a keyframe when ``images`` names a still for it (by marker name)
    or when the marker's own name is an image path. ``resolve`` turns Blender paths (``//x.png``) into real ones.
    Returns ``(references sorted by frame, notes about markers that were skipped)``; a named image that does not
    exist is an error, since the user clearly meant it.
    """
    refs: dict[int, str] = {}
    notes: list[str] = []
    for name, frame in markers:
        if not geometry.final_start <= frame < geometry.final_end:
            continue
        image = images.get(name) or (name if looks_like_image(name) else "")
        if not image:
            notes.append(f"marker '{name}' at frame {frame} has no coloured still; it was not used")
            continue
        path = resolve(image)
        if not os.path.isfile(path):
            raise AddonError(
                f"the still for marker '{name}' ({path}) does not exist; point the marker to an existing image"
            )
        index = geometry.content_index(frame)
        if index in refs and refs[index] != path:
            raise AddonError(f"two markers at frame {frame} point to different stills; keep one of them")
        refs[index] = path
    return sorted(refs.items()), notes


# ----------------------------------------------------------------------------------------------------------------
# Running the CLI


class CliRun:
    """One run of the CLI in a subprocess, with its output in a private folder until it succeeds.

    The command writes into ``work_dir`` (a hidden folder next to the final file); :meth:`finish` moves the
    result to its final name, :meth:`cancel` stops the process and deletes the folder, so a cancelled or failed
    run leaves nothing behind. Works both polled (Blender's modal timer) and blocking (:meth:`wait`).
    """

    def __init__(
        self,
        argv_for: Callable[[Path], list[str]],
        final_paths: Sequence[Path],
        expected_frames: int | None = None,
        env: dict[str, str] | None = None,
        use_pty: bool = True,
    ) -> None:
        if not final_paths:
            raise ValueError("a run needs at least one final path")
        folder = final_paths[0].parent
        if not folder.is_dir():
            raise AddonError(f"the output folder {folder} does not exist; create it or choose another one")
        self.final_paths = list(final_paths)
        self.work_dir = Path(tempfile.mkdtemp(prefix=".chromaflow-run-", dir=folder))
        self.argv = argv_for(self.work_dir)
        self.parser = ProgressParser(expected_frames)
        self.returncode: int | None = None
        self.summary: dict[str, object] = {}
        self._stdout: list[str] = []
        self._lock = threading.Lock()
        self._changed = False
        # The CLI draws its progress bar only on a terminal: give its stderr a pseudo-terminal where there is one.
        self._master, slave = _open_pty() if use_pty else (None, None)
        try:
            self.process = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=slave if slave is not None else subprocess.PIPE,
                env=child_environment(env),
                **_new_group(),
            )
        except OSError as err:
            shutil.rmtree(self.work_dir, ignore_errors=True)
            if self._master is not None:
                os.close(self._master)
            raise AddonError(f"could not start {self.argv[0]}: {err}; check the add-on preference") from err
        finally:
            if slave is not None:
                os.close(slave)
        self._threads = [
            threading.Thread(target=self._read_stderr, daemon=True),
            threading.Thread(target=self._read_stdout, daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def work_path(self, final: Path) -> Path:
        """Where the CLI writes the file that ends up at ``final``."""
        return self.work_dir / final.name

    def _read_stderr(self) -> None:
        read: Callable[[], bytes]
        if self._master is not None:
            master = self._master

            def read() -> bytes:
                try:
                    return os.read(master, 4096)
                except OSError:  # EIO: the child closed the terminal
                    return b""
        else:
            assert self.process.stderr is not None
            read = lambda: self.process.stderr.read1(4096)  # type: ignore[union-attr]  # noqa: E731
        try:
            for chunk in iter(read, b""):
                with self._lock:
                    self._changed |= self.parser.feed(chunk.decode("utf-8", "replace"))
        finally:
            if self._master is not None:
                os.close(self._master)
                self._master = None

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for chunk in iter(lambda: self.process.stdout.read1(4096), b""):  # type: ignore[union-attr]
            self._stdout.append(chunk.decode("utf-8", "replace"))

    def poll(self) -> tuple[bool, Progress]:
        """``(finished, progress so far)`` without blocking."""
        with self._lock:
            progress = Progress(**vars(self.parser.progress))
        return self.process.poll() is not None, progress

    def wait(self, on_progress: Callable[[Progress], None] | None = None, interval: float = 0.2) -> int:
        """Block until the CLI ends, calling ``on_progress`` whenever the count changes."""
        while True:
            finished, progress = self.poll()
            with self._lock:
                changed, self._changed = self._changed, False
            if changed and on_progress is not None:
                on_progress(progress)
            if finished:
                return self._collect()
            time.sleep(interval)

    def _collect(self) -> int:
        self.returncode = self.process.wait()
        for thread in self._threads:
            thread.join(timeout=5)
        with self._lock:
            self.parser.close()
        self.summary = parse_summary("".join(self._stdout))
        return self.returncode

    def error_message(self) -> str:
        """What went wrong, in the CLI's words when it said something."""
        if self.parser.errors:
            return self.parser.errors[-1]
        tail = [line for line in self.parser.lines if not _COUNT.search(line)][-3:]
        detail = " | ".join(tail) if tail else "no message"
        return f"chromaflow exited with code {self.returncode}: {detail}"

    def finish(self) -> list[Path]:
        """After a successful run: move the results to their final names, remove the work folder."""
        if self.returncode is None:
            self._collect()
        try:
            if self.returncode != 0:
                raise AddonError(self.error_message())
            moved = []
            for final in self.final_paths:
                produced = self.work_path(final)
                if not produced.is_file():
                    raise AddonError(
                        f"chromaflow finished but did not write {final.name}; see the console log"
                    )
                os.replace(produced, final)
                moved.append(final)
            return moved
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def cancel(self, grace: float = 5.0) -> None:
        """Stop the CLI (interrupt, then terminate, then kill) and delete everything it wrote."""
        if self.process.poll() is None:
            _interrupt(self.process)
            try:
                self.process.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.process.terminate()
                try:
                    self.process.wait(timeout=grace)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
        self._collect()
        shutil.rmtree(self.work_dir, ignore_errors=True)


def _open_pty() -> tuple[int | None, int | None]:
    """A pseudo-terminal (master, slave) 160 columns wide, or ``(None, None)`` where there is none (Windows)."""
    try:
        import fcntl
        import pty
        import termios
    except ImportError:
        return None, None
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))
    return master, slave


def _new_group() -> dict[str, object]:
    """Start the CLI in its own process group, so the host's Ctrl-C does not reach it and ours does."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
    return {"start_new_session": True}


def _interrupt(process: subprocess.Popen[bytes]) -> None:
    try:
        if sys.platform == "win32":
            process.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        else:
            process.send_signal(signal.SIGINT)
    except (OSError, ValueError):
        process.terminate()
