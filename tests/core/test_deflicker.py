"""Deflicker of colour video (core): flicker removed, a steady clip left as it is, no colour across a cut."""

import threading

import numpy as np
import pytest
import torch

from chromaflow.core.colorizer import ycbcr_chroma, ycbcr_lab
from chromaflow.core.colour import YCbCrFormat, lab_to_rgb, rgb_to_lab, rgb_to_ycbcr
from chromaflow.core.deflicker import Deflicker, DeflickerStream, deflickered_chroma, deflickered_rgb
from chromaflow.core.errors import InputError, UsageError

H, W, N = 48, 64, 12


def _scene(n: int, hue: tuple[float, float] = (20.0, -10.0), shift: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``n``: textured L* drifting right 1 px per frame; ab a smooth field plus fine chroma detail."""
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    x = xx - n - shift
    l_star = 50 + 20 * np.sin(x / 5.0) * np.cos(yy / 7.0) + 0.3 * yy
    detail = 6.0 * np.sign(np.sin(x * 1.3) * np.sin(yy * 1.1))  # chroma detail finer than any correction
    ab = np.stack([hue[0] + 0.2 * x + detail, hue[1] + 0.1 * yy - detail]).astype(np.float32)
    return l_star.astype(np.float32), ab


def _flickered(
    seed: int = 0, amount: float = 8.0
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    rng = np.random.default_rng(seed)
    lumas, clean, noisy = [], [], []
    for n in range(N):
        l_star, ab = _scene(n)
        lumas.append(l_star)
        clean.append(ab)
        noisy.append((ab + rng.normal(0, amount, size=(2, 1, 1))).astype(np.float32))
    return lumas, clean, noisy


def _stream(lumas: list[np.ndarray], abs_: list[np.ndarray], **options: object) -> list[np.ndarray]:
    stream = DeflickerStream(**options)  # type: ignore[arg-type]
    out: dict[int, np.ndarray] = {}
    for l_star, ab in zip(lumas, abs_, strict=True):
        ready = stream.push(l_star, ab)
        assert all(d.frame_index <= len(out) + stream.lookahead + 1 for d in ready)
        out.update({d.frame_index: d.ab for d in ready})
    out.update({d.frame_index: d.ab for d in stream.flush()})
    assert sorted(out) == list(range(len(abs_)))
    return [out[n] for n in range(len(abs_))]


def _frame_means(abs_: list[np.ndarray]) -> np.ndarray:
    return np.array([ab.reshape(2, -1).mean(1) for ab in abs_])


def test_global_flicker_is_removed() -> None:
    lumas, clean, noisy = _flickered()
    out = _stream(lumas, noisy)
    inner = slice(2, N - 2)  # frames with a whole window on both sides
    jump_in = np.abs(np.diff(_frame_means(noisy)[inner], axis=0)).mean()
    jump_out = np.abs(np.diff(_frame_means(out)[inner], axis=0)).mean()
    assert jump_out < 0.35 * jump_in, (jump_in, jump_out)
    err_in = np.mean([np.abs(a - c).mean() for a, c in zip(noisy[inner], clean[inner], strict=True)])
    err_out = np.mean([np.abs(a - c).mean() for a, c in zip(out[inner], clean[inner], strict=True)])
    assert err_out < 0.6 * err_in, (err_in, err_out)


def test_a_steady_clip_and_its_detail_come_back_unchanged() -> None:
    lumas, clean, _ = _flickered()
    out = _stream(lumas, clean)
    assert max(np.abs(a - c).max() for a, c in zip(out, clean, strict=True)) < 0.5  # Lab units
    zero = _stream(lumas, _flickered()[2], strength=0.0)
    assert all(np.array_equal(a, b) for a, b in zip(zero, _flickered()[2], strict=True))


def test_fine_chroma_detail_is_kept_while_flicker_goes() -> None:
    lumas, clean, noisy = _flickered()
    out = _stream(lumas, noisy)
    for a, c in zip(out, clean, strict=True):
        change = a - c
        # what changed is (nearly) one value per frame and channel: a correction, not a blur of the detail
        residual = change - change.reshape(2, -1).mean(1)[:, None, None]
        assert np.abs(residual).mean() < 1.0  # blurring the +-6 detail would leave several units


def test_random_access_from_threads_equals_streaming() -> None:
    lumas, _, noisy = _flickered(seed=3)
    streamed = _stream(lumas, noisy)
    engine = Deflicker(N, lambda k: (lumas[k], noisy[k]))
    got: dict[int, np.ndarray] = {}
    order = [7, 0, 11, 3, 5, 9, 1, 10, 2, 4, 8, 6]

    def work(part: list[int]) -> None:
        for n in part:
            got[n] = engine.ab(n)

    threads = [threading.Thread(target=work, args=(order[i::3],)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n in range(N):
        np.testing.assert_array_equal(got[n], streamed[n])


def test_no_colour_crosses_a_scene_cut() -> None:
    lumas, abs_ = [], []
    for n in range(N):
        first = n < N // 2
        l_star, ab = _scene(n, hue=(30.0, 20.0) if first else (-30.0, -25.0), shift=0 if first else 17)
        lumas.append(l_star if first else 100 - l_star)
        abs_.append(ab)
    out = _stream(lumas, abs_)
    for n in (N // 2 - 1, N // 2):  # the last frame of the first shot, the first of the second
        assert np.abs(out[n] - abs_[n]).max() < 0.5, n


def test_bad_input_says_what_to_do() -> None:
    with pytest.raises(UsageError, match="radius"):
        DeflickerStream(radius=0)
    with pytest.raises(UsageError, match="strength"):
        DeflickerStream(strength=-1.0)
    stream = DeflickerStream()
    with pytest.raises(InputError, match="one size"):
        stream.push(np.zeros((H, W), np.float32), np.zeros((2, H, W + 1), np.float32))
    engine = Deflicker(3, lambda k: _scene(k))
    with pytest.raises(InputError, match="outside the clip"):
        engine.ab(3)


def _in_gamut_scene() -> tuple[np.ndarray, np.ndarray]:
    """Frame 0 of the scene with its colours clipped into sRGB, as L* and ab."""
    l_star, ab = _scene(0)
    lab = rgb_to_lab(lab_to_rgb(torch.from_numpy(np.concatenate((l_star[None], ab)))))
    return lab[0].numpy(), np.ascontiguousarray(lab[1:].numpy())


def _in_gamut(l_star: np.ndarray, ab: np.ndarray) -> np.ndarray:
    rgb = lab_to_rgb(torch.from_numpy(np.concatenate((l_star[None], ab))), clip=False).numpy()
    return ((rgb >= 0) & (rgb <= 1)).all(0)


def _coded(
    fmt: YCbCrFormat, factors: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A frame of the scene as Y'CbCr planes of ``fmt`` (luma, chroma), with the L* and ab read back from them."""
    l_star, ab = _in_gamut_scene()
    l_t, ab_t = torch.from_numpy(l_star)[None, None], torch.from_numpy(ab)[None]
    chroma = ycbcr_chroma(l_t, ab_t, fmt, factors)[0].numpy()
    y = rgb_to_ycbcr(lab_to_rgb(torch.cat((l_t, ab_t), 1))[0], fmt)[0].numpy()
    y = y if fmt.bits is None else np.round(y)
    l_read, ab_read = ycbcr_lab(y, chroma, fmt, factors)
    return y, chroma, l_read, ab_read


def test_ycbcr_lab_reads_the_colour_back() -> None:
    l_star, ab = _in_gamut_scene()
    _, _, l_read, ab_read = _coded(YCbCrFormat("709", True, None), (1, 1))
    assert np.abs(l_read - l_star).max() < 1e-3 and np.abs(ab_read - ab).max() < 1e-3


@pytest.mark.parametrize(
    ("fmt", "factors"),
    [
        (YCbCrFormat("709", False, 8), (2, 2)),
        (YCbCrFormat("601", False, 10), (1, 2)),
        (YCbCrFormat("2020", True, None), (1, 1)),
    ],
)
def test_unchanged_colour_leaves_the_chroma_planes_bit_for_bit(
    fmt: YCbCrFormat, factors: tuple[int, int]
) -> None:
    """No resampling round trip: 4:2:0 chroma up and down again would blur it; the change alone is applied."""
    _, chroma, l_read, ab_read = _coded(fmt, factors)
    out = deflickered_chroma(chroma, l_read, ab_read, ab_read.copy(), fmt, factors)
    assert out.dtype == (np.float32 if fmt.bits is None else np.int32)
    assert np.array_equal(out, chroma.astype(out.dtype))


def test_changed_colour_is_the_new_ab_when_read_back() -> None:
    fmt = YCbCrFormat("709", False, 10)
    y, chroma, l_read, ab_read = _coded(fmt, (1, 1))
    target = ab_read + np.array([6.0, -4.0], np.float32)[:, None, None]
    out = deflickered_chroma(chroma, l_read, ab_read, target, fmt)
    _, ab_out = ycbcr_lab(y, out, fmt)
    shown = _in_gamut(l_read, target)  # elsewhere the join lowers the chroma to what sRGB can show
    assert shown.mean() > 0.8
    err = np.abs(ab_out - target)[:, shown]
    assert err.mean() < 0.3 and err.max() < 2.0


def test_rgb_frames_move_by_the_colour_change_alone() -> None:
    l_star, ab = _in_gamut_scene()
    rgb = lab_to_rgb(torch.from_numpy(np.concatenate((l_star[None], ab)))).numpy()
    same = deflickered_rgb(rgb, l_star, ab, ab.copy())
    assert np.abs(same - rgb).max() < 1e-6
    target = ab + np.array([-5.0, 5.0], np.float32)[:, None, None]
    moved = deflickered_rgb(rgb, l_star, ab, target)
    want = lab_to_rgb(torch.from_numpy(np.concatenate((l_star[None], target)))).numpy()
    shown = _in_gamut(l_star, target)
    assert shown.mean() > 0.8 and np.abs(moved - want)[:, shown].max() < 1e-4
