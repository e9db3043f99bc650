"""``benchmarks/transfer_ceilings.py``: the oracles, the matching and the fusion fitted away from the sequence it is
scored on (tiny synthetic frames).

The matching encoder is MobileNetV2 with seeded random weights (torchvision's initialisation), not the ImageNet file
the benchmark loads; the matching code path is the same.
"""

from types import ModuleType

import numpy as np
import pytest

from chromaflow.core.transfer import KeyframeTransfer

from support import transfer_synth as synth
from support.scripts import load_benchmark


@pytest.fixture(scope="module")
def ceilings() -> ModuleType:
    return load_benchmark("transfer_ceilings")


def parts(ceilings: ModuleType, truth: np.ndarray, match: np.ndarray, conf: float = 0.0) -> object:
    """FrameParts whose flow colour is truth + 10 in a and whose cues are all the same."""
    h, w = truth.shape[:2]
    flow = truth + np.array([10.0, 0.0], np.float32)
    cues = np.full((7, h, w), 0.5, np.float32)
    cues[0] = conf
    candidates = {"flow": flow, "chain": flow, "fill": flow, "match": match.astype(np.float32)}
    return ceilings.FrameParts(truth, candidates, np.full((h, w), conf, np.float32), cues)


def test_oracle_takes_the_nearest_candidate_per_pixel(ceilings: ModuleType) -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(-40, 40, (6, 8, 2)).astype(np.float32)
    match = truth.copy()
    match[:3] += 20.0  # worse than flow in the top half, exact in the bottom half
    p = parts(ceilings, truth, match)
    best = ceilings.oracle(p, ("flow", "match"))
    assert np.array_equal(best[:3], p.candidates["flow"][:3])
    assert np.array_equal(best[3:], truth[3:])
    gains = [ceilings.gain_db(p, p.candidates[n]) for n in ("flow", "match")]
    assert gains[0] == pytest.approx(0.0)
    assert ceilings.gain_db(p, best) > max(gains)


def test_confidence_power_one_is_the_plain_compose(ceilings: ModuleType) -> None:
    rng = np.random.default_rng(1)
    truth = rng.uniform(-40, 40, (5, 5, 2)).astype(np.float32)
    p = parts(ceilings, truth, truth, conf=0.3)
    p.candidates["chain"] = truth
    out = ceilings.powered_compose(p, 1.0)
    assert np.allclose(out, 0.3 * truth + 0.7 * p.candidates["fill"], atol=1e-5)
    assert not np.allclose(ceilings.powered_compose(p, 0.5), out)


def test_the_fusion_scored_on_a_sequence_never_saw_it(ceilings: ModuleType) -> None:
    rng = np.random.default_rng(2)
    truth = rng.uniform(-40, 40, (16, 16, 2)).astype(np.float32)
    exact = parts(ceilings, truth, truth)  # "good": matching is exact
    wrong = parts(ceilings, truth, truth + 60.0)  # "bad": matching is far off
    data = {"good": {"key0": [exact] * 3}, "bad": {"key0": [wrong] * 3}}
    result = ceilings.score(data, ["good", "bad"])
    # fitted on "good" alone, the fusion trusts the matching, which costs on "bad"; fitted on "bad" alone it
    # leaves "good" at the flow colour. Had either fit seen the sequence it is scored on, both would gain.
    assert result["bad"]["key0"]["fused_fitted_elsewhere"] < -1.0
    assert abs(result["good"]["key0"]["fused_fitted_elsewhere"]) < 1.0
    alone = ceilings.score({"good": data["good"]}, ["good"])
    assert "fused_fitted_elsewhere" not in alone["good"]["key0"]
    assert alone["good"]["key0"]["match"] > 10.0


def test_matching_carries_the_keyframe_colour_to_a_moved_frame(ceilings: ModuleType) -> None:
    """A textured canvas whose colour follows its large-scale lightness, moved by (4, 2) px a frame: the keyframe's
    colour reaches frame 5 through the matching (memory frame 4 included) far closer than its mean colour."""
    rng = np.random.default_rng(3)
    big = synth.smooth_noise(rng, (120, 160), 8.0)
    canvas_l = np.clip(50 + 30 * big + 6 * synth.smooth_noise(rng, (120, 160), 1.5), 5, 95)
    canvas_ab = np.stack((36 * big, -24 * big), axis=-1)
    ls, abs_ = [], []
    for t in range(6):
        x0, y0 = 8 + 4 * t, 8 + 2 * t
        ls.append(np.ascontiguousarray(canvas_l[y0 : y0 + 64, x0 : x0 + 96], dtype=np.float32))
        abs_.append(np.ascontiguousarray(canvas_ab[y0 : y0 + 64, x0 : x0 + 96], dtype=np.float32))
    encoder = synth.seeded_matching_encoder()

    def match_error() -> float:
        refs = {0: synth.rgb_of(ls[0], abs_[0])}
        kt = KeyframeTransfer(refs, lambda t: ls[t], len(ls), mode="auto", encoder=encoder)
        p = ceilings.frame_parts(kt, 5, abs_[5])
        assert set(p.candidates) == {"flow", "chain", "fill", "match"} and p.cues.shape == (7, 64, 96)
        assert p.cues[2].min() >= 0.0 and p.cues[2].max() <= 1.0  # matching confidence
        flow = KeyframeTransfer(refs, lambda t: ls[t], len(ls), mode="flow").ab_work(5)
        assert np.array_equal(p.candidates["flow"], flow.transpose(1, 2, 0)), "the flow transfer's own colour"
        return float(np.abs(p.candidates["match"] - p.truth).mean())

    err_mean = float(np.abs(abs_[0].mean(axis=(0, 1)) - abs_[5]).mean())  # the keyframe's mean colour
    assert match_error() < 0.5 * err_mean
