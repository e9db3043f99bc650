"""VideoColorizer: random access and streaming give the same frames; bad set-ups are refused."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from chromaflow.core.colorizer import Colorizer
from chromaflow.core.errors import UsageError
from chromaflow.core.hints import parse_hint
from chromaflow.core.nets.base import BaseColorNet
from chromaflow.core.transfer import PropagationParams
from chromaflow.core.video import VideoColorizer, VideoColorizerStream

_spec = importlib.util.spec_from_file_location(
    "transfer_synth", Path(__file__).parents[1] / "support" / "transfer_synth.py"
)
assert _spec is not None and _spec.loader is not None
synth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synth)


def lightness_colorizer(l_star: np.ndarray) -> np.ndarray:
    """A deterministic stand-in for a colour net (the real nets need weights): ab as a function of L*."""
    return np.stack([0.5 * (l_star - 50.0), 20.0 * np.ones_like(l_star)], axis=-1).astype(np.float32)


def streamed(frames: list[np.ndarray], **options: object) -> dict[int, tuple[np.ndarray, dict[str, object]]]:
    stream = VideoColorizerStream(**options)
    out: dict[int, tuple[np.ndarray, dict[str, object]]] = {}
    order: list[int] = []
    for f in frames:
        for r in stream.push(f):
            out[r.frame_index] = (r.ab, r.info)
            order.append(r.frame_index)
    for r in stream.flush():
        out[r.frame_index] = (r.ab, r.info)
        order.append(r.frame_index)
    assert order == list(range(len(frames)))
    return out


@pytest.mark.parametrize(
    "options",
    [
        {"transfer": "auto", "smooth_radius": 1},
        {"transfer": "propagate", "smooth_radius": 0, "cache_every": 2},
        {"transfer": None, "smooth_radius": 2},
    ],
)
def test_streaming_equals_random_access(options: dict[str, object]) -> None:
    ls, abs_ = synth.translated_sequence(n=9, step=(1, 1))
    opts = dict(options)
    if opts.pop("transfer") is None:
        opts["colorizer"] = lightness_colorizer
    else:
        opts["references"] = {0: synth.rgb_of(ls[0], abs_[0]), 6: synth.rgb_of(ls[6], abs_[6])}
        opts["transfer"] = options["transfer"]
    random_access = VideoColorizer(len(ls), lambda t: ls[t], **opts)  # type: ignore[arg-type]
    expected = {t: (random_access.ab(t), random_access.info(t)) for t in reversed(range(len(ls)))}
    got = streamed(ls, **opts)
    for t in range(len(ls)):
        np.testing.assert_array_equal(got[t][0], expected[t][0])
        assert got[t][1] == expected[t][1]
    assert expected[0][0].shape == (2, *ls[0].shape)


def test_smoothing_reuses_the_flows_keyframe_transfer_computed(monkeypatch: pytest.MonkeyPatch) -> None:
    """With references and smoothing, each consecutive-frame flow is computed once (by the transfer's chains) and
    lent to the smoother, which still smooths. (A counting wrapper around the real DIS call, not a mock.)"""
    from chromaflow.core.temporal import smoother as smoother_module
    from chromaflow.core.transfer import frames as frames_module

    calls = {"smoother": 0, "transfer": 0}

    def counted(name: str, real: object) -> object:
        def run(*args: object, **kwargs: object) -> object:
            calls[name] += 1
            return real(*args, **kwargs)  # type: ignore[operator]

        return run

    monkeypatch.setattr(smoother_module, "compute_flow", counted("smoother", smoother_module.compute_flow))
    monkeypatch.setattr(frames_module, "compute_flow", counted("transfer", frames_module.compute_flow))
    ls, abs_ = synth.translated_sequence(n=7, step=(1, 1))
    refs = {0: synth.rgb_of(ls[0], abs_[0]), 6: synth.rgb_of(ls[6], abs_[6])}
    smoothed = VideoColorizer(len(ls), lambda t: ls[t], references=refs, smooth_radius=1)
    plain = VideoColorizer(len(ls), lambda t: ls[t], references=refs, smooth_radius=0)
    out = [smoothed.ab(t) for t in range(len(ls))]
    assert calls["smoother"] == 0 and 0 < calls["transfer"] <= 2 * (len(ls) - 1)
    assert any(not np.array_equal(out[t], plain.ab(t)) for t in range(1, len(ls) - 1))


def test_stream_lookahead_is_bounded_by_the_next_keyframe() -> None:
    ls, abs_ = synth.translated_sequence(n=8)
    stream = VideoColorizerStream(
        references={0: synth.rgb_of(ls[0], abs_[0]), 5: synth.rgb_of(ls[5], abs_[5])}
    )
    ready = [len(stream.push(f)) for f in ls]
    # frame 0 is a keyframe (ready at once); frames 1..5 wait for keyframe 5; 6 and 7 have no later keyframe, and
    # the fused transfer (auto, its encoder on the test's model path) reads one frame ahead
    assert stream.core.transfer is not None and stream.core.transfer.reads_ahead == 1
    assert ready == [1, 0, 0, 0, 0, 5, 0, 1]
    assert len(stream.flush()) == 1


def test_colorizer_fallback_and_transfer_colours() -> None:
    ls, _ = synth.translated_sequence(n=4)
    vc = VideoColorizer(len(ls), lambda t: ls[t], colorizer=lightness_colorizer)
    ab = vc.ab(2)
    np.testing.assert_allclose(ab[1].mean(), 20.0, atol=0.5)
    rgb = vc.rgb(2)
    assert rgb.shape == (*ls[2].shape, 3) and rgb.min() >= 0 and rgb.max() <= 1
    assert vc.info(2)["keyframe_distance"] == -1


def test_nothing_to_colour_with_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        VideoColorizer(3, lambda t: np.zeros((16, 16), np.float32))


def _tiny_colorizer() -> Colorizer:
    torch.manual_seed(0)
    return Colorizer(BaseColorNet(width=8).eval(), device="cpu", size=32)


def test_batched_model_streaming_equals_random_access_in_any_order() -> None:
    """The model runs on fixed blocks of batch_size frames, so order (and threads) cannot change a frame's colour."""
    ls, _ = synth.translated_sequence(n=8, step=(1, 1))
    opts = {"colorizer": _tiny_colorizer(), "smooth_radius": 1, "batch_size": 3}
    vc = VideoColorizer(len(ls), lambda t: ls[t], **opts)  # type: ignore[arg-type]
    order = [5, 7, 0, 3, 6, 1, 4, 2]  # the last block (6, 7) is partial
    expected = {t: vc.ab(t) for t in order}
    got = streamed(ls, **opts)
    for t in range(len(ls)):
        np.testing.assert_array_equal(got[t][0], expected[t])
    assert vc.lookahead == 1 + 2
    stream = VideoColorizerStream(**opts)
    ready = [len(stream.push(f)) for f in ls]
    # frame n waits for the end of the block holding frame n + 1: frames 0-1 after frame 2, 2-4 after 5, the rest
    assert ready == [0, 0, 2, 0, 0, 3, 0, 0] and len(stream.flush()) == 3


class HintEcho(torch.nn.Module):
    """Paints exactly its hints (ab under the mask, grey elsewhere)."""

    accepts_hints = True

    def forward(self, l: torch.Tensor, ab_hint: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return ab_hint * mask


def test_hints_are_in_full_frame_pixels_at_any_working_resolution() -> None:
    ls = [np.full((96, 128), 60.0, np.float32)] * 2
    echo = Colorizer(HintEcho(), device="cpu", size=32)
    hints = {1: [parse_hint("100,70,#ff0000,16")]}
    vc = VideoColorizer(
        2, lambda t: ls[t], colorizer=echo, hints=hints, params=PropagationParams(max_side=32)
    )
    a = vc.ab(1)[0]
    ys, xs = np.nonzero(a > 0.5 * a.max())
    assert a.max() > 20 and abs(xs.mean() - 100) < 8 and abs(ys.mean() - 70) < 8
    assert np.abs(vc.ab(0)).max() < 1e-3, "frame 0 has no hints"
    with pytest.raises(UsageError, match="hints"):
        VideoColorizer(
            2, lambda t: ls[t], colorizer=echo, hints=hints, references={0: np.zeros((96, 128, 3))}
        )
    with pytest.raises(UsageError, match="hints"):
        VideoColorizer(2, lambda t: ls[t], colorizer=lightness_colorizer, hints=hints)
