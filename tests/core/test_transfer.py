"""Global and knn transfers, the guided filter and reference loading (tiny synthetic images)."""

import importlib.util
from pathlib import Path

import cv2
import numpy as np
import pytest

from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.transfer import (
    PropagationParams,
    colorizer_ab,
    lab_planes_to_rgb,
    load_references,
    resize_chw,
    resize_plane,
    rgb_to_lab_planes,
    to_lightness,
    upsample_ab,
)
from chromaflow.core.transfer.bilateral_fill import cascade_fill
from chromaflow.core.transfer.global_stats import histogram, reinhard
from chromaflow.core.transfer.guided import guided_filter, guided_upsample
from chromaflow.core.transfer.knn import knn
from chromaflow.core.transfer.propagate import full_positions, identity_positions, sample_full, to_full_size

_spec = importlib.util.spec_from_file_location(
    "transfer_synth", Path(__file__).parents[1] / "support" / "transfer_synth.py"
)
assert _spec is not None and _spec.loader is not None
synth = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(synth)


def ab_of_l(l: np.ndarray) -> np.ndarray:
    """A colour that is a (non-monotone) function of lightness."""
    return np.stack([35 * np.cos(l / 15.0), 30 * np.sin(l / 20.0)], axis=-1).astype(np.float32)


def pattern(seed: int, size: tuple[int, int] = (48, 64)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(50 + 35 * synth.smooth_noise(rng, size, 3.0), 10, 90).astype(np.float32)


def rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a - b) ** 2)))


def test_knn_recovers_colour_that_is_a_function_of_lightness() -> None:
    l_ref = pattern(0)
    l_tgt = np.ascontiguousarray(np.rot90(l_ref))  # same lightness and texture statistics, other layout
    ref = synth.rgb_of(l_ref, ab_of_l(l_ref))
    truth = ab_of_l(l_tgt)
    out = knn(ref, l_tgt)
    assert out.shape == (*l_tgt.shape, 2)
    assert rms(out, truth) < 4.5
    assert rms(out, truth) < 0.2 * rms(np.zeros_like(truth), truth)


@pytest.mark.parametrize("method", [histogram, reinhard])
def test_global_transfers_follow_lightness(method: object) -> None:
    l_ref, l_tgt = pattern(2), pattern(3)
    ref = synth.rgb_of(l_ref, ab_of_l(l_ref))
    truth = ab_of_l(l_tgt)
    out = method(ref, l_tgt, bands=8)  # type: ignore[operator]
    mean_only = np.broadcast_to(ab_of_l(l_ref).reshape(-1, 2).mean(0), truth.shape)
    assert rms(out, truth) < 0.6 * rms(mean_only, truth)


def test_reinhard_one_band_gives_the_reference_mean() -> None:
    l_ref = pattern(4)
    ab = np.zeros((*l_ref.shape, 2), np.float32)
    ab[..., 0], ab[..., 1] = 20.0, -10.0
    out = reinhard(synth.rgb_of(l_ref, ab), pattern(5), bands=1)
    np.testing.assert_allclose(out.reshape(-1, 2).mean(0), [20.0, -10.0], atol=0.5)


def test_reinhard_matches_target_ab_moments_when_given() -> None:
    rng = np.random.default_rng(0)
    l = pattern(6)
    ref_ab = np.stack([10 + 8 * rng.standard_normal(l.shape), -5 + 4 * rng.standard_normal(l.shape)], -1)
    tgt_ab = np.stack([2 * rng.standard_normal(l.shape), 3 * rng.standard_normal(l.shape)], -1).astype(
        np.float32
    )
    ref = synth.rgb_of(l, ref_ab.astype(np.float32))
    _, ref_ab_actual = rgb_to_lab_planes(ref)  # (2, H, W)
    out = reinhard(ref, l, target_ab=tgt_ab, bands=1)
    np.testing.assert_allclose(out.reshape(-1, 2).std(0), ref_ab_actual.reshape(2, -1).std(1), rtol=0.15)


def test_guided_filter_keeps_edges_that_the_guide_has() -> None:
    guide = np.zeros((32, 32), np.float32)
    guide[:, 16:] = 80.0
    src = np.where(guide[..., None] > 0, 30.0, -30.0).astype(np.float32) * np.ones((1, 1, 2), np.float32)
    noisy = src + np.random.default_rng(0).normal(0, 5, src.shape).astype(np.float32)
    out = guided_filter(guide, noisy, 3, 1.0)
    assert abs(out[5, 14, 0] - -30) < 3 and abs(out[5, 17, 0] - 30) < 3  # no bleeding across the edge
    assert out[:, :12].std() < noisy[:, :12].std() / 2  # smoothed inside regions
    big = cv2.resize(guide, (64, 64), interpolation=cv2.INTER_NEAREST)
    up = guided_upsample(guide, src, big, 2, 1.0)
    assert up.shape == (64, 64, 2)
    assert abs(up[10, 30, 0] - -30) < 2 and abs(up[10, 33, 0] - 30) < 2


def test_to_lightness_reads_gray_planes_and_lstar() -> None:
    gray = np.full((4, 4), 119, np.uint8)  # sRGB 119 is about L* 50
    assert abs(float(to_lightness(gray).mean()) - 50.0) < 0.5
    l = np.full((4, 4), 42.0, np.float32)
    np.testing.assert_array_equal(to_lightness(l), l)
    with pytest.raises(InputError):
        to_lightness(np.zeros((4, 4), np.int32))


def test_load_references_parses_specs(tmp_path: Path) -> None:
    img = np.zeros((8, 10, 3), np.uint8)
    img[..., 2] = 255  # BGR on disk: red
    cv2.imwrite(str(tmp_path / "k.png"), img)
    refs = load_references([f"3={tmp_path / 'k.png'}"])
    assert list(refs) == [3]
    np.testing.assert_allclose(refs[3][0, 0], [1.0, 0.0, 0.0])
    with pytest.raises(UsageError):
        load_references(["k.png"])
    with pytest.raises(InputError):
        load_references([f"0={tmp_path / 'missing.png'}"])


def test_fast_lab_to_rgb_agrees_with_the_reference_conversion() -> None:
    rng = np.random.default_rng(1)
    l = rng.uniform(0, 100, (16, 24)).astype(np.float32)
    ab = rng.uniform(-60, 60, (2, 16, 24)).astype(np.float32)
    fast = lab_planes_to_rgb(l, ab)
    ref = lab_planes_to_rgb(l, ab, fast=False)
    assert fast.shape == (16, 24, 3) and fast.dtype == np.float32
    np.testing.assert_allclose(fast, ref, atol=3e-4)


def test_chain_colour_is_sampled_once_at_full_resolution() -> None:
    rng = np.random.default_rng(2)
    ab_full = rng.uniform(-50, 50, (60, 84, 2)).astype(np.float32)  # full-resolution detail
    ident = identity_positions((30, 42))
    np.testing.assert_allclose(sample_full(ab_full, ident), ab_full, atol=1e-3)  # no blur from the work size
    shifted = ident + np.array([2.0, 1.0], np.float32)  # 2 px right, 1 px down at the working size
    out = sample_full(ab_full, shifted)
    np.testing.assert_allclose(out[5:-5, 5:-8], ab_full[7:-3, 9:-4], atol=1e-3)  # = 4 px, 2 px at full size
    assert full_positions(ident, (60, 84)).shape == (60, 84, 2)


def test_grid_fill_takes_colour_from_pixels_of_similar_lightness() -> None:
    h, w = 40, 60
    l = np.full((h, w), 25.0, np.float32)
    l[:, 30:] = 75.0  # dark left surface, bright right surface
    ab = np.zeros((h, w, 2), np.float32)
    ab[:, :30] = (30.0, 10.0)
    ab[:, 30:] = (-20.0, 35.0)
    conf = np.ones((h, w), np.float32)
    conf[:, 20:40] = 0.0  # colour unknown on a band across the edge
    given = ab * conf[..., None]  # unknown pixels hold no colour
    big_l = cv2.resize(l, (2 * w, 2 * h), interpolation=cv2.INTER_NEAREST)
    out = cascade_fill(l, given, conf, big_l, ((8.0, 8.0), (32.0, 16.0)), None, 2.0)
    assert out.shape == (2 * h, 2 * w, 2)
    np.testing.assert_allclose(
        out[:, 50:58].reshape(-1, 2).mean(0), [30.0, 10.0], atol=1.0
    )  # dark, near edge
    np.testing.assert_allclose(out[:, 62:70].reshape(-1, 2).mean(0), [-20.0, 35.0], atol=1.0)  # bright side
    spatial = (
        cv2.GaussianBlur(given, (0, 0), 8.0)
        / np.maximum(cv2.GaussianBlur(conf, (0, 0), 8.0), 1e-6)[..., None]
    )
    assert abs(spatial[:, 29, 0] - 30.0).mean() > 5.0  # a purely spatial fill bleeds across the edge


def test_the_package_edge_speaks_channels_first_ab() -> None:
    """What leaves chromaflow.core.transfer is ab (2, H, W), as in the rest of core; (H, W, 2) stays inside."""
    rng = np.random.default_rng(3)
    l = pattern(7)
    rgb = synth.rgb_of(l, ab_of_l(l))
    l_back, ab = rgb_to_lab_planes(rgb)
    assert ab.shape == (2, *l.shape) and ab.flags.c_contiguous
    np.testing.assert_allclose(lab_planes_to_rgb(l_back, ab), rgb, atol=2e-3)
    with pytest.raises(InputError, match=r"\(2, H, W\)"):
        lab_planes_to_rgb(l_back, ab.transpose(1, 2, 0))  # the internal layout is refused at the edge
    # upsampling after smoothing: the channels-first form computes exactly what the internal upsampler does
    params = PropagationParams()
    ab_work = rng.uniform(-40, 40, (2, 24, 32)).astype(np.float32)
    l_work = cv2.resize(l, (32, 24), interpolation=cv2.INTER_AREA)
    full = upsample_ab(l_work, ab_work, l, params)
    assert full.shape == (2, *l.shape)
    inside = to_full_size(l_work, np.ascontiguousarray(ab_work.transpose(1, 2, 0)), l, params)
    np.testing.assert_array_equal(full, inside.transpose(2, 0, 1))
    # OpenCV resizes a 2-channel image a little differently from two planes: resize_chw is the 2-channel one
    bigger = resize_chw(ab_work, (48, 64))
    assert bigger.shape == (2, 48, 64)
    np.testing.assert_array_equal(
        bigger, resize_plane(ab_work.transpose(1, 2, 0), (48, 64)).transpose(2, 0, 1)
    )


def test_a_colorizer_callable_may_answer_either_layout() -> None:
    l = pattern(8)
    ab = np.stack([l - 50.0, 50.0 - l]).astype(np.float32)
    np.testing.assert_array_equal(colorizer_ab(lambda _l: ab, l), ab)
    np.testing.assert_array_equal(colorizer_ab(lambda _l: ab.transpose(1, 2, 0), l), ab)
    with pytest.raises(InputError, match="colorizer returned ab of shape"):
        colorizer_ab(lambda _l: ab[:, :-1], l)
