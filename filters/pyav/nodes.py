"""Push/pull frame nodes in the shape of ``av.filter.Graph``, and the chain that links them.

A node receives frames with :meth:`FrameNode.push`, hands back whatever is ready with :meth:`FrameNode.pull`
(possibly nothing: batching and temporal windows add delay), and is told the stream ended with ``push(None)``
or :meth:`FrameNode.flush`. Output frames keep the input frames' ``pts`` and ``time_base``.
"""

import collections
from collections.abc import Iterable, Sequence

import av
import av.filter

from chromaflow.core.errors import InputError, UsageError


class FrameNode:
    """Base class: a queue of ready frames plus the push/pull/flush protocol."""

    def __init__(self) -> None:
        self._ready: collections.deque[av.VideoFrame] = collections.deque()
        self._ended = False
        self.frames_in = 0
        self.frames_out = 0

    # -- protocol -----------------------------------------------------------------------------------------
    def push(self, frame: av.VideoFrame | None) -> None:
        """Give the node one frame, or ``None`` to say the stream has ended."""
        if self._ended:
            raise UsageError(
                f"{type(self).__name__}: push() after the end of the stream (push(None)/flush())"
            )
        if frame is None:
            self._ended = True
            self._emit(self._finish())
            return
        if not isinstance(frame, av.VideoFrame):
            raise InputError(f"{type(self).__name__}: expected an av.VideoFrame, got {type(frame).__name__}")
        self.frames_in += 1
        self._emit(self._accept(frame))

    def pull(self) -> list[av.VideoFrame]:
        """The frames that are ready now, in order (an empty list when none are)."""
        out = list(self._ready)
        self._ready.clear()
        self.frames_out += len(out)
        return out

    def flush(self) -> list[av.VideoFrame]:
        """End the stream and return every remaining frame."""
        if not self._ended:
            self.push(None)
        return self.pull()

    @property
    def delay(self) -> int:
        """Frames held back: how many pushes may pass before a frame comes out (an upper bound)."""
        return 0

    # -- for subclasses -------------------------------------------------------------------------------------
    def _accept(self, frame: av.VideoFrame) -> Iterable[av.VideoFrame]:
        """Take one frame; return the frames that became ready."""
        return (frame,)

    def _finish(self) -> Iterable[av.VideoFrame]:
        """The stream ended: return everything still held."""
        return ()

    def _emit(self, frames: Iterable[av.VideoFrame]) -> None:
        self._ready.extend(frames)


class BatchNode(FrameNode):
    """A node that processes frames in batches of ``batch_size`` (the last batch may be shorter)."""

    def __init__(self, batch_size: int = 8) -> None:
        super().__init__()
        if batch_size < 1:
            raise UsageError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = batch_size
        self._pending: list[av.VideoFrame] = []

    @property
    def delay(self) -> int:
        return self.batch_size - 1

    def _accept(self, frame: av.VideoFrame) -> Iterable[av.VideoFrame]:
        self._pending.append(frame)
        if len(self._pending) < self.batch_size:
            return ()
        batch, self._pending = self._pending, []
        return self.process_batch(batch)

    def _finish(self) -> Iterable[av.VideoFrame]:
        out: list[av.VideoFrame] = []
        if self._pending:
            batch, self._pending = self._pending, []
            out.extend(self.process_batch(batch))
        out.extend(self.finish_stream())
        return out

    def process_batch(self, frames: list[av.VideoFrame]) -> Sequence[av.VideoFrame]:
        """Process a batch; return the frames that are ready (subclasses with a window may hold some)."""
        raise NotImplementedError

    def finish_stream(self) -> Sequence[av.VideoFrame]:
        """Called once after the last batch: return frames still held by a temporal window."""
        return ()


def _split_chain(description: str) -> list[tuple[str, str | None]]:
    """``"scale=160:120,format=yuv420p"`` -> ``[("scale", "160:120"), ("format", "yuv420p")]``.

    Commas escaped with a backslash stay inside a filter's arguments.
    """
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in description:
        if escaped:
            current.append(ch)
            escaped = False
        elif ch == "\\":
            current.append(ch)
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
        else:
            current.append(ch)
    parts.append("".join(current))
    out: list[tuple[str, str | None]] = []
    for part in (p.strip() for p in parts):
        if not part:
            raise UsageError(f"empty filter in the chain {description!r}")
        name, _, args = part.partition("=")
        out.append((name.strip(), args.replace("\\,", ",") or None))
    return out


class FilterNode(FrameNode):
    """A linear chain of FFmpeg filters (``av.filter.Graph``) as a node, e.g. ``FilterNode("scale=160:120")``.

    The graph is built at the first frame, from that frame's size, format and time base.
    """

    def __init__(self, description: str) -> None:
        super().__init__()
        self.description = description
        self._filters = _split_chain(description)
        available = av.filter.filters_available
        for name, _ in self._filters:
            if name not in available:
                raise UsageError(
                    f"FFmpeg filter {name!r} is not available in this PyAV build ({description!r})"
                )
        self._graph: av.filter.Graph | None = None

    def _build(self, frame: av.VideoFrame) -> av.filter.Graph:
        graph = av.filter.Graph()
        nodes = [
            graph.add_buffer(
                width=frame.width, height=frame.height, format=frame.format.name, time_base=frame.time_base
            )
        ]
        try:
            nodes.extend(graph.add(name, args) for name, args in self._filters)
            nodes.append(graph.add("buffersink"))
            graph.link_nodes(*nodes).configure()
        except (av.error.FFmpegError, ValueError) as err:
            raise UsageError(f"cannot build the FFmpeg filter chain {self.description!r}: {err}") from err
        return graph

    def _drain(self) -> list[av.VideoFrame]:
        assert self._graph is not None
        out = []
        while True:
            try:
                out.append(self._graph.vpull())
            except (BlockingIOError, EOFError):
                return out
            except av.error.FFmpegError as err:
                if getattr(err, "errno", None) in (11, 35):  # EAGAIN on Linux / macOS
                    return out
                raise

    def _accept(self, frame: av.VideoFrame) -> Iterable[av.VideoFrame]:
        if frame.time_base is None:
            raise InputError(f"FilterNode({self.description!r}): frame {self.frames_in - 1} has no time_base")
        if self._graph is None:
            self._graph = self._build(frame)
        self._graph.vpush(frame)
        return self._drain()

    def _finish(self) -> Iterable[av.VideoFrame]:
        if self._graph is None:
            return ()
        self._graph.vpush(None)
        return self._drain()


class NodeChain(FrameNode):
    """Several nodes (or raw ``av.filter.Graph`` objects wrapped in :class:`GraphNode`) run one after another."""

    def __init__(self, nodes: Sequence[FrameNode]) -> None:
        super().__init__()
        self.nodes = list(nodes)

    @property
    def delay(self) -> int:
        return sum(node.delay for node in self.nodes)

    def _run(self, frames: list[av.VideoFrame | None]) -> list[av.VideoFrame]:
        for node in self.nodes:
            next_frames: list[av.VideoFrame | None] = []
            for frame in frames:
                node.push(frame)
                next_frames.extend(node.pull())
            if frames and frames[-1] is None:
                next_frames.append(None)
            frames = next_frames
        return [f for f in frames if f is not None]

    def _accept(self, frame: av.VideoFrame) -> Iterable[av.VideoFrame]:
        return self._run([frame])

    def _finish(self) -> Iterable[av.VideoFrame]:
        return self._run([None])


class GraphNode(FrameNode):
    """Wrap an already configured ``av.filter.Graph`` (one video buffer in, one sink out) as a node."""

    def __init__(self, graph: av.filter.Graph) -> None:
        super().__init__()
        self._graph = graph

    def _drain(self) -> list[av.VideoFrame]:
        out = []
        while True:
            try:
                out.append(self._graph.vpull())
            except (BlockingIOError, EOFError):
                return out

    def _accept(self, frame: av.VideoFrame) -> Iterable[av.VideoFrame]:
        self._graph.vpush(frame)
        return self._drain()

    def _finish(self) -> Iterable[av.VideoFrame]:
        self._graph.vpush(None)
        return self._drain()
