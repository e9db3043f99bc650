"""What the OBS script does, without OBS: name the output, build the command, run the CLI, log its progress.

``chromaflow_obs.py`` (the file loaded in OBS's Tools > Scripts) only turns OBS settings and events into calls
of this module, so everything here is testable with plain Python. Standard library only: OBS embeds its own
Python, where chromaflow and torch are not installed; the work happens in the configured chromaflow CLI.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

MODES = ("colorize", "deepfake")
DEFAULT_SUFFIX = {"colorize": "colorized", "deepfake": "deepfake"}

Log = Callable[[str], None]


class ScriptError(Exception):
    """A problem the user can fix in the script's settings; the message says how."""


@dataclass
class Settings:
    """The script's settings as OBS shows them."""

    mode: str = "colorize"
    model: str = "base"
    output_dir: str = ""  # empty: next to the recording
    suffix: str = ""  # empty: "colorized" / "deepfake"
    cli_path: str = ""  # empty: $CHROMAFLOW_CLI, then "chromaflow" on PATH
    overlay: bool = True  # deepfake: write the annotated video (else only the scores)
    extra_args: list[str] = field(default_factory=list)

    def check(self) -> None:
        if self.mode not in MODES:
            raise ScriptError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.suffix and re.search(r"[\\/:*?\"<>|]", self.suffix):
            raise ScriptError(f"the suffix {self.suffix!r} has characters that cannot be in a file name")


def cli_prefix(configured: str = "", which: Callable[[str], str | None] = shutil.which) -> list[str]:
    """The argv prefix that runs chromaflow: an executable, an environment's Python (``-m chromaflow``) or PATH."""
    text = os.path.expanduser(configured.strip() or os.environ.get("CHROMAFLOW_CLI", ""))
    if not text:
        found = which("chromaflow")
        if found is None:
            raise ScriptError(
                "'chromaflow' is not on PATH; set the chromaflow program in the script's settings"
            )
        return [found]
    path = Path(text)
    if not path.is_file():
        raise ScriptError(f"the chromaflow program {path} does not exist; fix it in the script's settings")
    return [str(path), "-m", "chromaflow"] if path.name.lower().startswith("python") else [str(path)]


def output_paths(recording: Path, settings: Settings) -> tuple[Path | None, Path | None]:
    """``(video, scores)`` for a recording: ``<stem>.<suffix><ext>`` (+ ``.jsonl`` scores for deepfake).

    Existing files are never overwritten: a counter is added instead.
    """
    folder = Path(settings.output_dir) if settings.output_dir else recording.parent
    tag = settings.suffix or DEFAULT_SUFFIX[settings.mode]
    n = 0
    while True:
        stem = f"{recording.stem}.{tag}" + (f"-{n}" if n else "")
        video = folder / f"{stem}{recording.suffix}"
        scores = folder / f"{stem}.jsonl"
        want_video = settings.mode == "colorize" or settings.overlay
        want_scores = settings.mode == "deepfake"
        taken = (want_video and video.exists()) or (want_scores and scores.exists())
        if not taken:
            return (video if want_video else None), (scores if want_scores else None)
        n += 1


def build_command(
    prefix: list[str], recording: Path, video: Path | None, scores: Path | None, settings: Settings
) -> list[str]:
    """The CLI call for one recording (``--json`` for a machine-readable summary on stdout)."""
    argv = [*prefix, settings.mode, str(recording)]
    if video is not None:
        argv.append(str(video))
    argv.append("--json")
    if settings.mode == "colorize" and settings.model:
        argv += ["--model", settings.model]
    if scores is not None:
        argv += ["--scores", str(scores)]
    return argv + list(settings.extra_args)


_COUNT = re.compile(r"(?<![\w./\\:-])(\d+)/(\d+|\?)(?![\w/\\])")


def progress_of(line: str) -> tuple[int, int | None] | None:
    """``(done, total)`` from a tqdm-style bar or a JSON progress line of the CLI, else ``None``."""
    line = line.strip()
    if line.startswith("{"):
        try:
            data = json.loads(line)
        except ValueError:
            return None
        data = data.get("progress", data) if isinstance(data, dict) else {}
        done = data.get("frames", data.get("done")) if isinstance(data, dict) else None
        total = data.get("total") if isinstance(data, dict) else None
        return (done, total if isinstance(total, int) else None) if isinstance(done, int) else None
    found = _COUNT.findall(line)
    if not found:
        return None
    done, total = found[-1]
    return int(done), (None if total == "?" else int(total))


def wait_until_stable(path: Path, timeout: float = 30.0, interval: float = 0.5) -> None:
    """Wait until the file exists and its size stops changing (OBS may still be closing the file)."""
    deadline = time.monotonic() + timeout
    last = -1
    while time.monotonic() < deadline:
        size = path.stat().st_size if path.is_file() else -1
        if size > 0 and size == last:
            return
        last = size
        time.sleep(interval)
    raise ScriptError(f"the recording {path} did not appear or kept growing for {timeout:.0f} s")


_ERROR = re.compile(r"^(?:chromaflow[\w -]*: )?error: (.*)$")


def _open_pty() -> tuple[int | None, int | None]:
    """A pseudo-terminal (master, slave) 160 columns wide, or ``(None, None)`` where there is none."""
    try:
        import fcntl
        import pty
        import struct
        import termios
    except ImportError:
        return None, None
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))
    return master, slave


def _chunks(master: int | None, process: subprocess.Popen[bytes]) -> Iterator[str]:
    """The CLI's stderr as text chunks, from the pseudo-terminal or the pipe, until it closes."""
    try:
        while True:
            try:
                data = os.read(master, 4096) if master is not None else process.stderr.read1(4096)  # type: ignore[union-attr]
            except OSError:  # EIO: the child closed the terminal
                data = b""
            if not data:
                return
            yield data.decode("utf-8", "replace")
    finally:
        if master is not None:
            os.close(master)


def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "PYTHONPATH")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


class Job:
    """One recording through the CLI: outputs in a private folder, moved to their names only on success."""

    def __init__(self, recording: Path, settings: Settings, log: Log) -> None:
        settings.check()
        self.recording = recording
        self.settings = settings
        self.log = log
        self.video, self.scores = output_paths(recording, settings)
        self.process: subprocess.Popen[bytes] | None = None
        self.cancelled = threading.Event()
        self.summary: dict[str, object] = {}

    def run(self, report_every: float = 0.1) -> list[Path]:
        """Run to the end; returns the final paths. Raises :class:`ScriptError` on failure or cancel."""
        prefix = cli_prefix(self.settings.cli_path)
        finals = [p for p in (self.video, self.scores) if p is not None]
        folder = finals[0].parent
        if not folder.is_dir():
            raise ScriptError(f"the output folder {folder} does not exist; create it or change the setting")
        work = Path(tempfile.mkdtemp(prefix=".chromaflow-run-", dir=folder))
        try:
            staged = {final: work / final.name for final in finals}
            argv = build_command(
                prefix,
                self.recording,
                staged.get(self.video) if self.video else None,
                staged.get(self.scores) if self.scores else None,
                self.settings,
            )
            self.log(
                f"chromaflow {self.settings.mode}: {self.recording.name} -> {', '.join(p.name for p in finals)}"
            )
            code, errors = self._execute(argv, report_every)
            if self.cancelled.is_set():
                raise ScriptError(f"cancelled; nothing was written for {self.recording.name}")
            if code != 0:
                raise ScriptError(errors[-1] if errors else f"chromaflow exited with code {code}")
            for final, produced in staged.items():
                if not produced.is_file():
                    raise ScriptError(f"chromaflow did not write {final.name}")
                os.replace(produced, final)
            self.log(f"chromaflow {self.settings.mode}: done -> {', '.join(str(p) for p in finals)}")
            return finals
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _execute(self, argv: list[str], report_every: float) -> tuple[int, list[str]]:
        # The CLI draws progress only on a terminal: its stderr gets a pseudo-terminal where there is one.
        master, slave = _open_pty()
        extra = {"start_new_session": True} if sys.platform != "win32" else {}
        try:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=slave if slave is not None else subprocess.PIPE,
                env=_child_env(),
                **extra,  # type: ignore[call-overload]
            )
        except OSError as err:
            if master is not None:
                os.close(master)
            raise ScriptError(
                f"could not start {argv[0]}: {err}; check the chromaflow program setting"
            ) from err
        finally:
            if slave is not None:
                os.close(slave)
        stdout: list[bytes] = []
        reader = threading.Thread(target=lambda: stdout.append(self.process.stdout.read()), daemon=True)  # type: ignore[union-attr]
        reader.start()
        errors: list[str] = []
        last_step = -1.0
        buffer = ""
        for chunk in _chunks(master, self.process):
            buffer += chunk
            *lines, buffer = re.split(r"[\r\n]", buffer)
            for line in lines:
                match = _ERROR.match(line.strip())
                if match:
                    errors.append(match.group(1))
                    self.log(line.strip())
                got = progress_of(line)
                if got and got[1]:
                    step = got[0] / got[1]
                    if step - last_step >= report_every or got[0] == got[1]:
                        last_step = step
                        self.log(f"chromaflow {self.settings.mode}: {step:.0%} ({got[0]}/{got[1]} frames)")
        code = self.process.wait()
        reader.join(timeout=5)
        text = b"".join(stdout).decode("utf-8", "replace")
        try:
            self.summary = json.loads(text) if text.strip() else {}
        except ValueError:
            self.summary = {}
        return code, errors

    def cancel(self) -> None:
        """Stop the CLI (interrupt, then kill); :meth:`run` then removes what it wrote."""
        self.cancelled.set()
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            process.send_signal(signal.SIGINT if sys.platform != "win32" else signal.CTRL_BREAK_EVENT)  # type: ignore[attr-defined]
            process.wait(timeout=5)
        except (subprocess.TimeoutExpired, OSError, ValueError):
            process.kill()


class Worker:
    """Processes recordings one after another in a background thread, so OBS never waits."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self._queue: queue.Queue[tuple[Path, Settings] | None] = queue.Queue()
        self._current: Job | None = None
        self._thread = threading.Thread(target=self._loop, name="chromaflow-obs", daemon=True)
        self._thread.start()
        self.results: list[list[Path] | ScriptError] = []

    def submit(self, recording: Path, settings: Settings) -> None:
        self._queue.put((recording, settings))

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            recording, settings = item
            try:
                wait_until_stable(recording)
                self._current = Job(recording, settings, self.log)
                self.results.append(self._current.run())
            except ScriptError as err:
                self.log(f"chromaflow: error: {err}")
                self.results.append(err)
            except Exception as err:  # a bug must not kill the worker thread silently
                self.log(f"chromaflow: internal error: {err!r}")
                self.results.append(ScriptError(repr(err)))
            finally:
                self._current = None
                self._queue.task_done()

    def join(self) -> None:
        """Wait until every submitted recording is done."""
        self._queue.join()

    def stop(self) -> None:
        """Cancel the running job, drop the queue and end the thread (OBS unloads the script)."""
        while not self._queue.empty():
            try:
                self._queue.get_nowait()
                self._queue.task_done()
            except queue.Empty:
                break
        job = self._current
        if job is not None:
            job.cancel()
        self._queue.put(None)
        self._thread.join(timeout=10)
