"""TemporalSmoother: both access patterns, flicker removal, moving objects, scene cuts, kernel equality."""

from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import pytest
import torch

import chromaflow.core.temporal.smoother as smoothing
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.flow import compose_flow
from chromaflow.core.temporal import (
    SmoothingParams,
    TemporalSmoother,
    kernel_numba,
    kernel_reference,
    kernel_torch,
    lowpass_correction,
    lowpass_correction_torch,
    smooth_sequence,
)

H, W = 48, 64


def texture(h: int = H, w: int = W, seed: int = 0, lo: float = 20, hi: float = 80) -> np.ndarray:
    """Smooth random L* texture in [lo, hi] that DIS can track."""
    rng = np.random.default_rng(seed)
    coarse = rng.uniform(0, 1, (h // 6 + 3, w // 6 + 3)).astype(np.float32)
    big = cv2.resize(coarse, (w + 18, h + 18), interpolation=cv2.INTER_CUBIC)[9 : 9 + h, 9 : 9 + w]
    big = (big - big.min()) / (big.max() - big.min())
    return (lo + (hi - lo) * big).astype(np.float32)


def moving_square(frames: int = 8, step: int = 3) -> tuple[list[np.ndarray], list[np.ndarray], list[int]]:
    """Neutral textured background, a red-ish textured square moving right by ``step`` px per frame."""
    bg = texture(seed=1)
    sq = texture(16, 16, seed=2, lo=50, hi=95)
    lumas, abs_, xs = [], [], []
    for t in range(frames):
        x = 6 + step * t
        luma = bg.copy()
        luma[16:32, x : x + 16] = sq
        ab = np.zeros((2, H, W), np.float32)
        ab[0, 16:32, x : x + 16] = 40.0
        ab[1, 16:32, x : x + 16] = -30.0
        lumas.append(luma)
        abs_.append(ab)
        xs.append(x)
    return lumas, abs_, xs


def flickering_sequence(n: int = 10, seed: int = 5) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """A slowly panning texture with per-frame global chroma shifts and a cut at frame 6."""
    rng = np.random.default_rng(seed)
    big_a = texture(H, W + 20, seed=3)
    big_b = texture(H, W + 20, seed=4, lo=50, hi=95)
    lumas, abs_ = [], []
    for t in range(n):
        src = big_a if t < 6 else big_b
        luma = np.ascontiguousarray(src[:, t : t + W])
        ab = np.stack([luma * 0.3 - 10, 20 - luma * 0.2]) + rng.normal(0, 5, (2, 1, 1))
        lumas.append(luma)
        abs_.append(ab.astype(np.float32))
    return lumas, abs_


def test_streaming_and_random_access_are_identical() -> None:
    lumas, abs_ = flickering_sequence()
    streamed = smooth_sequence(lumas, abs_, radius=2)
    smoother = TemporalSmoother(radius=2)

    def loader(k: int) -> tuple[np.ndarray, np.ndarray] | None:
        return (lumas[k], abs_[k]) if k < len(lumas) else None

    order = [7, 2, 9, 0, 5, 6, 1, 8, 3, 4]  # out of order, as a VapourSynth client may ask
    random = {n: smoother.smooth_at(n, loader) for n in order}
    for n in range(len(lumas)):
        np.testing.assert_array_equal(streamed[n], random[n])
    assert not np.allclose(streamed[3], abs_[3])  # it did smooth something


def test_push_has_delay_radius_and_flush_emits_the_rest() -> None:
    lumas, abs_ = flickering_sequence(6)
    smoother = TemporalSmoother(radius=2)
    ready = [[s.frame_index for s in smoother.push(l, a)] for l, a in zip(lumas, abs_, strict=True)]
    assert ready == [[], [], [0], [1], [2], [3]]
    assert [s.frame_index for s in smoother.flush()] == [4, 5]
    assert smoother.flush() == []


def test_static_flicker_converges_to_window_mean() -> None:
    luma = texture(seed=7)
    base = np.stack([luma * 0.5 - 15, 10 - luma * 0.3]).astype(np.float32)
    shifts = np.random.default_rng(8).normal(0, 8, (12, 2)).astype(np.float32)
    abs_ = [base + s[:, None, None] for s in shifts]
    r = 3
    out = smooth_sequence([luma] * 12, abs_, radius=r)
    for n in range(r, 12 - r):
        expected = base + shifts[n - r : n + r + 1].mean(axis=0)[:, None, None]
        np.testing.assert_allclose(out[n], expected, atol=0.05)
    spread_in = np.std([a[:, 20, 30] for a in abs_[r:-r]], axis=0)
    spread_out = np.std([a[:, 20, 30] for a in out[r:-r]], axis=0)
    assert (spread_out < 0.5 * spread_in).all()


def test_moving_object_keeps_its_colour_in_place() -> None:
    lumas, abs_, xs = moving_square()
    flicker = [a + np.float32(s) * (a != 0) for a, s in zip(abs_, [0, 6, -6, 4, -4, 6, -6, 0], strict=True)]
    out = smooth_sequence(lumas, flicker, radius=2)
    for n in (3, 4):
        x = xs[n]
        inner = out[n][:, 19:29, x + 3 : x + 13].reshape(2, -1)
        np.testing.assert_allclose(np.median(inner, axis=1), [40.0, -30.0], atol=4.0)
        trail = out[n][:, 19:29, xs[n - 2] : x]  # where the square was two frames ago: background now
        assert np.abs(trail).max() < 4.0
        assert np.abs(out[n][:, 38:, :]).max() < 1.0  # far background stays neutral


def test_no_colour_crosses_a_scene_cut() -> None:
    a_luma, b_luma = texture(seed=10, lo=10, hi=40), texture(seed=11, lo=60, hi=95)
    lumas = [a_luma] * 5 + [b_luma] * 5
    abs_ = [np.full((2, H, W), 30.0, np.float32)] * 5 + [np.full((2, H, W), -30.0, np.float32)] * 5
    # a very wide luma tolerance, so only the cut keeps the shots apart
    out = smooth_sequence(lumas, abs_, radius=2, luma_sigma=1000.0)
    for n in range(5):
        np.testing.assert_allclose(out[n], 30.0, atol=1e-4)
        np.testing.assert_allclose(out[n + 5], -30.0, atol=1e-4)
    leaked = smooth_sequence(lumas, abs_, radius=2, luma_sigma=1000.0, detect_cuts=False)
    assert np.abs(leaked[4] - 30.0).max() > 1.0  # the test can fail: without cut detection colour leaks


def random_window(seed: int = 0, k: int = 4, h: int = 40, w: int = 56) -> tuple:
    rng = np.random.default_rng(seed)
    l_c = texture(h, w, seed=seed)
    ab_c = np.stack([texture(h, w, seed=seed + 1), texture(h, w, seed=seed + 2)]) - 50
    l_n = np.stack([l_c + rng.normal(0, 2, (h, w)).astype(np.float32) for _ in range(k)])
    ab_n = np.stack([ab_c + rng.normal(0, 3, (2, 1, 1)).astype(np.float32) for _ in range(k)])
    smooth = [
        cv2.GaussianBlur(rng.normal(0, 3, (h, w, 2)).astype(np.float32), (0, 0), 4) * 3 for _ in range(k)
    ]
    fwd = np.stack(smooth)
    bwd = (-fwd + rng.normal(0, 0.4, fwd.shape)).astype(np.float32)
    weights = np.array([1.0, 0.5, 0.0, 1.0][:k], np.float32)
    return l_c, ab_c.astype(np.float32), l_n, ab_n.astype(np.float32), fwd, bwd, weights


def test_numba_kernel_equals_numpy_reference() -> None:
    args = random_window()
    params = SmoothingParams(radius=2)
    a = kernel_numba(*args, params)
    b = kernel_reference(*args, params)
    assert np.abs(a - b).max() <= 1e-5
    assert np.abs(a - args[1]).max() > 0.1  # neighbours did contribute
    lumas, abs_ = flickering_sequence()
    out_numba = smooth_sequence(lumas, abs_, backend="numba")
    out_numpy = smooth_sequence(lumas, abs_, backend="numpy")
    assert max(np.abs(x - y).max() for x, y in zip(out_numba, out_numpy, strict=True)) <= 1e-5


def test_numba_kernel_equals_reference_on_saturated_colours_and_large_motion() -> None:
    """Extreme ab (float32 spacing 7.6e-6 near 110), flows leaving the frame, weights from 1 down to exp(-700)."""
    l_c, ab_c, l_n, ab_n, fwd, bwd, weights = random_window(seed=3)
    rng = np.random.default_rng(3)
    ab_c = (ab_c / 30.0 * 110.0).astype(np.float32)
    ab_n = (ab_n / 30.0 * 110.0).astype(np.float32)
    fwd = (fwd * 6.0).astype(np.float32)  # many samples fall outside the 56x40 frame
    bwd = (-fwd + rng.normal(0, 3.0, fwd.shape)).astype(np.float32)  # confidences across the whole range
    params = SmoothingParams(luma_sigma=0.5)
    args = (l_c, ab_c, l_n, ab_n, fwd, bwd, weights, params)
    a = kernel_numba(*args)
    b = kernel_reference(*args)
    assert np.abs(a - b).max() <= 1e-5
    assert np.abs(a - ab_c).max() > 1.0


def test_numba_kernel_ignores_a_neighbour_with_invalid_flow() -> None:
    """NaN/inf flow of one neighbour: no crash, finite output, as if that neighbour had weight 0."""
    l_c, ab_c, l_n, ab_n, fwd, bwd, weights = random_window(seed=4)
    params = SmoothingParams()
    fwd = fwd.copy()
    fwd[0] = np.nan
    fwd[3, :5, :5, 0] = np.inf
    fwd[3, -5:, -5:, 1] = -np.inf
    out = kernel_numba(l_c, ab_c, l_n, ab_n, fwd, bwd, weights, params)
    assert np.isfinite(out).all()
    without = weights.copy()
    without[0] = 0.0
    fwd[~np.isfinite(fwd)] = 0.0  # the reference needs finite flows; compared away from those pixels
    expected = kernel_reference(l_c, ab_c, l_n, ab_n, fwd, bwd, without, params)
    np.testing.assert_allclose(out[:, 5:-5, 5:-5], expected[:, 5:-5, 5:-5], atol=1e-5)


def test_torch_path_on_cpu_matches_numba() -> None:
    args = random_window(seed=1)
    params = SmoothingParams()
    ref = kernel_numba(*args, params)
    out = kernel_torch(*[torch.from_numpy(x) for x in args], params).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-3)
    lumas, abs_ = flickering_sequence()
    expected = smooth_sequence(lumas, abs_, backend="numba")
    got = smooth_sequence(lumas, [torch.from_numpy(a) for a in abs_], backend="torch")
    assert all(isinstance(g, torch.Tensor) for g in got)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_allclose(g.numpy(), e, atol=1e-3)


@pytest.mark.gpu
def test_torch_path_on_cuda_keeps_data_on_device() -> None:
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    lumas, abs_ = flickering_sequence()
    expected = smooth_sequence(lumas, abs_, backend="numba")
    got = smooth_sequence(lumas, [torch.from_numpy(a).cuda() for a in abs_], device="cuda")
    for g, e in zip(got, expected, strict=True):
        assert g.is_cuda
        np.testing.assert_allclose(g.cpu().numpy(), e, atol=1e-3)


def test_random_access_reuses_cached_flows_and_frames(monkeypatch: pytest.MonkeyPatch) -> None:
    lumas, abs_ = flickering_sequence()
    calls: list[int] = []
    real = smoothing.compute_flow

    def counting(*args: object, **kwargs: object) -> np.ndarray:
        calls.append(1)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(smoothing, "compute_flow", counting)
    loads: list[int] = []

    def loader(k: int) -> tuple[np.ndarray, np.ndarray] | None:
        loads.append(k)
        return (lumas[k], abs_[k]) if k < len(lumas) else None

    smoother = TemporalSmoother(radius=2, detect_cuts=False)
    smoother.smooth_at(2, loader)
    # one DIS flow per consecutive pair and direction (0-1 .. 3-4); pairs further apart are composed
    assert len(calls) == 8 and loads == [0, 1, 2, 3, 4]
    smoother.smooth_at(3, loader)
    assert len(calls) == 8 + 2  # only the new pair (4, 5) in both directions
    assert loads[5:] == [5]


def test_identity_settings_and_bad_input() -> None:
    lumas, abs_ = flickering_sequence(5)
    for out, ab in zip(smooth_sequence(lumas, abs_, strength=0.0), abs_, strict=True):
        np.testing.assert_array_equal(out, ab)
    for out, ab in zip(smooth_sequence(lumas, abs_, radius=0), abs_, strict=True):
        np.testing.assert_array_equal(out, ab)
    with pytest.raises(UsageError):
        TemporalSmoother(radius=-1)
    with pytest.raises(UsageError):
        TemporalSmoother(backend="cuda-magic")  # type: ignore[arg-type]
    smoother = TemporalSmoother()
    with pytest.raises(InputError):
        smoother.push(lumas[0], abs_[0][0])
    smoother.push(lumas[0], abs_[0])
    with pytest.raises(InputError):
        smoother.push(lumas[1], abs_[1][:, :20, :20])
    with pytest.raises(InputError):
        TemporalSmoother().smooth_at(3, lambda k: None)


def test_random_access_from_several_threads_matches_streaming() -> None:
    lumas, abs_ = flickering_sequence()
    streamed = smooth_sequence(lumas, abs_, radius=2)
    smoother = TemporalSmoother(radius=2, cache_frames=6)  # a small cache forces evictions and reloads

    def loader(k: int) -> tuple[np.ndarray, np.ndarray] | None:
        return (lumas[k], abs_[k]) if k < len(lumas) else None

    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda n: smoother.smooth_at(n, loader), [9, 0, 4, 7, 1, 8, 2, 6, 3, 5]))
    for n, got in zip([9, 0, 4, 7, 1, 8, 2, 6, 3, 5], results, strict=True):
        np.testing.assert_array_equal(got, streamed[n])


def test_kernel_takes_neighbours_stacked_or_one_by_one() -> None:
    l_c, ab_c, l_n, ab_n, fwd, bwd, weights = random_window(seed=5)
    params = SmoothingParams()
    stacked, total = kernel_numba(l_c, ab_c, l_n, ab_n, fwd, bwd, weights, params, return_weight=True)
    listed = kernel_numba(l_c, ab_c, list(l_n), list(ab_n), list(fwd), list(bwd), weights, params)
    np.testing.assert_array_equal(stacked, listed)
    _, ref_total = kernel_reference(l_c, ab_c, l_n, ab_n, fwd, bwd, weights, params, return_weight=True)
    assert np.abs(total - ref_total).max() <= 1e-4 and total.min() >= 1.0  # the centre's own weight is 1


def test_composed_flow_of_two_shifts_is_their_sum() -> None:
    first = np.zeros((H, W, 2), np.float32)
    first[..., 0] = 2.0
    second = np.zeros((H, W, 2), np.float32)
    second[..., 1] = -1.5
    second[:, W // 2 :, 1] = 3.0  # the second step depends on where the first one lands
    out = compose_flow(first, second)
    np.testing.assert_allclose(out[10, 5], [2.0, -1.5])
    np.testing.assert_allclose(out[10, W // 2 - 2], [2.0, 3.0])  # lands at x = W/2, in the other half


def test_correction_lowpass_numpy_and_torch_agree_and_keep_constants() -> None:
    rng = np.random.default_rng(9)
    params = SmoothingParams()
    for shape in ((H, W), (270, 480), (9, 8)):
        lowpass = params.correction_lowpass(shape)
        zero = np.zeros((2, *shape), np.float32)
        corr = rng.normal(0, 5, (2, *shape)).astype(np.float32)
        weight = rng.uniform(1, 5, shape).astype(np.float32)
        a = lowpass_correction(zero, corr, lowpass, weight)
        b = lowpass_correction_torch(
            torch.from_numpy(zero), torch.from_numpy(corr), lowpass, torch.from_numpy(weight)
        ).numpy()
        assert np.abs(a - b).max() <= 1e-4
        np.testing.assert_allclose(lowpass_correction(zero, zero + 3.0, lowpass, weight), 3.0, atol=1e-4)
        if min(shape) > 16:  # (9, 8): a blur narrower than a pixel
            assert a.std() < 0.5 * corr.std()  # it is a low-pass


def test_confidence_lowpass_fills_small_flow_failures_and_leaves_large_ones() -> None:
    """Where the flow failed (total weight 1, no correction of its own), a small hole takes the correction of the
    confident pixels around it; a large failed region keeps its own, un-smoothed colour."""
    h, w = 96, 128
    params = SmoothingParams()
    lowpass = params.correction_lowpass((h, w))
    ab_c = np.zeros((2, h, w), np.float32)
    avg = np.full((2, h, w), 6.0, np.float32)
    weight = np.full((h, w), 5.0, np.float32)
    avg[:, :, :40] = 0.0  # the left third: no neighbour matched, so no correction there
    weight[:, :40] = 1.0
    avg[:, 44:52, 90:98] = 0.0  # a small hole in the confident part
    weight[44:52, 90:98] = 1.0
    filled = lowpass_correction(ab_c, avg, lowpass, weight)
    plain = lowpass_correction(ab_c, avg, lowpass)
    assert filled[0, 48, 94] > plain[0, 48, 94] and filled[0, 48, 94] > 5.0
    np.testing.assert_allclose(filled[:, :, :8], 0.0, atol=0.05)  # far inside the failed region: unchanged
    np.testing.assert_allclose(filled[:, 10:-10, 110:], 6.0, atol=0.05)


def test_small_flow_frames_keep_the_finer_dis_preset() -> None:
    """DIS "fast" loses the motion of small frames (its finest scale is coarser); below 256 px "medium" is used."""
    assert smoothing.smoothing_preset((48, 64)) == "medium"
    assert smoothing.smoothing_preset((270, 480)) == smoothing.SMOOTHING_PRESET == "fast"
    lumas, abs_ = flickering_sequence()
    default = smooth_sequence(lumas, abs_)
    medium = smooth_sequence(lumas, abs_, flow_preset="medium")
    for a, b in zip(default, medium, strict=True):
        np.testing.assert_array_equal(a, b)
