"""The work of one batch worker (a Ray actor holds one :class:`BatchWorker`): segments and whole items.

Each segment runs through the node the single-file verb builds from the same options (ColorizeNode,
DeflickerNode), fed the segment's context frames from their exact start; the frames outside the segment are
dropped and the rest written losslessly. The colour model is built once per worker and reused. Every outcome is a
plain dict (``ok``, and ``error`` with the CLI ``code`` when it failed), so a bad input fails its item and not the
worker; a worker that dies is restarted by Ray and the segment retried.
"""

import argparse
import copy
import os
import time
from dataclasses import dataclass
from typing import Any

from chromaflow.core.errors import ChromaflowError, UsageError
from chromaflow.filters.pyav.nodes import FrameNode
from chromaflow.plugins.batch.journal import sha256_file
from chromaflow.plugins.batch.media import ReplayNode, Scan, SegmentFile, read_range, scan_video
from chromaflow.plugins.batch.segments import Segment

EXIT_INTERNAL = 1


@dataclass(frozen=True)
class SegmentJob:
    """One segment of one item: where to read, what to run, where to write."""

    verb: str
    input: str
    args: argparse.Namespace
    scan: Scan
    segment: Segment
    path: str


def failure(err: BaseException) -> dict[str, Any]:
    """The result of work that failed: the project's own errors keep their exit code."""
    if isinstance(err, ChromaflowError):
        return {"ok": False, "error": str(err), "code": err.exit_code}
    return {"ok": False, "error": f"{type(err).__name__}: {err}", "code": EXIT_INTERNAL}


def where() -> dict[str, Any]:
    """This process's id and its Ray node (recorded with each piece of work)."""
    node = None
    try:
        import ray

        if ray.is_initialized():
            node = ray.get_runtime_context().get_node_id()
    except ImportError:
        pass
    return {"pid": os.getpid(), "node": node}


def local_references(specs: list[str] | None, segment: Segment) -> list[str]:
    """The ``--ref N=IMAGE`` specs inside the segment's context, renumbered from its first frame."""
    out = []
    for spec in specs or ():
        head, _, image = spec.partition("=")
        n = int(head.strip())
        if segment.context_start <= n < segment.context_end:
            out.append(f"{n - segment.context_start}={image}")
    return out


class BatchWorker:
    """What a batch actor does; it keeps the colour model between segments."""

    def __init__(self) -> None:
        self._colorizers: dict[tuple[Any, ...], Any] = {}

    def identity(self) -> dict[str, Any]:
        return where()

    def _colorizer(self, args: argparse.Namespace) -> Any:
        """The run's colour model, built as the colorize verb builds it, once per set of options."""
        from chromaflow.plugins.cli import colorize

        options = colorize.options_of(args)
        key = (repr(options), args.arch)
        if key not in self._colorizers:
            if args.arch and options.model is None:
                raise UsageError("--arch names the architecture of a --model file; --model none has no model")
            self._colorizers[key] = options.new_colorizer(args.arch or None)
        return self._colorizers[key]

    def _node(self, job: SegmentJob) -> FrameNode:
        args = job.args
        if job.verb == "deflicker":
            from chromaflow.filters.pyav import DeflickerNode
            from chromaflow.plugins.cli import deflicker

            return DeflickerNode(options=deflicker.options_of(args))
        from chromaflow.core.hints import collect_hints
        from chromaflow.core.transfer import load_references
        from chromaflow.filters.pyav import ColorizeNode
        from chromaflow.plugins.cli import colorize

        options = colorize.options_of(args)
        specs = local_references(args.ref, job.segment)
        references = load_references(specs) if specs else None
        hints = collect_hints(args.hint or (), args.hints_json)
        return ColorizeNode(
            self._colorizer(args), references=references, hints=hints or None, options=options
        )

    def segment(self, job: SegmentJob) -> dict[str, Any]:
        """Process one segment into its lossless file (module docstring)."""
        started = time.perf_counter()
        seg = job.segment
        try:
            node = self._node(job)
            out = SegmentFile(job.path)
            try:
                index = seg.context_start

                def keep(frames: list[Any]) -> None:
                    nonlocal index
                    for frame in frames:
                        if seg.start <= index < seg.end:
                            out.write(frame)
                        index += 1

                for frame in read_range(job.input, job.scan, seg.context_start, seg.context_end):
                    node.push(frame)
                    keep(node.pull())
                keep(node.flush())
                if out.frames != seg.frames:
                    raise ChromaflowError(
                        f"{job.input}: segment {seg.index} gave {out.frames} frames, expected {seg.frames}"
                    )
                out.commit()
            except BaseException:
                out.discard()
                raise
        except Exception as err:  # the item fails, the worker goes on
            return failure(err)
        return {
            "ok": True,
            "file": job.path,
            "sha256": sha256_file(job.path),
            "frames": out.frames,
            "tags": out.tags,
            "seconds": time.perf_counter() - started,
            **where(),
        }

    def scan(self, source: str, verb: str, args: argparse.Namespace) -> dict[str, Any]:
        return scan_item(source, verb, args)

    def join(
        self,
        source: str,
        output: str,
        paths: list[str],
        tags: dict[str, int],
        total: int,
        args: argparse.Namespace,
    ) -> dict[str, Any]:
        return join_item(source, output, paths, tags, total, args)

    def deepfake(self, source: str, args: argparse.Namespace, scores_path: str) -> dict[str, Any]:
        """Score one whole video into ``scores_path`` (JSON lines, as ``chromaflow deepfake --scores``)."""
        from chromaflow.core.scores_export import ScoresJsonlWriter
        from chromaflow.filters.pyav import DeepfakeNode, ScoredFrame, transcode
        from chromaflow.plugins.cli import deepfake

        started = time.perf_counter()
        jsonl: ScoresJsonlWriter | None = None
        try:
            run_args = copy.copy(args)
            run_args.output = None
            options = deepfake.options_of(run_args)
            jsonl = ScoresJsonlWriter(scores_path)
            writer = jsonl

            def on_result(item: ScoredFrame) -> None:
                writer.write_frame(item.result, item.frame, item.time)

            node = DeepfakeNode(options=options, on_result=on_result)
            report = transcode(source, None, [node], framerate=args.framerate, strict=args.strict)
            summary = node.summary()
            jsonl.close(summary)
        except Exception as err:
            if jsonl is not None:
                jsonl.abort()
            return failure(err)
        return {
            "ok": True,
            "files": {scores_path: sha256_file(scores_path)},
            "frames": report.frames_out,
            "summary": summary.to_json(),
            "seconds": time.perf_counter() - started,
            **where(),
        }


def scan_item(source: str, verb: str, args: argparse.Namespace) -> dict[str, Any]:
    """The scene-cut pass of one input (a Ray task per input): frame count, timestamps, cuts."""
    try:
        if verb == "deflicker":
            from chromaflow.plugins.cli import deflicker

            opts = deflicker.options_of(args)
            detector, max_side = opts.cut_detector(), opts.max_side
        else:
            from chromaflow.plugins.cli import colorize

            copts = colorize.options_of(args)
            detector, max_side = copts.cut_detector(), copts.params.max_side
        return {"ok": True, "scan": scan_video(source, detector, max_side), **where()}
    except Exception as err:
        return failure(err)


def join_item(
    source: str, output: str, paths: list[str], tags: dict[str, int], total: int, args: argparse.Namespace
) -> dict[str, Any]:
    """Join an item's segments into its final output (the source's timing, audio and subtitles; the run's encoder
    options), which appears under its name only when complete."""
    from chromaflow.filters.pyav import transcode

    started = time.perf_counter()
    try:
        report = transcode(
            source,
            output,
            [ReplayNode(paths, tags, total)],
            codec=args.codec,
            crf=args.crf,
            bitrate=args.bitrate,
            preset=args.preset,
            pix_fmt=args.pix_fmt,
            framerate=args.framerate,
            strict=args.strict,
        )
    except Exception as err:
        return failure(err)
    return {
        "ok": True,
        "files": {output: sha256_file(output)},
        "frames": report.frames_out,
        "seconds": time.perf_counter() - started,
        **where(),
    }
