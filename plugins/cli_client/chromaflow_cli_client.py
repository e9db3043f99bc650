"""The one client of the ``chromaflow`` command line that the Blender add-on and the OBS script share.

Both hosts use chromaflow only through its CLI, in a subprocess: they run on the Python their application embeds
(Blender bundles 3.10 or 3.11, OBS the one it was built with), where neither torch nor chromaflow is installed. So
this file imports the standard library only, and nothing host-specific: the hosts pass in the words that name their
own setting.

Its single source is here. tools/package_hosts.py copies it, unchanged, beside each host's modules: into the add-on
zip (imported there as ``from . import chromaflow_cli_client``) and into the OBS script folder (``import
chromaflow_cli_client``, the script's folder being on ``sys.path``). No copy is committed, so the hosts cannot drift.
It is one file of some 450 lines, not a package of small modules, because it travels whole into both packages.

What a run does: find the program (an executable, an environment's Python or folder, ``$CHROMAFLOW_CLI``, ``PATH``),
start it in its own process group with a clean environment and its stderr on a pseudo-terminal (the CLI draws its bar
only on a terminal), read progress and errors from that stream (tqdm bars, ``--progress json`` lines, plain counters),
read the ``--json`` summary from stdout, and keep every output in a private folder until the run has succeeded, so a
failed or cancelled run leaves nothing behind.
"""

from __future__ import annotations

import dataclasses
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
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict

PROGRAM_VARIABLE = "CHROMAFLOW_CLI"  # names the program when the host's own setting is empty


class ClientError(Exception):
    """A problem the user can fix (a setting, a file, a folder); the message says what was wrong and what to do."""


# ----------------------------------------------------------------------------------------------------------------
# The colour models the CLI offers, for the hosts' model lists: (name, input side, what it is). A host lists them
# and still takes any text (a mix "A+B", a weights file). Written by tools/host_models.py from chromaflow's model
# registry, which the hosts cannot import (no torch there); the test suite checks it is current.

# host-models:start
COLOUR_MODELS: tuple[tuple[str, int, str], ...] = (
    (
        "base",
        256,
        "chromaflow's colorizer on an ImageNet encoder (fetched once: mobilenet-v2-imagenet), bundled",
    ),
    (
        "base-v1",
        256,
        "the first base: trained from scratch on free photos only, owes nothing to ImageNet; bundled",
    ),
    (
        "eccv16",
        256,
        "Zhang et al., Colorful Image Colorization (ECCV 2016)",
    ),
    (
        "siggraph17",
        256,
        "Zhang et al., Real-Time User-Guided Image Colorization (SIGGRAPH 2017); takes hints",
    ),
    (
        "ddcolor-modelscope",
        512,
        "DDColor-L, ImageNet with BigColor's data cleaning: the authors' default, best on photos",
    ),
    (
        "ddcolor-artistic",
        512,
        "DDColor-L, ImageNet plus artistic images, no colourfulness loss: more varied colours",
    ),
    (
        "ddcolor-paper",
        512,
        "DDColor-L as in the paper (ImageNet); to reproduce the paper's figures",
    ),
    (
        "ddcolor-paper-tiny",
        512,
        "DDColor-T (ConvNeXt-T encoder, paper's training): the lightest and fastest DDColor",
    ),
    (
        "deoldify-artistic",
        560,
        "DeOldify artistic (ResNet-34, deep decoder): the most vivid colours; best render factor varies",
    ),
    (
        "deoldify-stable",
        560,
        "DeOldify stable (ResNet-101, wide decoder): best on portraits and landscapes, fewer odd colours",
    ),
    (
        "deoldify-video",
        336,
        "DeOldify video (ResNet-101, wide decoder, NoGAN-tuned for steady colours from frame to frame)",
    ),
)
# host-models:end


# ----------------------------------------------------------------------------------------------------------------
# Which program to run, in which environment


def cli_prefix(
    configured: str = "",
    setting: str = "the settings",
    which: Callable[[str], str | None] = shutil.which,
    environ: Mapping[str, str] | None = None,
) -> list[str]:
    """The argv prefix that runs the chromaflow CLI.

    ``configured`` (the host's setting, else ``$CHROMAFLOW_CLI``) may be: empty (``chromaflow`` found on ``PATH``),
    the ``chromaflow`` executable, a Python interpreter of an environment where chromaflow is installed (run as
    ``python -m chromaflow``), or that environment's folder (its ``bin/chromaflow`` or ``Scripts/chromaflow.exe``).
    ``setting`` names where the user sets it, for the error messages.
    """
    env = os.environ if environ is None else environ
    text = os.path.expanduser(configured.strip() or env.get(PROGRAM_VARIABLE, "").strip())
    if not text:
        found = which("chromaflow")
        if found is None:
            raise ClientError(
                "the 'chromaflow' command is not on PATH; set the chromaflow program (its executable, or the Python "
                f"or folder of the environment where chromaflow is installed) in {setting}"
            )
        return [found]
    path = Path(text)
    if path.is_dir():
        for candidate in (path / "bin" / "chromaflow", path / "Scripts" / "chromaflow.exe"):
            if candidate.is_file():
                return [str(candidate)]
        raise ClientError(
            f"{path} is a folder without bin/chromaflow; point the chromaflow program in {setting} to the executable"
        )
    if not path.is_file():
        raise ClientError(f"the chromaflow program {path} does not exist; fix it in {setting}")
    if path.name.lower().startswith("python"):
        return [str(path), "-m", "chromaflow"]
    return [str(path)]


def child_environment(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment for the CLI: the host's, minus the host's own Python settings, unbuffered, UTF-8."""
    env = dict(os.environ if base is None else base)
    for key in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONNOUSERSITE", "PYTHONEXECUTABLE"):
        env.pop(key, None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PYTHONIOENCODING"] = "utf-8"
    return env


# ----------------------------------------------------------------------------------------------------------------
# What the CLI says


@dataclass
class Progress:
    """What the CLI said so far."""

    done: int = 0
    total: int | None = None
    fps: float | None = None

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
    """Turns the CLI's stderr, in chunks as they arrive, into :class:`Progress` and error messages.

    Understands a tqdm-style bar (``45%|####  | 45/100 [00:03<00:04, 12.3 frame/s]``, redrawn after ``\\r``),
    ``--progress json`` lines (``{"frames": 45, "total": 100, "fps": 12.5}``, also nested under ``"progress"``) and
    plain ``frame 45`` / ``45 frames`` counters. ``expected_total`` stands in while the CLI does not know the total.
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

    def close(self) -> bool:
        """The stream ended: read what is left; ``True`` when the progress changed."""
        pending, self._pending = self._pending, ""
        return self._segment(pending) if pending else False

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
# One run


class CliRun:
    """One run of the CLI in a subprocess, with its outputs in a private folder until it succeeds.

    ``argv_for(work_dir)`` builds the command, writing into ``work_dir`` (a hidden folder next to the first final
    path); :meth:`finish` moves the results to their final names, :meth:`cancel` stops the process and deletes the
    folder, so a cancelled or failed run leaves nothing behind. Works polled (:meth:`poll`, Blender's modal timer)
    and blocking (:meth:`wait`, Blender's background mode and the OBS worker); :meth:`cancel` may come from another
    thread than the one waiting. ``setting`` names the host's program setting, for the error messages.
    """

    def __init__(
        self,
        argv_for: Callable[[Path], list[str]],
        final_paths: Sequence[Path],
        expected_frames: int | None = None,
        env: Mapping[str, str] | None = None,
        use_pty: bool = True,
        setting: str = "the settings",
    ) -> None:
        if not final_paths:
            raise ValueError("a run needs at least one final path")
        folder = final_paths[0].parent
        if not folder.is_dir():
            raise ClientError(f"the output folder {folder} does not exist; create it or choose another one")
        self.final_paths = list(final_paths)
        self.work_dir = Path(tempfile.mkdtemp(prefix=".chromaflow-run-", dir=folder))
        self.argv = argv_for(self.work_dir)
        self.parser = ProgressParser(expected_frames)
        self.returncode: int | None = None
        self.summary: dict[str, object] = {}
        self.cancelled = False
        self._stdout: list[str] = []
        self._lock = threading.Lock()  # guards the parser and _changed (the stderr reader writes them)
        self._collect_lock = threading.Lock()
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
            raise ClientError(
                f"could not start {self.argv[0]}: {err}; check the chromaflow program in {setting}"
            ) from err
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
        if self._master is not None:
            fd = self._master
        else:
            assert self.process.stderr is not None
            fd = self.process.stderr.fileno()
        try:
            for chunk in _chunks(fd):
                with self._lock:
                    self._changed |= self.parser.feed(chunk.decode("utf-8", "replace"))
        finally:
            if self._master is not None:
                os.close(self._master)
                self._master = None

    def _read_stdout(self) -> None:
        assert self.process.stdout is not None
        for chunk in _chunks(self.process.stdout.fileno()):
            self._stdout.append(chunk.decode("utf-8", "replace"))

    def poll(self) -> tuple[bool, Progress]:
        """``(finished, progress so far)`` without blocking."""
        with self._lock:
            progress = dataclasses.replace(self.parser.progress)
        return self.process.poll() is not None, progress

    def wait(self, on_progress: Callable[[Progress], None] | None = None, interval: float = 0.2) -> int:
        """Block until the CLI ends, calling ``on_progress`` whenever the count changed (and once more at the end,
        after the last of stderr was read, when that changed it)."""
        while True:
            finished = self.process.poll() is not None
            if finished:
                self._collect()
            with self._lock:
                changed, self._changed = self._changed, False
                progress = dataclasses.replace(self.parser.progress)
            if changed and on_progress is not None:
                on_progress(progress)
            if finished:
                assert self.returncode is not None
                return self.returncode
            time.sleep(interval)

    def _collect(self) -> int:
        """Wait for the process and its readers, then read the summary (once, whichever thread comes first)."""
        with self._collect_lock:
            if self.returncode is None:
                code = self.process.wait()
                for thread in self._threads:
                    thread.join(timeout=5)
                with self._lock:
                    self._changed |= self.parser.close()
                self.summary = parse_summary("".join(self._stdout))
                self.returncode = code
            return self.returncode

    def error_message(self) -> str:
        """What went wrong, in the CLI's words when it said something."""
        if self.parser.errors:
            return self.parser.errors[-1]
        tail = [line for line in self.parser.lines if not _COUNT.search(line)][-3:]
        detail = " | ".join(tail) if tail else "no message"
        return f"chromaflow exited with code {self.returncode}: {detail}"

    def finish(self) -> list[Path]:
        """After the run: move the results to their final names (all or none) and remove the work folder."""
        self._collect()
        try:
            if self.cancelled:
                raise ClientError("the run was cancelled; nothing was written")
            if self.returncode != 0:
                raise ClientError(self.error_message())
            for final in self.final_paths:
                if not self.work_path(final).is_file():
                    raise ClientError(f"chromaflow finished but did not write {final.name}; see its log")
            for final in self.final_paths:
                os.replace(self.work_path(final), final)
            return list(self.final_paths)
        finally:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def cancel(self, grace: float = 5.0) -> None:
        """Stop the CLI (interrupt, then terminate, then kill) and delete everything it wrote."""
        self.cancelled = True
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


def _chunks(fd: int) -> Iterator[bytes]:
    """What arrives on ``fd`` until it closes; a pseudo-terminal whose child has exited reports EIO: closed too."""
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            return
        if not data:
            return
        yield data


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


class _GroupOptions(TypedDict, total=False):
    """The ``subprocess.Popen`` keywords of :func:`_new_group` (one of them, by platform)."""

    creationflags: int
    start_new_session: bool


def _new_group() -> _GroupOptions:
    """Start the CLI in its own process group, so the host's Ctrl-C does not reach it and ours does."""
    if sys.platform == "win32":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}  # type: ignore[attr-defined]
    return {"start_new_session": True}


def _interrupt(process: subprocess.Popen[bytes]) -> None:
    """Ask the CLI to stop the way Ctrl-C does (it then removes its partial output itself)."""
    try:
        if sys.platform == "win32":
            process.send_signal(signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
        else:
            process.send_signal(signal.SIGINT)
    except (OSError, ValueError):
        process.terminate()
