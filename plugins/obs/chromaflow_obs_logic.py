"""What the OBS script does, without OBS: name the outputs, build the command, run the CLI, log its progress.

``chromaflow_obs.py`` (the file loaded in OBS's Tools > Scripts) only turns OBS settings and events into calls
of this module, so everything here is testable with plain Python. Standard library only: OBS embeds its own
Python, where chromaflow and torch are not installed; the work happens in the configured chromaflow CLI, run by
``chromaflow_cli_client`` (shared with the Blender add-on; tools/package_hosts.py puts it in this folder).
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import chromaflow_cli_client as client
from chromaflow_cli_client import COLOUR_MODELS as COLOUR_MODELS  # the Model list's entries
from chromaflow_cli_client import ClientError

MODES = ("colorize", "deepfake")
# the CLI's --classifier names (chromaflow.core.options.CLASSIFIERS; OBS's Python cannot import chromaflow, a test
# keeps the two equal): MesoNet's four, the DFDC winner's seven EfficientNet-B7 checkpoints and their ensemble
CLASSIFIERS = (
    "meso4-df", "meso4-f2f", "mesoinception-df", "mesoinception-f2f",
    *(f"effnet-b7-dfdc-{k}" for k in range(1, 8)), "effnet-b7-dfdc",
)  # fmt: skip
DEFAULT_SUFFIX = {"colorize": "colorized", "deepfake": "deepfake"}
SETTING = "the script's settings"  # where the user sets the chromaflow program, for the client's messages

Log = Callable[[str], None]


@dataclass
class Settings:
    """The script's settings as OBS shows them."""

    mode: str = "colorize"
    model: str = "base"
    output_dir: str = ""  # empty: next to the recording
    suffix: str = ""  # empty: "colorized" / "deepfake"
    cli_path: str = ""  # empty: $CHROMAFLOW_CLI, then "chromaflow" on PATH
    overlay: bool = True  # deepfake: write the annotated video (else only the scores)
    classifier: str = ""  # deepfake: one of CLASSIFIERS (empty: the CLI's default)
    extra_args: list[str] = field(default_factory=list)

    def check(self) -> None:
        if self.mode not in MODES:
            raise ClientError(f"unknown mode {self.mode!r}; choose one of {', '.join(MODES)}")
        if self.classifier and self.classifier not in CLASSIFIERS:
            raise ClientError(
                f"unknown classifier {self.classifier!r}; choose one of {', '.join(CLASSIFIERS)}"
            )
        if self.suffix and re.search(r"[\\/:*?\"<>|]", self.suffix):
            raise ClientError(f"the suffix {self.suffix!r} has characters that cannot be in a file name")


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
    if settings.mode == "deepfake" and settings.classifier:
        argv += ["--classifier", settings.classifier]
    if scores is not None:
        argv += ["--scores", str(scores)]
    return argv + list(settings.extra_args)


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
    raise ClientError(f"the recording {path} did not appear or kept growing for {timeout:.0f} s")


class Job:
    """One recording through the CLI: outputs in a private folder, moved to their names only on success."""

    def __init__(self, recording: Path, settings: Settings, log: Log) -> None:
        settings.check()
        self.recording = recording
        self.settings = settings
        self.log = log
        self.video, self.scores = output_paths(recording, settings)
        self.cli: client.CliRun | None = None
        self.summary: dict[str, object] = {}
        self._cancelled = False
        self._lock = threading.Lock()  # between run() starting the CLI and cancel() from another thread

    def run(self, report_every: float = 0.1) -> list[Path]:
        """Run to the end; returns the final paths. Raises :class:`ClientError` on failure or cancel."""
        prefix = client.cli_prefix(self.settings.cli_path, SETTING)
        video, scores = self.video, self.scores
        finals = [p for p in (video, scores) if p is not None]

        def argv_for(work: Path) -> list[str]:
            return build_command(
                prefix,
                self.recording,
                work / video.name if video else None,
                work / scores.name if scores else None,
                self.settings,
            )

        mode = self.settings.mode
        self.log(f"chromaflow {mode}: {self.recording.name} -> {', '.join(p.name for p in finals)}")
        with self._lock:
            if self._cancelled:
                raise ClientError(f"cancelled; nothing was written for {self.recording.name}")
            self.cli = cli = client.CliRun(argv_for, finals, setting=SETTING)
        cli.wait(self._reporter(report_every))
        try:
            cli.finish()
        except ClientError:
            if cli.cancelled:
                raise ClientError(f"cancelled; nothing was written for {self.recording.name}") from None
            raise
        self.summary = cli.summary
        self.log(f"chromaflow {mode}: done -> {', '.join(str(p) for p in finals)}")
        return finals

    def _reporter(self, every: float) -> Callable[[client.Progress], None]:
        """Logs the progress at each ``every`` of the way (and at the end), not at every frame."""
        last = [-1.0]

        def report(progress: client.Progress) -> None:
            if not progress.total:
                return
            step = progress.done / progress.total
            if step - last[0] >= every or progress.done == progress.total:
                last[0] = step
                self.log(
                    f"chromaflow {self.settings.mode}: {step:.0%} ({progress.done}/{progress.total} frames)"
                )

        return report

    def cancel(self) -> None:
        """Stop the CLI (interrupt, then terminate, then kill); :meth:`run` then removes what it wrote."""
        with self._lock:
            self._cancelled = True
            cli = self.cli
        if cli is not None:
            cli.cancel()


class Worker:
    """Processes recordings one after another in a background thread, so OBS never waits."""

    def __init__(self, log: Log) -> None:
        self.log = log
        self._queue: queue.Queue[tuple[Path, Settings] | None] = queue.Queue()
        self._current: Job | None = None
        self._thread = threading.Thread(target=self._loop, name="chromaflow-obs", daemon=True)
        self._thread.start()
        self.results: list[list[Path] | ClientError] = []

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
            except ClientError as err:
                self.log(f"chromaflow: error: {err}")
                self.results.append(err)
            except Exception as err:  # a bug must not kill the worker thread silently
                self.log(f"chromaflow: internal error: {err!r}")
                self.results.append(ClientError(repr(err)))
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
