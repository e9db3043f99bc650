"""Render and scan jobs: the ``chromaflow`` command itself, run in a child process the page can watch and stop.

Why the CLI and not a call in this process: a render must follow the CLI's rules exactly (partial name, audio kept,
nothing left on failure, the same frames as ``chromaflow colorize --project``), and the surest way is to run it.
A child also keeps a render's memory and threads away from the previews, and stopping it is a SIGTERM, which the
CLI turns into a clean exit that removes its partial output. Progress is read from ``--progress json``.
"""

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chromaflow.core.errors import UsageError

CLI = [sys.executable, "-m", "chromaflow.plugins.cli.main"]
MAX_RUNNING = 2


@dataclass
class Job:
    """One child run: its command, state and what it wrote."""

    id: str
    kind: str  # "render" or "deepfake"
    argv: list[str]
    outputs: dict[str, Path]  # what the page may download: {"video": path, "jsonl": path, "vtt": path}
    state: str = "running"  # running, done, failed, cancelled
    frames: int = 0
    total: int | None = None
    message: str = ""
    version: int = 0
    _proc: subprocess.Popen[str] | None = None
    _stderr: deque[str] = field(default_factory=lambda: deque(maxlen=20))
    _changed: threading.Condition = field(default_factory=threading.Condition)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": self.kind,
            "state": self.state,
            "frames": self.frames,
            "total": self.total,
            "message": self.message,
            "outputs": sorted(k for k, p in self.outputs.items() if self.state == "done" and p.is_file()),
        }

    def _update(self, **values: Any) -> None:
        with self._changed:
            for k, v in values.items():
                setattr(self, k, v)
            self.version += 1
            self._changed.notify_all()

    def wait_change(self, seen: int, timeout: float) -> int:
        """Block until the job changes past version ``seen`` (or ``timeout``); the current version."""
        with self._changed:
            if self.version == seen and self.state == "running":
                self._changed.wait(timeout)
            return self.version


def _last_error(lines: deque[str]) -> str:
    for line in reversed(lines):
        if line.startswith("chromaflow: error:"):
            return line.removeprefix("chromaflow: error:").strip()
    return "the run failed: " + (lines[-1] if lines else "no message")


class Jobs:
    """Every job of this studio; at most :data:`MAX_RUNNING` at a time."""

    def __init__(self, env: dict[str, str] | None = None) -> None:
        self.jobs: dict[str, Job] = {}
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.env = env

    def start(self, kind: str, args: list[str], outputs: dict[str, Path]) -> Job:
        with self._lock:
            if sum(j.state == "running" for j in self.jobs.values()) >= MAX_RUNNING:
                raise UsageError(f"{MAX_RUNNING} jobs are running already; wait for one, or cancel it")
            job = Job(f"{kind}-{next(self._ids)}", kind, [*CLI, *args, "--progress", "json"], outputs)
            self.jobs[job.id] = job
        job._proc = subprocess.Popen(
            job.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, **(self.env or {})},
        )  # fmt: skip
        threading.Thread(target=self._watch, args=(job,), daemon=True, name=f"studio-{job.id}").start()
        return job

    def get(self, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        if job is None:
            raise UsageError(f"no job {job_id!r}")
        return job

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job.state == "running" and job._proc is not None:
            job._update(message="cancelling")
            job._proc.send_signal(signal.SIGTERM)  # the CLI removes its partial output and exits 143
        return job

    def _watch(self, job: Job) -> None:
        proc = job._proc
        assert proc is not None and proc.stderr is not None
        for line in proc.stderr:
            line = line.rstrip()
            if line.startswith("{"):
                try:
                    data = json.loads(line)
                except json.JSONDecodeError:
                    data = None
                if isinstance(data, dict) and "frames" in data:
                    job._update(frames=int(data["frames"]), total=data.get("total"))
                    continue
            if line:
                job._stderr.append(line)
        code = proc.wait()
        if code == 0:
            job._update(state="done", message="done")
        elif job.message == "cancelling" or code in (-signal.SIGTERM, 143):
            job._update(state="cancelled", message="cancelled; nothing was left behind")
        else:
            job._update(state="failed", message=_last_error(job._stderr))

    def close(self) -> None:
        """Stop every running child (the studio is shutting down) and wait for them to clean up."""
        running = [j for j in self.jobs.values() if j.state == "running" and j._proc is not None]
        for job in running:
            job._proc.send_signal(signal.SIGTERM)  # type: ignore[union-attr]
        deadline = time.monotonic() + 20
        for job in running:
            try:
                job._proc.wait(max(0.1, deadline - time.monotonic()))  # type: ignore[union-attr]
            except subprocess.TimeoutExpired:
                job._proc.kill()  # type: ignore[union-attr]
