"""Metrics against scikit-image and hand-computed cases."""

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from chromaflow.core.errors import InputError
from chromaflow.core.metrics import auc, cdc, chroma_warp_error, colorfulness, js_divergence, psnr, ssim


def images(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.integers(0, 256, (40, 52, 3)).astype(np.uint8)
    noise = rng.normal(0, 12, a.shape)
    b = np.clip(a + noise, 0, 255).astype(np.uint8)
    return a, b


def test_psnr_matches_skimage_and_hand_value() -> None:
    a, b = images()
    assert psnr(a, b) == pytest.approx(peak_signal_noise_ratio(a, b, data_range=255), abs=1e-9)
    x = np.zeros((4, 4))
    y = np.full((4, 4), 0.1)
    assert psnr(x, y, data_range=1.0) == pytest.approx(20.0)  # MSE 0.01 -> 20 dB
    assert psnr(x, x) == float("inf")


def test_ssim_matches_skimage_gaussian_wang2004() -> None:
    a, b = images(1)
    ours = ssim(a, b, data_range=255, channel_axis=-1)
    ref = structural_similarity(
        a, b, data_range=255, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
    )
    assert ours == pytest.approx(ref, abs=1e-6)
    gray = a[..., 0].astype(np.float64) / 255
    assert ssim(gray, gray, data_range=1.0) == pytest.approx(1.0)
    assert ssim(gray, 1 - gray, data_range=1.0) < 0.0
    with pytest.raises(InputError):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))


def test_colorfulness_hand_cases() -> None:
    assert colorfulness(np.full((8, 8, 3), 128, np.uint8)) == 0.0
    red = np.zeros((8, 8, 3))
    red[..., 0] = 255  # rg = 255, yb = 127.5, no spread
    assert colorfulness(red) == pytest.approx(0.3 * np.hypot(255, 127.5))
    half = np.zeros((2, 1, 3))
    half[0, 0, 0] = 100  # rg in {100, 0}: std 50; yb in {50, 0}: std 25
    expected = np.hypot(50, 25) + 0.3 * np.hypot(50, 25)
    assert colorfulness(half) == pytest.approx(expected)


def test_js_and_cdc() -> None:
    assert js_divergence([1, 0], [0, 1]) == pytest.approx(1.0)  # disjoint: 1 bit
    assert js_divergence([1, 1], [2, 2]) == pytest.approx(0.0)
    # p = [1/2, 1/2], q = [1, 0]: m = [3/4, 1/4]
    expected = 0.5 * (0.5 * np.log2(0.5 / 0.75) + 0.5 * np.log2(0.5 / 0.25)) + 0.5 * np.log2(1 / 0.75)
    assert js_divergence([1, 1], [1, 0]) == pytest.approx(expected)
    still = [np.full((6, 6, 3), 100, np.uint8)] * 5
    assert cdc(still) == 0.0
    black, white = np.zeros((6, 6, 3), np.uint8), np.full((6, 6, 3), 255, np.uint8)
    # alternating frames: d=1 pairs disjoint (JS 1), d=2 and d=4 identical (JS 0)
    assert cdc([black, white, black, white, black]) == pytest.approx(1.0 / 3.0)
    assert cdc([black, white]) == pytest.approx(1.0)  # only d=1 fits


def test_chroma_warp_error_uses_flow_and_mask() -> None:
    rng = np.random.default_rng(3)
    prev = rng.normal(0, 20, (20, 30, 2)).astype(np.float32)
    nxt = np.zeros_like(prev)
    nxt[:, :-1] = prev[:, 1:]  # next(x) = prev(x + 1)
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0] = 1.0
    valid = np.ones((20, 30), bool)
    valid[:, -1] = False
    assert chroma_warp_error(prev, nxt, flow, valid) == pytest.approx(0.0, abs=1e-10)
    no_motion = chroma_warp_error(prev, nxt, np.zeros_like(flow), valid)
    assert no_motion > 100
    shifted = nxt + np.array([3.0, 4.0], np.float32)  # per-channel squared errors 9 and 16
    assert chroma_warp_error(prev, shifted, flow, valid) == pytest.approx(12.5, rel=1e-5)


def test_auc_with_ties_against_pair_counting() -> None:
    assert auc([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9]) == 1.0
    assert auc([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9]) == 0.0
    assert auc([0, 1], [0.5, 0.5]) == 0.5
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 2, 200)
    scores = np.round(rng.normal(labels * 0.7, 1.0), 1)  # rounding makes many ties
    pos, neg = scores[labels == 1], scores[labels == 0]
    pairs = (pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()
    assert auc(labels, scores) == pytest.approx(pairs / (pos.size * neg.size))
    with pytest.raises(InputError):
        auc([1, 1], [0.2, 0.3])
