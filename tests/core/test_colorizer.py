"""The Colorizer on tiny random-weight nets (same code path as the full-size ones)."""

import numpy as np
import pytest
import torch

from chromaflow.core.colorizer import Colorizer, colorize_bgr, join_in_gamut
from chromaflow.core.colour import YCbCrFormat, lightness, quantize, rgb_to_ycbcr
from chromaflow.core.errors import InputError, ModelError, UsageError
from chromaflow.core.hints import Hint
from chromaflow.core.nets.zhang import ECCV16, SIGGRAPH17


def _net(cls, seed: int = 0):
    torch.manual_seed(seed)
    net = cls(width=4)
    with torch.no_grad():  # a strong output layer so colours are far from gray
        head = net.model_out[0] if isinstance(net, SIGGRAPH17) else net.model8[6]
        head.weight.mul_(30)
    return net.eval()


@pytest.fixture(scope="module")
def sig() -> Colorizer:
    return Colorizer(_net(SIGGRAPH17), device="cpu", size=32)


def _l_of_uint8(rgb: np.ndarray) -> torch.Tensor:
    return lightness(torch.from_numpy(rgb.astype(np.float32) / 255).permute(2, 0, 1))


def test_torch_batch_any_size_in_same_size_out(sig):
    gen = torch.Generator().manual_seed(1)
    for shape in [(2, 3, 37, 53), (1, 1, 31, 29), (3, 17, 90)]:
        x = torch.rand(shape, generator=gen)
        rgb, ab = sig.colorize(x, return_ab=True)
        lead = shape[:-3]
        assert rgb.shape == (*lead, 3, *shape[-2:]) and ab.shape == (*lead, 2, *shape[-2:])
        assert rgb.dtype == torch.float32 and rgb.min() >= 0 and rgb.max() <= 1


def test_luma_is_preserved_float(sig):
    x = torch.rand(2, 3, 41, 23, generator=torch.Generator().manual_seed(2))
    rgb, ab = sig.colorize(x, return_ab=True)
    assert ab.abs().max() > 10  # colour was really added
    assert (lightness(rgb) - lightness(x)).abs().max() < 1e-3


def test_numpy_uint8_uint16_gray_colour_alpha(sig):
    rng = np.random.default_rng(3)
    colour8 = rng.integers(0, 256, (33, 45, 3), dtype=np.uint8)
    out8 = sig.colorize(colour8)
    assert out8.shape == colour8.shape and out8.dtype == np.uint8
    assert (_l_of_uint8(out8) - _l_of_uint8(colour8)).abs().max() < 1.0  # within 8-bit rounding
    gray16 = rng.integers(0, 65536, (21, 19), dtype=np.uint16)
    out16 = sig.colorize(gray16)
    assert out16.shape == (21, 19, 3) and out16.dtype == np.uint16
    l_in = lightness(torch.from_numpy(gray16.astype(np.float32) / 65535).expand(3, -1, -1))
    l_out = lightness(torch.from_numpy(out16.astype(np.float32) / 65535).permute(2, 0, 1))
    assert (l_out - l_in).abs().max() < 0.05
    rgba = np.concatenate((colour8, rng.integers(0, 256, (33, 45, 1), dtype=np.uint8)), axis=-1)
    out_rgba = sig.colorize(rgba)
    assert out_rgba.shape == rgba.shape and np.array_equal(out_rgba[..., 3], rgba[..., 3])
    assert np.array_equal(out_rgba[..., :3], out8)
    floats = colour8.astype(np.float64) / 255
    out_f, ab = sig.colorize(floats, return_ab=True)
    assert out_f.dtype == np.float32 and ab.shape == (33, 45, 2)
    assert np.abs(np.round(out_f * 255) - out8).max() <= 1


def test_gray_and_colour_inputs_of_same_lightness_agree(sig):
    rng = np.random.default_rng(4)
    gray = rng.integers(0, 256, (24, 24), dtype=np.uint8)
    as_rgb = np.repeat(gray[:, :, None], 3, axis=2)
    assert np.array_equal(sig.colorize(gray), sig.colorize(as_rgb))


def test_batched_equals_one_by_one_and_deterministic(sig):
    x = torch.rand(3, 3, 20, 28, generator=torch.Generator().manual_seed(5))
    together = sig.colorize(x)
    alone = torch.cat([sig.colorize(x[i : i + 1]) for i in range(3)])
    assert (together - alone).abs().max() < 1e-5
    assert torch.equal(sig.colorize(x), together)
    small_batches = Colorizer(sig.net, device="cpu", size=32, batch_size=2)
    assert (small_batches.colorize(x) - together).abs().max() < 1e-5


def test_hints_change_the_colour_where_asked_and_eccv16_refuses_them(sig):
    x = torch.full((1, 1, 32, 32), 0.5)
    plain = sig.colorize(x, return_ab=True)[1]
    hinted = sig.colorize(x, hints=[Hint(16, 16, (255, 0, 0), radius=4)], return_ab=True)[1]
    assert (hinted - plain).abs().max() > 0.5
    eccv = Colorizer(_net(ECCV16), device="cpu", size=32)
    assert eccv.colorize(x).shape == (1, 3, 32, 32)
    with pytest.raises(UsageError, match="does not take colour hints"):
        eccv.colorize(x, hints=[Hint(1, 1, (255, 0, 0))])


def test_gamut_fit_keeps_lightness_and_hue():
    l = torch.tensor([[[[5.0, 50.0, 95.0]]]])
    ab = torch.tensor([[[[90.0, -100.0, 120.0]]], [[[80.0, 100.0, -60.0]]]]).permute(1, 0, 2, 3)
    rgb, used = join_in_gamut(l, ab)
    assert rgb.min() >= 0 and rgb.max() <= 1
    assert (lightness(rgb) - l).abs().max() < 1e-2
    ratio = used / ab
    assert (ratio[:, 0] - ratio[:, 1]).abs().max() < 1e-6  # same direction: hue kept
    assert ratio.max() < 1 and ratio.min() > 0


def test_colorize_ycbcr_matches_rgb_path_and_keeps_shape(sig):
    fmt = YCbCrFormat("709", full_range=False, bits=10)
    rng = np.random.default_rng(6)
    y = rng.integers(64, 941, (27, 35), dtype=np.uint16)
    cb, cr = sig.colorize_ycbcr(y, fmt)
    assert cb.shape == cr.shape == (27, 35) and cb.dtype == np.uint16
    gray = torch.from_numpy((y.astype(np.float32) - 64) / 876).expand(3, -1, -1)
    expected = quantize(rgb_to_ycbcr(sig.colorize(gray[None])[0], fmt), 10)
    assert np.abs(cb.astype(np.int32) - expected[1].numpy()).max() <= 1
    assert np.abs(cr.astype(np.int32) - expected[2].numpy()).max() <= 1
    assert np.ptp(cb) > 0
    cb_t, _cr_t = sig.colorize_ycbcr(torch.from_numpy(y.astype(np.int32))[None].repeat(2, 1, 1), fmt)
    assert cb_t.shape == (2, 27, 35) and torch.equal(cb_t[0], torch.from_numpy(cb.astype(np.int32)))
    fcb, _fcr = sig.colorize_ycbcr(torch.rand(9, 11), YCbCrFormat("601", bits=None))
    assert fcb.dtype == torch.float32 and fcb.abs().max() <= 0.5


def test_opencv_bgr_entry(sig):
    frame = np.random.default_rng(7).integers(0, 256, (15, 22, 3), dtype=np.uint8)
    out = colorize_bgr(frame, sig)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert np.array_equal(out, sig.colorize(frame[:, :, ::-1].copy())[:, :, ::-1])
    with pytest.raises(InputError):
        sig.colorize_bgr(frame.astype(np.float32))


def test_bad_inputs_and_options():
    with pytest.raises(UsageError, match="multiple of 8"):
        Colorizer(SIGGRAPH17(width=2), device="cpu", size=100)
    c = Colorizer(SIGGRAPH17(width=2), device="cpu", size=16)
    with pytest.raises(InputError):
        c.colorize(torch.zeros(1, 2, 8, 8))
    with pytest.raises(InputError):
        c.colorize(torch.zeros(1, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(InputError):
        c.colorize(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(ModelError, match="chromaflow models download siggraph17"):
        Colorizer("siggraph17", device="cpu")
    with pytest.raises(UsageError, match="not a colorizer"):
        Colorizer("meso4-df", device="cpu")


def test_bf16_precision_runs_close_to_fp32(sig):
    low = Colorizer(_net(SIGGRAPH17), device="cpu", precision="bf16", size=32)
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(8))
    a32 = sig.colorize(x, return_ab=True)[1]
    a16 = low.colorize(x, return_ab=True)[1]
    assert a16.dtype == torch.float32
    assert (a16 - a32).abs().mean() < 3.0
