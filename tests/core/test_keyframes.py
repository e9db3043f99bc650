"""KeyframeTransfer: propagation with known motion, occlusion, scene cuts, random access (tiny frames)."""

import importlib.util
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.flow import to_flow_luma
from chromaflow.core.transfer import KeyframeTransfer, PropagationParams, rgb_to_lab_planes
from chromaflow.core.transfer.propagate import ChainState, KeyData, anchor_chain, identity_positions

_spec = importlib.util.spec_from_file_location(
    "transfer_synth", Path(__file__).parents[1] / "support" / "transfer_synth.py"
)
assert _spec is not None and _spec.loader is not None
synth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synth)


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def hwc(ab: np.ndarray) -> np.ndarray:
    return ab.transpose(1, 2, 0)


def test_propagation_recovers_colour_of_a_translated_texture() -> None:
    ls, abs_ = synth.translated_sequence(n=8, step=(2, 1))
    kt = KeyframeTransfer({0: synth.rgb_of(ls[0], abs_[0])}, lambda t: ls[t], len(ls), mode="propagate")
    inner = (slice(4, -12), slice(4, -20))  # content that was in view at the keyframe
    for t in (3, 7):
        out = hwc(kt.ab(t))
        truth = abs_[t]
        assert rms(out[inner], truth[inner]) < 4.0, t
        assert rms(out[inner], truth[inner]) < 0.2 * rms(np.zeros_like(truth[inner]), truth[inner])
        info = kt.info(t)
        assert info.keyframe_distance == t and info.confidence > 0.5 and not info.scene_cut


def test_keyframe_itself_returns_the_reference_colours() -> None:
    ls, abs_ = synth.translated_sequence(n=3)
    ref = synth.rgb_of(ls[0], abs_[0])
    ls[0], ab0 = rgb_to_lab_planes(ref)  # the reference's own lightness (after its gamut clipping)
    kt = KeyframeTransfer({0: ref}, lambda t: ls[t], len(ls))
    assert rms(kt.ab(0), ab0) < 0.05
    rgb = kt.rgb(0)
    assert rgb.shape == (*ls[0].shape, 3)
    assert np.abs(rgb - ref).max() < 2e-3


def test_occluded_background_is_coloured_from_the_other_keyframe() -> None:
    ls, abs_, masks = synth.occluder_sequence(n=10)
    last = len(ls) - 1
    refs = {0: synth.rgb_of(ls[0], abs_[0]), last: synth.rgb_of(ls[last], abs_[last])}
    kt = KeyframeTransfer(refs, lambda t: ls[t], len(ls), mode="propagate")
    t = 5
    out = hwc(kt.ab(t))
    revealed = masks[0] & ~masks[t]  # hidden by the object at keyframe 0, visible now
    revealed[:, :6] = False
    assert revealed.sum() > 200
    assert rms(out[revealed], abs_[t][revealed]) < 6.0
    core = masks[t].copy()
    core[:, : np.argmax(masks[t].any(0)) + 4] = False  # away from the object's edges
    np.testing.assert_allclose(out[core & masks[t]].mean(0), [-40.0, 40.0], atol=6.0)


def test_scene_cut_stops_propagation() -> None:
    a_l, a_ab = synth.translated_sequence(n=4, seed=3)
    b_l, b_ab = synth.translated_sequence(n=4, seed=4)
    b_l = [np.clip(l + 25.0, 0, 100) for l in b_l]  # a different, brighter shot
    ls, abs_ = a_l + b_l, a_ab + b_ab
    kt = KeyframeTransfer({0: synth.rgb_of(ls[0], abs_[0])}, lambda t: ls[t], len(ls), mode="propagate")
    assert [kt.info(t).scene_cut for t in range(len(ls))] == [False] * 4 + [True] + [False] * 3
    assert kt.info(3).keyframe_distance == 3 and kt.info(3).confidence > 0.5
    for t in range(4, 8):
        assert kt.info(t).keyframe_distance == -1 and kt.info(t).confidence == 0.0
    # past the cut the frame still gets colour: a global transfer from the keyframe, not gray
    assert float(np.abs(kt.ab(5)).mean()) > 2.0
    # with a keyframe in each shot, each shot gets its own colours
    kt2 = KeyframeTransfer(
        {0: synth.rgb_of(ls[0], abs_[0]), 7: synth.rgb_of(ls[7], abs_[7])},
        lambda t: ls[t],
        len(ls),
        mode="propagate",
    )
    inner = (slice(4, -8), slice(4, -12))
    assert kt2.info(4).keyframe_distance == 3
    assert rms(hwc(kt2.ab(4))[inner], abs_[4][inner]) < 5.0
    assert rms(hwc(kt2.ab(3))[inner], abs_[3][inner]) < 5.0


@pytest.mark.parametrize("mode", ["auto", "knn"])
def test_random_access_from_threads_equals_sequential(mode: str) -> None:
    ls, abs_ = synth.translated_sequence(n=12, step=(1, 1))
    refs = {0: synth.rgb_of(ls[0], abs_[0]), 11: synth.rgb_of(ls[11], abs_[11])}

    def make() -> KeyframeTransfer:
        # tiny caches force states to be recomputed from checkpoints
        return KeyframeTransfer(
            refs, lambda t: ls[t], len(ls), mode=mode, cache_every=3, cache_states=2, cache_frames=4
        )

    seq = make()
    expected = [seq.ab(t) for t in range(len(ls))]
    rnd = make()
    order = list(range(len(ls))) * 2
    random.Random(0).shuffle(order)
    with ThreadPoolExecutor(4) as pool:
        got = list(pool.map(lambda t: (t, rnd.ab(t)), order))
    for t, ab in got:
        np.testing.assert_array_equal(ab, expected[t])
    assert [rnd.info(t) for t in range(len(ls))] == [seq.info(t) for t in range(len(ls))]


def test_bad_arguments_are_refused() -> None:
    ls, abs_ = synth.translated_sequence(n=3)
    ref = synth.rgb_of(ls[0], abs_[0])
    with pytest.raises(UsageError):
        KeyframeTransfer({0: ref}, lambda t: ls[t], 3, mode="magic")
    with pytest.raises(InputError):
        KeyframeTransfer({5: ref}, lambda t: ls[t], 3)
    with pytest.raises(InputError):
        KeyframeTransfer({0: ref[:, :20]}, lambda t: ls[t], 3, mode="propagate").ab(1)
    with pytest.raises(InputError):
        KeyframeTransfer({0: ref}, lambda t: ls[t], 3).ab(3)


def test_anchoring_pulls_drifted_positions_back_onto_the_keyframe() -> None:
    ls, abs_ = synth.translated_sequence(n=6, step=(2, 1))
    params = PropagationParams()
    t = 5
    truth = identity_positions(ls[0].shape) + np.array(
        [2.0 * t, 1.0 * t], np.float32
    )  # frame t -> keyframe 0
    drifted = ChainState(0, t, truth + np.array([1.5, -1.0], np.float32), np.ones(ls[0].shape, np.float32))
    key = KeyData(ls[0], abs_[0])
    anchored = anchor_chain(drifted, to_flow_luma(ls[t]), ls[t], to_flow_luma(ls[0]), key, params)
    inner = (slice(8, -20), slice(8, -24))  # seen at the keyframe, away from the borders
    before = np.abs(drifted.pos - truth)[inner].mean()
    after = np.abs(anchored.pos - truth)[inner].mean()
    assert before > 1.0 and after < 0.4 * before
    np.testing.assert_array_equal(anchored.valid, drifted.valid)  # anchoring moves positions, not trust
