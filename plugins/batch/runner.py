"""The batch's scheduler: items -> scans -> segments -> joins on a pool of Ray actors, with the journal and report.

Work is handed to idle workers in order of priority (joins, then scans, then segments and whole-item work), so
finished items appear early and every worker stays busy. A failed piece fails its item alone; a worker that dies
is restarted by Ray and its piece retried (``max_restarts`` / ``max_task_retries``), and a piece already in the
journal with its file unchanged is not done again under ``--resume``.
"""

import argparse
import copy
import hashlib
import heapq
import itertools
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chromaflow.core.errors import OutputError, UsageError
from chromaflow.core.transfer import load_references
from chromaflow.core.transfer.keyframes import FUSED_READS_AHEAD
from chromaflow.plugins.batch.cluster import LOCAL, RaySession, connect
from chromaflow.plugins.batch.inputs import BatchItem
from chromaflow.plugins.batch.journal import Journal
from chromaflow.plugins.batch.media import Scan
from chromaflow.plugins.batch.report import (
    ItemReport,
    JobProgress,
    summary_table,
    write_report,
    write_scores,
)
from chromaflow.plugins.batch.segments import (
    ContextRule,
    Segment,
    keyframe_context,
    plan_segments,
    window_context,
)
from chromaflow.plugins.batch.worker import BatchWorker, SegmentJob

SEGMENTS_FOLDER = ".chromaflow-segments"
RETRIES = 3  # restarts of a dead worker, and retries of the piece it held
VERBS = ("colorize", "deflicker", "deepfake")
EXIT_ITEMS_FAILED = 3
# flags that change where and how visibly work runs, not what an item's output is
_NOT_IN_KEY = {
    "func", "batch_parser", "inputs", "out", "ray", "workers", "cpus_per_worker", "gpus_per_worker",
    "segment_frames", "resume", "quiet", "progress", "json",
}  # fmt: skip
_PRIORITY = {"join": 0, "scan": 1, "segment": 2, "deepfake": 2}


@dataclass
class BatchSettings:
    """How a batch runs (the ``chromaflow batch`` flags other than the verb's own)."""

    verb: str
    out_dir: Path
    address: str = LOCAL
    workers: int = 0  # 0: as many as the CPUs (and GPUs) allow
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0
    segment_frames: int = 2000
    resume: bool = False
    progress: str = "auto"
    out_format: str | None = None
    quiet: bool = False


@dataclass
class Item:
    """One input on its way through the batch."""

    item: BatchItem
    args: argparse.Namespace
    key: str
    output: Path
    report: ItemReport
    scan: Scan | None = None
    segments: list[Segment] = field(default_factory=list)
    results: dict[int, dict[str, Any]] = field(default_factory=dict)
    started: float = 0.0

    @property
    def open(self) -> bool:
        return self.report.status == "pending"


@dataclass
class Hooks:
    """Test and tool hooks: ``on_submit(worker identity, kind, payload)`` after a piece is handed to a worker."""

    on_submit: Callable[[dict[str, Any], str, Any], None] | None = None


def output_name(item: BatchItem, verb: str, out_format: str | None) -> str:
    """The item's file name in the output folder."""
    if item.output:
        return item.output
    path = Path(item.input)
    if verb == "deepfake":
        return f"{path.stem}.scores.jsonl"
    return path.stem + ("." + out_format.lstrip(".") if out_format else path.suffix)


def item_key(verb: str, item: BatchItem, name: str, args: argparse.Namespace) -> str:
    """The identity of an item's work: what is read (path, size, time), what is written, with which options."""
    try:
        stat = os.stat(item.input)
        stamp = [stat.st_size, stat.st_mtime_ns]
    except OSError:
        stamp = []
    options = {k: v for k, v in sorted(vars(args).items()) if k not in _NOT_IN_KEY}
    text = json.dumps([verb, os.path.abspath(item.input), stamp, name, options], default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def item_args(
    parser: argparse.ArgumentParser, base: argparse.Namespace, options: tuple[str, ...]
) -> argparse.Namespace:
    """The job's verb options with an item's own flags on top (parsed by the verb's own parser)."""
    if not options:
        return base
    try:
        return parser.parse_args([*options, "--out", str(base.out), "-"], namespace=copy.deepcopy(base))
    except SystemExit:
        raise UsageError(f"bad options for this item: {' '.join(options)}") from None


def context_rule(verb: str, args: argparse.Namespace, frames: int) -> ContextRule:
    """Which neighbours a segment needs for this verb and these options (chromaflow.plugins.batch.segments)."""
    if verb == "deflicker":
        from chromaflow.plugins.cli import deflicker

        return window_context(frames, deflicker.options_of(args).radius)
    from chromaflow.plugins.cli import colorize

    options = colorize.options_of(args)
    if args.ref:
        keys = sorted(load_references(args.ref, frames))
        ahead = FUSED_READS_AHEAD if options.transfer == "auto" else 0
        return keyframe_context(frames, options.smooth, keys, ahead)
    return window_context(frames, options.smooth, options.batch_size)


class _Pool:
    """The workers: Ray actor handles, their identities, and which are idle."""

    def __init__(self, session: RaySession, settings: BatchSettings) -> None:
        ray = session.ray
        count = settings.workers or _auto_workers(session, settings)
        actor = ray.remote(BatchWorker).options(
            num_cpus=settings.cpus_per_worker,
            num_gpus=settings.gpus_per_worker,
            max_restarts=RETRIES,
            max_task_retries=RETRIES,
        )
        self.ray = ray
        self.handles = [actor.remote() for _ in range(count)]
        self.identity = dict(
            zip(range(count), ray.get([h.identity.remote() for h in self.handles]), strict=True)
        )
        self.idle = list(range(count))


def _auto_workers(session: RaySession, settings: BatchSettings) -> int:
    resources = session.resources()
    count = int(resources.get("CPU", 1) // max(settings.cpus_per_worker, 1e-9))
    if settings.gpus_per_worker > 0:
        count = min(count, int(resources.get("GPU", 0) // settings.gpus_per_worker))
    if count < 1:
        raise UsageError(
            f"the cluster has {resources.get('CPU', 0)} CPUs and {resources.get('GPU', 0)} GPUs: not enough for "
            "one worker; lower --cpus-per-worker / --gpus-per-worker"
        )
    return count


class BatchRun:
    """One batch job (module docstring); :meth:`run` returns the exit code."""

    def __init__(
        self,
        settings: BatchSettings,
        items: list[Item],
        hooks: Hooks | None = None,
    ) -> None:
        self.settings = settings
        self.items = items
        self.hooks = hooks or Hooks()
        self.journal = Journal(settings.out_dir, settings.resume)
        self._queue: list[tuple[int, int, str, Item, Any]] = []
        self._order = itertools.count()
        self._running: dict[Any, tuple[int, str, Item, Any]] = {}

    # -- scheduling ------------------------------------------------------------------------------------------
    def _put(self, kind: str, item: Item, payload: Any = None) -> None:
        heapq.heappush(self._queue, (_PRIORITY[kind], next(self._order), kind, item, payload))

    def _dispatch(self, pool: _Pool) -> None:
        while pool.idle and self._queue:
            _, _, kind, item, payload = heapq.heappop(self._queue)
            if not item.open:
                continue
            worker = pool.idle.pop(0)
            handle = pool.handles[worker]
            if kind == "scan":
                ref = handle.scan.remote(item.item.input, self.settings.verb, item.args)
            elif kind == "segment":
                ref = handle.segment.remote(payload)
            elif kind == "join":
                ref = handle.join.remote(*payload)
            else:
                ref = handle.deepfake.remote(item.item.input, item.args, str(item.output))
            self._running[ref] = (worker, kind, item, payload)
            if self.hooks.on_submit is not None:
                self.hooks.on_submit(pool.identity[worker], kind, payload)

    def run(self, connect_ray: Callable[[], RaySession]) -> int:
        """Run every open item; Ray is started (or joined) only when there is work left."""
        started = time.perf_counter()
        progress = JobProgress("none" if self.settings.quiet else self.settings.progress, len(self.items))
        self.progress = progress
        try:
            for item in self.items:
                self._start(item)
            if any(item.open for item in self.items):
                session = connect_ray()
                try:
                    self._loop(_Pool(session, self.settings), progress)
                finally:
                    session.close()
        finally:
            progress.close()
        return self._finish(time.perf_counter() - started)

    def _start(self, item: Item) -> None:
        done = self.journal.done_item(item.key) if self.settings.resume else None
        if done is not None:
            item.report.status = "skipped"
            item.report.frames = int(done.get("frames", 0))
            item.report.summary = done.get("summary")
            self.progress.item_done()
            return
        item.started = time.perf_counter()
        self._put("deepfake" if self.settings.verb == "deepfake" else "scan", item)

    def _loop(self, pool: _Pool, progress: JobProgress) -> None:
        ray = pool.ray
        self._dispatch(pool)
        while self._running:
            ready, _ = ray.wait(list(self._running), num_returns=1, timeout=1.0)
            for ref in ready:
                worker, kind, item, payload = self._running.pop(ref)
                try:
                    result = ray.get(ref)
                except ray.exceptions.RayError as err:  # the worker died more often than it is restarted
                    result = {"ok": False, "error": f"the worker running it was lost: {err}", "code": 1}
                    if isinstance(err, ray.exceptions.RayActorError):
                        worker = -1
                if worker >= 0:
                    pool.idle.append(worker)
                if item.open:
                    self._settle(kind, item, payload, result)
            if not pool.idle and not self._running and self._queue:
                for _, _, _, item, _ in self._queue:
                    self._fail(item, {"error": "every worker was lost", "code": 1})
                self._queue.clear()
            self._dispatch(pool)

    # -- results -----------------------------------------------------------------------------------------------
    def _fail(self, item: Item, result: dict[str, Any]) -> None:
        if not item.open:
            return
        item.report.status = "failed"
        item.report.error = str(result.get("error"))
        item.report.code = int(result.get("code", 1))
        item.report.seconds = time.perf_counter() - item.started
        self.progress.item_done()

    def _settle(self, kind: str, item: Item, payload: Any, result: dict[str, Any]) -> None:
        if not result.get("ok"):
            self._fail(item, result)
            return
        if kind == "scan":
            self._planned(item, result["scan"])
        elif kind == "segment":
            seg: Segment = payload.segment
            record = {
                "kind": "segment",
                "item": item.key,
                "index": seg.index,
                "start": seg.start,
                "end": seg.end,
                "context": [seg.context_start, seg.context_end],
                "file": result["file"],
                "sha256": result["sha256"],
                "frames": result["frames"],
                "tags": result["tags"],
                "node": result["node"],
                "pid": result["pid"],
                "seconds": round(result["seconds"], 3),
            }
            self.journal.record(record)
            self._segment_done(item, seg, record)
        elif kind in ("join", "deepfake"):
            self._item_done(item, result)

    def _planned(self, item: Item, scan: Scan) -> None:
        item.scan = scan
        try:
            rule = context_rule(self.settings.verb, item.args, scan.frames)
        except UsageError as err:
            self._fail(item, {"error": str(err), "code": err.exit_code})
            return
        item.segments = plan_segments(scan.frames, scan.cuts, self.settings.segment_frames, rule)
        self.progress.add_total(scan.frames)
        folder = self.settings.out_dir / SEGMENTS_FOLDER / item.key
        folder.mkdir(parents=True, exist_ok=True)
        for seg in item.segments:
            earlier = self.journal.done_segment(item.key, seg.index) if self.settings.resume else None
            if (
                earlier is not None
                and earlier.get("context") == [seg.context_start, seg.context_end]
                and (
                    earlier.get("start"),
                    earlier.get("end"),
                )
                == (seg.start, seg.end)
            ):
                self._segment_done(item, seg, earlier)
                continue
            path = str(folder / f"seg-{seg.index:05d}.mkv")
            self._put(
                "segment", item, SegmentJob(self.settings.verb, item.item.input, item.args, scan, seg, path)
            )

    def _segment_done(self, item: Item, seg: Segment, record: dict[str, Any]) -> None:
        item.results[seg.index] = record
        item.report.segments = [
            {k: item.results[i][k] for k in ("index", "start", "end", "node", "pid")}
            for i in sorted(item.results)
        ]
        self.progress.add_frames(seg.frames)
        if len(item.results) == len(item.segments):
            ordered = [item.results[s.index] for s in item.segments]
            assert item.scan is not None
            self._put(
                "join",
                item,
                (
                    item.item.input,
                    str(item.output),
                    [r["file"] for r in ordered],
                    ordered[0]["tags"],
                    item.scan.frames,
                    item.args,
                ),
            )

    def _item_done(self, item: Item, result: dict[str, Any]) -> None:
        item.report.status = "done"
        item.report.frames = int(result.get("frames", 0))
        item.report.seconds = time.perf_counter() - item.started
        summary = result.get("summary")
        item.report.summary = summary.get("video") if isinstance(summary, dict) else None
        if self.settings.verb == "deepfake":
            self.progress.add_frames(item.report.frames)
        self.journal.record(
            {
                "kind": "item",
                "item": item.key,
                "input": item.item.input,
                "files": result["files"],
                "frames": item.report.frames,
                "summary": item.report.summary,
                "node": result.get("node"),
                "seconds": round(item.report.seconds, 3),
            }
        )
        shutil.rmtree(self.settings.out_dir / SEGMENTS_FOLDER / item.key, ignore_errors=True)
        self.progress.item_done()

    def _finish(self, seconds: float) -> int:
        reports = [item.report for item in self.items]
        folder = self.settings.out_dir
        self.report = write_report(folder, self.settings.verb, reports, seconds)
        if self.settings.verb == "deepfake":
            write_scores(folder, reports)
        segments = folder / SEGMENTS_FOLDER
        if segments.is_dir() and not any(segments.iterdir()):
            segments.rmdir()
        if not self.settings.quiet:
            print(summary_table(reports), file=sys.stderr)
        return exit_code(reports)


def exit_code(reports: list[ItemReport]) -> int:
    """0 when every item is done; the items' own code when all failed alike; else 3 (some items failed)."""
    failed = [r for r in reports if r.status == "failed"]
    if not failed:
        return 0
    codes = {r.code for r in failed}
    if len(failed) == len(reports) and len(codes) == 1:
        return codes.pop()
    return EXIT_ITEMS_FAILED


def prepare_output_folder(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create the output folder {folder}: {err.strerror or err}") from err
    if not os.access(folder, os.W_OK):
        raise OutputError(f"the output folder {folder} is not writable; choose another --out")


def run_batch(
    settings: BatchSettings, items: list[Item], hooks: Hooks | None = None
) -> tuple[int, dict[str, Any]]:
    """Run the items on Ray (embedded or the cluster at ``settings.address``); (exit code, report.json's data)."""
    prepare_output_folder(settings.out_dir)
    batch = BatchRun(settings, items, hooks)

    def connect_ray() -> RaySession:
        workers = settings.workers
        cpus = int(max(1, round(workers * settings.cpus_per_worker))) if workers else (os.cpu_count() or 1)
        gpus = workers * settings.gpus_per_worker if workers and settings.gpus_per_worker else None
        return connect(settings.address, cpus, gpus)

    code = batch.run(connect_ray)
    return code, batch.report
