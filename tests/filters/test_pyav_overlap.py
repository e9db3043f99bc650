"""ColorizeNode(overlap=True), as `chromaflow colorize` builds it: the same frames as the plain node, one batch
later, in order."""

import av
import numpy as np
import torch

from chromaflow.core.colorizer import Colorizer
from chromaflow.core.nets.base import BaseColorNet
from chromaflow.filters.pyav import ColorizeNode
from chromaflow.filters.pyav.frames import plane_view

from support.pyav_synth import synth_rgb


def _frames(n: int) -> list[av.VideoFrame]:
    out = []
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(synth_rgb(64, 48, i), format="rgb24").reformat(format="yuv420p")
        frame.pts = i
        out.append(frame)
    return out


def _run(node: ColorizeNode, frames: list[av.VideoFrame]) -> tuple[list[av.VideoFrame], list[int]]:
    out: list[av.VideoFrame] = []
    counts = []
    for frame in frames:
        node.push(frame)
        out.extend(node.pull())
        counts.append(len(out))
    return out + list(node.flush()), counts


def test_overlapped_node_gives_the_plain_nodes_frames_one_batch_later() -> None:
    torch.manual_seed(0)
    colorizer = Colorizer(BaseColorNet(width=8).eval(), device="cpu", size=32)
    frames = _frames(11)
    plain, _ = _run(ColorizeNode(colorizer, smooth=1, batch_size=3), frames)
    node = ColorizeNode(colorizer, smooth=1, batch_size=3, overlap=True)
    assert node.delay == ColorizeNode(colorizer, smooth=1, batch_size=3).delay + 3 == 1 + 2 + 3
    got, counts = _run(node, frames)
    assert counts == [max(0, i + 1 - node.delay) for i in range(len(frames))]
    assert [f.pts for f in got] == [f.pts for f in plain] == list(range(11))
    for a, b in zip(got, plain, strict=True):
        for plane in range(3):
            np.testing.assert_array_equal(plane_view(a, plane), plane_view(b, plane))
