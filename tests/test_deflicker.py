"""Deflicker of colour video (core): flicker removed, a steady clip left as it is, no colour across a cut."""

import threading

import numpy as np
import pytest

from chromaflow.core.deflicker import Deflicker, DeflickerStream
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
