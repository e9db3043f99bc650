"""VideoColorizerStream(overlap=True): the colour model a batch ahead on a worker thread gives the same frames as
random access and the plain stream, at a fixed delay, and a model failure still reaches the caller."""

import threading

import numpy as np
import pytest
import torch

from chromaflow.core.colorizer import Colorizer
from chromaflow.core.errors import ModelError
from chromaflow.core.nets.base import BaseColorNet
from chromaflow.core.video import VideoColorizer, VideoColorizerStream


def _frames(n: int) -> list[np.ndarray]:
    """L* planes of a bright square moving over a gradient (the smoother has motion to follow)."""
    yy, xx = np.mgrid[0:40, 0:56].astype(np.float32)
    out = []
    for t in range(n):
        plane = 30.0 + 0.5 * xx + 0.3 * yy
        plane[10:22, 5 + 3 * t : 17 + 3 * t] = 85.0
        out.append(plane.astype(np.float32))
    return out


def _colorizer() -> Colorizer:
    torch.manual_seed(0)
    return Colorizer(BaseColorNet(width=8).eval(), device="cpu", size=32)


@pytest.mark.parametrize("count", [10, 12])  # a partial last block, and whole blocks only
def test_overlapped_stream_gives_the_random_access_frames_at_a_fixed_delay(count: int) -> None:
    frames = _frames(count)
    opts = {"colorizer": _colorizer(), "smooth_radius": 1, "batch_size": 3}
    core = VideoColorizer(count, lambda t: frames[t], **opts)  # type: ignore[arg-type]
    expected = [core.ab(t) for t in reversed(range(count))][::-1]
    plain = VideoColorizerStream(**opts)  # type: ignore[arg-type]
    stream = VideoColorizerStream(overlap=True, **opts)  # type: ignore[arg-type]
    assert stream.lookahead == plain.lookahead + 3
    out = []
    for i, frame in enumerate(frames):
        ready = stream.push(frame)
        # frame n comes out exactly when frame n + lookahead is pushed
        assert [r.frame_index for r in ready] == ([i - stream.lookahead] if i >= stream.lookahead else [])
        out += ready
    out += stream.flush()
    assert [r.frame_index for r in out] == list(range(count))
    for r in out:
        np.testing.assert_array_equal(r.ab, expected[r.frame_index])
    assert not [t for t in threading.enumerate() if t.name == "chromaflow-model"], "no worker left behind"


class _FailingModel:
    """A colour source that fails on its second batch (a stand-in for a model running out of memory)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, l_star: np.ndarray) -> np.ndarray:
        self.calls += 1
        if self.calls > 3:
            raise ModelError("the model failed on frame batch 2")
        return np.stack([l_star - 50.0, np.zeros_like(l_star)], axis=-1).astype(np.float32)


def test_a_model_error_on_the_worker_reaches_the_caller() -> None:
    stream = VideoColorizerStream(colorizer=_FailingModel(), smooth_radius=1, batch_size=3, overlap=True)
    with pytest.raises(ModelError, match="batch 2"):
        for frame in _frames(12):
            stream.push(frame)
        stream.flush()
