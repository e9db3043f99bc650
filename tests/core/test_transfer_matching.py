"""Non-local matching, the learned fusion and the ``auto`` / ``flow`` transfer modes (tiny synthetic frames).

The matching encoder here is MobileNetV2 with seeded random weights (torchvision's initialisation), not the ImageNet
file, which is not in the test's model cache; the matching code paths are the same. The fusion runs with the
committed weights.
"""

import dataclasses
import random
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

from chromaflow.core import registry
from chromaflow.core.errors import ModelError, UsageError
from chromaflow.core.nets.mobilenet_v2 import REGISTRY_NAME
from chromaflow.core.nets.transfer_fusion import TransferFusion, parameter_count
from chromaflow.core.transfer import KeyframeTransfer
from chromaflow.core.transfer.fusion import WEIGHTS, Fusion, FusionCues, fusion_inputs, load_fusion
from chromaflow.core.transfer.matching import (
    FeatureEncoder,
    MatchParams,
    MatchSource,
    match_grid,
    memory_frames,
    to_working,
)
from chromaflow.core.transfer.modes import check_transfer_mode

from support import transfer_synth as synth


@pytest.fixture(scope="module")
def encoder() -> FeatureEncoder:
    return synth.seeded_matching_encoder()


def err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def test_matching_refinds_content_the_flow_chain_loses(encoder: FeatureEncoder) -> None:
    ls, abs_, masks = synth.reentry_sequence()
    n = len(ls) - 1
    obj = masks[n]
    params = MatchParams()
    key = MatchSource.of(encoder(ls[0]), abs_[0], np.ones(ls[0].shape, np.float32))
    ab_g, conf_g, best = match_grid(encoder(ls[n]), [key], params, params.memory_conf)
    ab, conf = to_working(ls[n], ab_g, conf_g, params)
    assert ab.shape == (*ls[n].shape, 2) and conf.shape == ls[n].shape
    assert conf.min() >= 0.0 and conf.max() <= 1.0 and best.max() <= 1.0 + 1e-5
    kt = KeyframeTransfer({0: synth.rgb_of(ls[0], abs_[0])}, lambda t: ls[t], len(ls), mode="flow")
    flow = kt.ab(n).transpose(1, 2, 0)
    # the object came back elsewhere: the chain has lost it, the matching finds it
    assert err(flow[obj], abs_[n][obj]) > 35.0
    assert err(ab[obj], abs_[n][obj]) < 0.5 * err(flow[obj], abs_[n][obj])


def test_memory_frames_are_every_nth_frame_nearest_first() -> None:
    p = MatchParams(memory_every=4, memory_size=2)
    assert memory_frames(0, 13, p) == [8, 12]
    assert memory_frames(20, 9, p) == [16, 12]
    assert memory_frames(0, 4, p) == []  # strictly between keyframe and frame
    assert memory_frames(0, 30, dataclasses.replace(p, memory_size=0)) == []


def test_unconfident_memory_cells_are_not_candidates(encoder: FeatureEncoder) -> None:
    ls, abs_, _ = synth.reentry_sequence()
    feats = encoder(ls[1])
    unsure = MatchSource.of(feats, abs_[1], np.full(ls[1].shape, 0.2, np.float32))
    ab, conf, _ = match_grid(encoder(ls[2]), [unsure], MatchParams(), min_conf=0.6)
    assert not ab.any() and not conf.any()
    sure = dataclasses.replace(unsure, conf=np.ones_like(unsure.conf))
    _, conf, _ = match_grid(encoder(ls[2]), [sure], MatchParams(), min_conf=0.6)
    assert conf.max() > 0.5


@pytest.mark.parametrize(
    "bad",
    [{"top_k": 0}, {"temperature": 0.0}, {"radius": 0.0}, {"memory_every": 0}, {"lightness_weight": -1.0}],
)
def test_match_params_refuse_bad_values(bad: dict[str, object]) -> None:
    with pytest.raises(UsageError):
        MatchParams(**bad)  # type: ignore[arg-type]


def test_fusion_is_small_and_its_weights_load_safely() -> None:
    net = load_fusion()
    assert parameter_count(net) == 15
    stored = torch.load(WEIGHTS, weights_only=True)
    assert set(stored) == {"linear.weight", "linear.bias"}
    assert WEIGHTS.stat().st_size < 5_000


def test_fusion_refuses_other_weights(tmp_path: Path) -> None:
    other = tmp_path / "other.pt"
    torch.save({"conv.weight": torch.zeros(3, 3)}, other)
    with pytest.raises(ModelError, match="TransferFusion"):
        load_fusion(other)
    with pytest.raises(ModelError, match="missing"):
        load_fusion(tmp_path / "absent.pt")


def _cues(rng: np.random.Generator, h: int = 40, w: int = 56) -> FusionCues:
    def plane(lo: float, hi: float, *extra: int) -> np.ndarray:
        return rng.uniform(lo, hi, (h, w, *extra)).astype(np.float32)

    return FusionCues(
        plane(0, 100),
        plane(-60, 60, 2),
        plane(0, 1),
        plane(0, 1),
        plane(-60, 60, 2),
        plane(0, 1),
        plane(0, 1),
    )


def test_fusion_output_is_bounded_deterministic_and_keeps_confident_chains() -> None:
    cues = _cues(np.random.default_rng(0))
    a, b = Fusion()(cues), Fusion()(cues)
    assert np.array_equal(a.alpha, b.alpha) and a.alpha.shape == cues.chain_conf.shape
    assert a.alpha.min() >= 0.0 and a.alpha.max() <= 1.0 - cues.chain_conf.min() + 1e-6
    lo, hi = np.minimum(cues.chain_conf, cues.match_conf), np.maximum(cues.chain_conf, cues.match_conf)
    assert np.all(a.conf >= lo - 1e-6) and np.all(a.conf <= hi + 1e-6)
    sure = dataclasses.replace(cues, chain_conf=np.ones_like(cues.chain_conf))
    assert not Fusion()(sure).alpha.any(), "where the chains are sure, their colour is kept"


def test_fusion_inputs_are_reliability_cues_not_colours() -> None:
    cues = _cues(np.random.default_rng(1))
    shifted = dataclasses.replace(cues, flow_ab=cues.flow_ab + 30.0, match_ab=cues.match_ab + 30.0)
    x = fusion_inputs(cues)
    assert x.shape == (1, 7, 40, 56)
    assert torch.allclose(x, fusion_inputs(shifted), atol=1e-5), (
        "the same disagreement of other colours: the same input"
    )


def test_flow_mode_is_known_and_auto_without_the_encoder_weights_is_flow(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    check_transfer_mode("flow")
    monkeypatch.setenv("CHROMAFLOW_MODEL_PATH", str(tmp_path))  # hide the session's ImageNet encoder
    assert not registry.is_present(REGISTRY_NAME)
    ls, abs_, _ = synth.reentry_sequence(n=5)
    refs = {0: synth.rgb_of(ls[0], abs_[0])}
    auto = KeyframeTransfer(refs, lambda t: ls[t], len(ls), mode="auto")
    flow = KeyframeTransfer(refs, lambda t: ls[t], len(ls), mode="flow")
    assert auto.encoder is None
    for t in range(len(ls)):
        assert np.array_equal(auto.ab(t), flow.ab(t))
    # a reference whose lightness matches nothing (the frame's negative): the fallback colours the frames, knn in
    # flow as in auto
    other = {0: synth.rgb_of(100.0 - ls[0], abs_[0])}
    outs = {
        m: KeyframeTransfer(other, lambda t: ls[t], len(ls), mode=m).ab(3)
        for m in ("auto", "flow", "propagate")
    }
    assert np.array_equal(outs["auto"], outs["flow"])
    assert not np.array_equal(
        outs["flow"], outs["propagate"]
    )  # propagate's fallback is the histogram transfer


def test_auto_uses_the_encoder_from_the_model_cache() -> None:
    assert registry.is_present(REGISTRY_NAME)  # the session's ImageNet file, on the model path
    ls, abs_, _ = synth.reentry_sequence(n=4)
    kt = KeyframeTransfer({0: synth.rgb_of(ls[0], abs_[0])}, lambda t: ls[t], len(ls), mode="auto")
    assert kt.encoder is not None and kt.fusion is not None
    assert (
        KeyframeTransfer({0: synth.rgb_of(ls[0], abs_[0])}, lambda t: ls[t], len(ls), mode="flow").encoder
        is None
    )


def test_auto_fuses_and_is_the_same_in_any_order_and_from_threads(encoder: FeatureEncoder) -> None:
    ls, abs_, _ = synth.reentry_sequence(n=8)
    last = len(ls) - 1
    refs = {0: synth.rgb_of(ls[0], abs_[0])}
    params = MatchParams(memory_every=2, memory_size=2)

    def make(mode: str = "auto") -> KeyframeTransfer:
        return KeyframeTransfer(
            refs, lambda t: ls[t], len(ls), mode=mode, encoder=encoder, match_params=params
        )

    seq = make()
    expected = [seq.ab(t) for t in range(len(ls))]
    infos = [seq.info(t) for t in range(len(ls))]
    flow = make("flow")
    assert any(not np.array_equal(expected[t], flow.ab(t)) for t in range(1, len(ls)))
    assert all(0.0 <= i.confidence <= 1.0 for i in infos) and infos[0].confidence == 1.0
    order = list(range(len(ls)))[::-1]
    rev = make()
    assert all(np.array_equal(rev.ab(t), expected[t]) for t in order)
    random.Random(0).shuffle(order)
    threaded = make()
    with ThreadPoolExecutor(4) as pool:
        got = dict(zip(order, pool.map(threaded.ab, order), strict=True))
    assert all(np.array_equal(got[t], expected[t]) for t in range(len(ls)))
    assert all(np.array_equal(threaded.ab_work(t), make().ab_work(t)) for t in (last, 3))
    assert [threaded.info(t) for t in range(len(ls))] == infos


def test_fusion_net_shapes_and_gate() -> None:
    net = TransferFusion()
    x = torch.rand(2, 7, 30, 45)
    assert net(x).shape == (2, 1, 30, 45)
    x[:, 0] = 1.0  # chain confidence
    assert not net(x).any()


def test_fusion_cues_are_given_where_something_is_fused(encoder: FeatureEncoder) -> None:
    ls, abs_, _ = synth.reentry_sequence(n=5)
    refs = {0: synth.rgb_of(ls[0], abs_[0])}
    auto = KeyframeTransfer(refs, lambda t: ls[t], len(ls), mode="auto", encoder=encoder)
    flow = KeyframeTransfer(refs, lambda t: ls[t], len(ls), mode="flow")
    assert auto.fusion_cues(0) is None and flow.fusion_cues(3) is None
    cues = auto.fusion_cues(3)
    assert cues is not None and cues.match_ab.shape == (*ls[3].shape, 2)
    assert np.array_equal(cues.flow_ab, flow.ab_work(3).transpose(1, 2, 0)), "the flow transfer's own colour"
    assert auto.reads_ahead == 1 and flow.reads_ahead == 0
