"""Optical flow helpers: the dst->src convention, warping, forward-backward confidence, rescaling."""

import cv2
import numpy as np
import pytest

from chromaflow.core.errors import InputError
from chromaflow.core.flow import (
    compute_flow,
    compute_flow_scaled,
    forward_backward_confidence,
    inside_mask,
    occlusion_mask,
    resize_flow,
    to_flow_luma,
    warp,
)


def texture(h: int = 96, w: int = 128, seed: int = 0) -> np.ndarray:
    """A smooth random texture (uint8) that DIS can track."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 255, (h // 8 + 2, w // 8 + 2)).astype(np.float32)
    big = cv2.resize(coarse, (w + 16, h + 16), interpolation=cv2.INTER_CUBIC)[8 : 8 + h, 8 : 8 + w]
    return np.clip(big, 0, 255).astype(np.uint8)


def test_flow_maps_destination_pixels_to_source_positions() -> None:
    src = texture()
    dst = np.roll(src, (2, 3), axis=(0, 1))  # dst(y, x) = src(y - 2, x - 3)
    flow = compute_flow(src, dst)
    assert flow.shape == (*src.shape, 2) and flow.dtype == np.float32
    inner = flow[16:-16, 16:-16].reshape(-1, 2)
    np.testing.assert_allclose(np.median(inner, axis=0), [-3.0, -2.0], atol=0.1)
    warped = warp(src, flow)
    assert np.abs(warped[16:-16, 16:-16] - dst[16:-16, 16:-16]).mean() < 1.5


def test_float_lstar_input_equals_uint8_scaled() -> None:
    src = texture()
    lstar = src.astype(np.float32) * (100.0 / 255.0)
    np.testing.assert_array_equal(to_flow_luma(lstar), src)


def test_warp_with_known_flow_is_exact_shift() -> None:
    img = np.arange(20 * 30, dtype=np.float32).reshape(20, 30)
    flow = np.zeros((20, 30, 2), np.float32)
    flow[..., 0] = 1.0  # sample one pixel to the right
    out = warp(img, flow)
    np.testing.assert_allclose(out[:, :-1], img[:, 1:])
    np.testing.assert_allclose(out[:, -1], img[:, -1])  # replicated border
    multi = warp(np.stack([img] * 6, axis=-1), flow)  # more than 4 channels
    np.testing.assert_allclose(multi[..., 5], out)


def test_forward_backward_confidence_flags_inconsistency_and_outside() -> None:
    h, w = 40, 50
    fwd = np.zeros((h, w, 2), np.float32)
    fwd[..., 0] = 2.0
    bwd = -fwd.copy()
    conf = forward_backward_confidence(fwd, bwd)
    assert conf[:, : w - 2].min() > 0.99  # consistent and inside
    assert conf[:, w - 1].max() == 0.0  # x + 2 lands outside
    assert not inside_mask(fwd)[:, w - 1].any()
    bad = bwd.copy()
    bad[10:20, 10:20] = 5.0  # the backward flow disagrees there
    conf_bad = forward_backward_confidence(fwd, bad)
    assert conf_bad[12:18, 10:16].max() < 0.01
    assert occlusion_mask(fwd, bad)[12:18, 10:16].all()
    assert not occlusion_mask(fwd, bad)[30:, :40].any()


def test_real_occlusion_has_low_confidence() -> None:
    bg = texture(seed=1)
    square = texture(40, 40, seed=2)
    a, b = bg.copy(), bg.copy()
    a[30:70, 20:60] = square
    b[30:70, 34:74] = square  # the square moved 14 px right, uncovering background
    fwd = compute_flow(a, b)  # b's pixels -> a
    bwd = compute_flow(b, a)
    conf = forward_backward_confidence(fwd, bwd)
    assert conf[40:60, 45:55].mean() > 0.5  # inside the moved square: trackable
    assert conf[5:20, 80:120].mean() > 0.5  # static background


def test_resize_flow_rescales_vectors() -> None:
    flow = np.zeros((10, 20, 2), np.float32)
    flow[..., 0], flow[..., 1] = 4.0, -2.0
    big = resize_flow(flow, (20, 60))
    assert big.shape == (20, 60, 2)
    np.testing.assert_allclose(big[..., 0], 12.0)
    np.testing.assert_allclose(big[..., 1], -4.0)


def test_scaled_flow_matches_shift() -> None:
    src = texture(192, 256)
    dst = np.roll(src, (0, 4), axis=(0, 1))
    flow = compute_flow_scaled(src, dst, max_side=128)
    assert flow.shape == (192, 256, 2)
    assert abs(np.median(flow[32:-32, 32:-32, 0]) + 4.0) < 0.3
    small = compute_flow_scaled(src, dst, max_side=128, full_size=False)
    assert small.shape == (96, 128, 2)


def test_bad_inputs_raise() -> None:
    with pytest.raises(InputError):
        compute_flow(texture(), texture(64, 64))
    with pytest.raises(InputError):
        compute_flow(np.zeros((0, 4), np.uint8), np.zeros((0, 4), np.uint8))
    tiny = compute_flow(
        np.zeros((4, 4), np.uint8), np.zeros((4, 4), np.uint8)
    )  # padded for DIS, cropped back
    assert tiny.shape == (4, 4, 2) and not tiny.any()
    with pytest.raises(InputError):
        warp(np.zeros((5, 5), np.float32), np.zeros((5, 5, 3), np.float32))


def test_flow_does_not_depend_on_earlier_frame_sizes() -> None:
    """An OpenCV DIS object that has seen another frame size gives different flow; ours must not."""
    from chromaflow.core.flow import compute_flow

    rng = np.random.default_rng(5)
    base = cv2.GaussianBlur(rng.integers(0, 255, (72, 96), dtype=np.uint8), (5, 5), 0)
    moved = np.roll(base, (1, 2), axis=(0, 1))
    first = compute_flow(base, moved, "fast")
    other = cv2.GaussianBlur(rng.integers(0, 255, (48, 64), dtype=np.uint8), (5, 5), 0)
    compute_flow(other, np.roll(other, 3, axis=1), "fast")
    np.testing.assert_array_equal(compute_flow(base, moved, "fast"), first)
