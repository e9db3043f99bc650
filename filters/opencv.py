"""OpenCV host: run chromaflow's frame nodes on BGR numpy frames from a ``cv2.VideoCapture`` loop.

Example::

    import cv2
    from chromaflow.filters.opencv import NodeRunner
    from chromaflow.filters.pyav import ColorizeNode

    cap = cv2.VideoCapture("in.mp4")
    runner = NodeRunner(ColorizeNode(model="base"), fps=cap.get(cv2.CAP_PROP_FPS))
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        for out in runner.process(bgr):     # nodes batch and may hold frames back: 0..n frames come out
            cv2.imshow("colour", out)
    for out in runner.flush():
        cv2.imshow("colour", out)

Frames come back in order, as BGR uint8 arrays of the input's size (gray frames are taken as BGR with R=G=B).
"""

from fractions import Fraction

import av
import numpy as np

from chromaflow.core.errors import InputError
from chromaflow.filters.pyav.frames import rgb24_of
from chromaflow.filters.pyav.nodes import FrameNode


class NodeRunner:
    """Push BGR (or gray) uint8 frames through a :class:`FrameNode`; pull BGR uint8 frames back."""

    def __init__(self, node: FrameNode, fps: float = 25.0) -> None:
        self.node = node
        rate = Fraction(fps).limit_denominator(1001) if fps and fps > 0 else Fraction(25)
        self.time_base = 1 / rate
        self._count = 0

    def push(self, bgr: np.ndarray | None) -> None:
        """Give one frame (``HxWx3`` BGR or ``HxW`` gray, uint8), or ``None`` at the end."""
        if bgr is None:
            self.node.push(None)
            return
        if not isinstance(bgr, np.ndarray) or bgr.dtype != np.uint8:
            raise InputError("expected a uint8 numpy frame as cv2.VideoCapture.read() returns")
        if bgr.ndim == 2:  # gray frames join the BGR stream (a node needs one format per stream)
            bgr = np.repeat(bgr[:, :, None], 3, axis=2)
        if bgr.ndim == 3 and bgr.shape[2] == 3:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        else:
            raise InputError(f"expected an HxWx3 BGR or HxW gray frame, got shape {bgr.shape}")
        frame.pts = self._count
        frame.time_base = self.time_base
        self._count += 1
        self.node.push(frame)

    def pull(self) -> list[np.ndarray]:
        """The BGR frames that are ready."""
        return [np.ascontiguousarray(rgb24_of(f)[:, :, ::-1]) for f in self.node.pull()]

    def process(self, bgr: np.ndarray) -> list[np.ndarray]:
        """push(bgr) then pull()."""
        self.push(bgr)
        return self.pull()

    def flush(self) -> list[np.ndarray]:
        """End of the stream: every remaining frame."""
        self.node.push(None)
        return self.pull()
