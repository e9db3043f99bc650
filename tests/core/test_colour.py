"""Colour science against OpenCV and the Y'CbCr matrix definitions."""

import cv2
import numpy as np
import pytest
import torch

from chromaflow.core import colour
from chromaflow.core.colour import YCbCrFormat
from chromaflow.core.errors import InputError, UsageError


def _random_rgb(n: int = 4096, seed: int = 0) -> np.ndarray:
    """Random sRGB values, plus the corners of the cube and a grey ramp, as an (n, 1, 3) float32 image."""
    rng = np.random.default_rng(seed)
    corners = np.array([[i >> 2 & 1, i >> 1 & 1, i & 1] for i in range(8)], dtype=np.float32)
    ramp = np.repeat(np.linspace(0, 1, 64, dtype=np.float32)[:, None], 3, axis=1)
    values = np.concatenate([rng.random((n, 3), dtype=np.float32), corners, ramp])
    return values[:, None, :]


def _to_chw(img: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1)


def _iec_decode(v: np.ndarray) -> np.ndarray:
    """The sRGB decoding function of IEC 61966-2-1, written out independently of the code under test."""
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4).astype(np.float32)


def test_lab_matches_opencv_float32() -> None:
    """XYZ/Lab maths against cv2's exact float path (COLOR_LRGB2Lab, linear-light input)."""
    rgb = _random_rgb()
    linear = _iec_decode(rgb)
    expected = cv2.cvtColor(linear, cv2.COLOR_LRGB2Lab)
    got = colour.rgb_to_lab(_to_chw(rgb)).permute(1, 2, 0).numpy()
    err = np.abs(got - expected).max()
    print(f"max |Lab - cv2 LRGB2Lab(IEC decode)| = {err:.2e}")
    assert err <= 1e-3


def test_lab_close_to_opencv_srgb_lut() -> None:
    """cv2's float COLOR_RGB2Lab interpolates a 3-D lookup table for sRGB input, so it is only close.

    Measured here: max deviation about 0.5 L*a*b* units; this guards against gross errors only.
    """
    rgb = _random_rgb()
    expected = cv2.cvtColor(rgb, cv2.COLOR_RGB2Lab)
    got = colour.rgb_to_lab(_to_chw(rgb)).permute(1, 2, 0).numpy()
    assert np.abs(got - expected).max() <= 1.0


def test_lab_to_rgb_matches_opencv_float32() -> None:
    lab = cv2.cvtColor(_random_rgb(seed=1), cv2.COLOR_RGB2Lab)
    expected = cv2.cvtColor(lab, cv2.COLOR_Lab2RGB)
    got = colour.lab_to_rgb(_to_chw(lab), clip=False).permute(1, 2, 0).numpy()
    assert np.abs(got - expected).max() <= 1e-3


def test_lab_round_trip_and_neutral_greys() -> None:
    rgb = _to_chw(_random_rgb(seed=2)).double()
    lab = colour.rgb_to_lab(rgb)
    assert torch.allclose(colour.lab_to_rgb(lab, clip=False), rgb, atol=1e-9)
    grey = torch.linspace(0, 1, 50, dtype=torch.float64).view(1, 50, 1).expand(3, 50, 1)
    assert colour.rgb_to_lab(grey)[1:].abs().max() < 1e-9


def test_batched_and_half_precision() -> None:
    rgb = torch.rand(2, 3, 8, 5, generator=torch.Generator().manual_seed(3))
    lab = colour.rgb_to_lab(rgb)
    assert lab.shape == rgb.shape
    assert torch.allclose(lab[1], colour.rgb_to_lab(rgb[1]))
    half = colour.rgb_to_lab(rgb.half())
    assert half.dtype == torch.float16
    assert (half.float() - lab).abs().max() < 0.1


def test_gray_to_rgb_has_requested_lightness() -> None:
    l_star = torch.linspace(0, 100, 11).view(1, 1, 11)
    rgb = colour.gray_to_rgb(l_star)
    assert torch.allclose(rgb[0], rgb[1]) and torch.allclose(rgb[1], rgb[2])
    assert torch.allclose(colour.lightness(rgb), l_star, atol=1e-3)


def test_wrong_channel_count_is_refused() -> None:
    with pytest.raises(InputError, match="3 colour channels"):
        colour.rgb_to_lab(torch.rand(4, 8, 8))
    with pytest.raises(InputError, match="floating-point"):
        colour.srgb_to_linear(torch.zeros(3, 2, 2, dtype=torch.uint8))


# ------------------------------------------------------------------------------------------- Y'CbCr


@pytest.mark.parametrize("matrix", ["601", "709", "2020"])
def test_ycbcr_matches_matrix_definition(matrix: str) -> None:
    kr, kb = {"601": (0.299, 0.114), "709": (0.2126, 0.0722), "2020": (0.2627, 0.0593)}[matrix]
    r, g, b = 0.8, 0.3, 0.1
    y = kr * r + (1 - kr - kb) * g + kb * b
    pb = (b - y) / (2 * (1 - kb))
    pr = (r - y) / (2 * (1 - kr))
    rgb = torch.tensor([r, g, b], dtype=torch.float64).view(3, 1, 1)
    limited8 = colour.rgb_to_ycbcr(rgb, YCbCrFormat(matrix, full_range=False, bits=8)).flatten()
    assert torch.allclose(
        limited8, torch.tensor([16 + 219 * y, 128 + 224 * pb, 128 + 224 * pr], dtype=torch.float64)
    )
    full10 = colour.rgb_to_ycbcr(rgb, YCbCrFormat(matrix, full_range=True, bits=10)).flatten()
    assert torch.allclose(
        full10, torch.tensor([1023 * y, 512 + 1023 * pb, 512 + 1023 * pr], dtype=torch.float64)
    )
    limited12 = colour.rgb_to_ycbcr(rgb, YCbCrFormat(matrix, full_range=False, bits=12)).flatten()
    assert torch.allclose(limited12, 16 * limited8)
    as_float = colour.rgb_to_ycbcr(rgb, YCbCrFormat(matrix, bits=None)).flatten()
    assert torch.allclose(as_float, torch.tensor([y, pb, pr], dtype=torch.float64))


def test_bt709_reference_colours() -> None:
    """75% yellow, cyan and red bars in 8-bit limited BT.709 (SMPTE RP 219 values)."""
    fmt = YCbCrFormat("709", full_range=False, bits=8)
    bars = torch.tensor([[0.75, 0.75, 0.0], [0.0, 0.75, 0.75], [0.75, 0.0, 0.0]]).T.reshape(3, 1, 3)
    got = colour.quantize(colour.rgb_to_ycbcr(bars, fmt), 8)[:, 0, :].T.tolist()
    assert got == [[168, 44, 136], [145, 147, 44], [51, 109, 212]]


@pytest.mark.parametrize("matrix", ["601", "709", "2020"])
def test_limited_8bit_round_trip_is_exact(matrix: str) -> None:
    fmt = YCbCrFormat(matrix, full_range=False, bits=8)
    y, cb, cr = torch.meshgrid(
        torch.arange(16, 236, 3), torch.arange(16, 241, 4), torch.arange(16, 241, 4), indexing="ij"
    )
    codes = torch.stack((y, cb, cr)).reshape(3, 1, -1)
    rgb = colour.ycbcr_to_rgb(codes, fmt)
    in_gamut = ((rgb >= 0) & (rgb <= 1)).all(dim=0).flatten()
    assert in_gamut.sum() > 1000
    back = colour.quantize(colour.rgb_to_ycbcr(rgb, fmt), 8).reshape(3, -1)
    assert torch.equal(back[:, in_gamut], codes.reshape(3, -1)[:, in_gamut].to(torch.int32))


@pytest.mark.parametrize("bits", [10, 12, 16])
@pytest.mark.parametrize("full_range", [False, True])
def test_high_bit_depth_round_trip(bits: int, full_range: bool) -> None:
    fmt = YCbCrFormat("2020", full_range=full_range, bits=bits)
    rgb = torch.rand(3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(bits))
    codes = colour.quantize(colour.rgb_to_ycbcr(rgb, fmt), bits)
    assert colour.quantize(colour.rgb_to_ycbcr(colour.ycbcr_to_rgb(codes, fmt), fmt), bits).equal(codes)
    assert codes.max() <= fmt.peak


def test_bad_format_options() -> None:
    with pytest.raises(UsageError, match="matrix"):
        YCbCrFormat("470")  # type: ignore[arg-type]
    with pytest.raises(UsageError, match="bit depth"):
        YCbCrFormat("709", bits=7)


# ------------------------------------------------------------------------------------------- chroma


def test_upsample_left_sited_420_positions() -> None:
    """MPEG-2 siting: chroma column i sits on luma column 2i, chroma row j between luma rows 2j and 2j+1."""
    chroma = torch.tensor([[0.0, 4.0, 8.0], [4.0, 8.0, 12.0]])
    up = colour.upsample_chroma(chroma, (4, 6), (2, 2), "left")
    assert torch.allclose(up[0], torch.tensor([0.0, 2.0, 4.0, 6.0, 8.0, 8.0]))
    assert torch.allclose(up[:, 0], torch.tensor([0.0, 1.0, 3.0, 4.0]))


def test_upsample_center_sited_positions() -> None:
    chroma = torch.tensor([[0.0, 4.0]])
    up = colour.upsample_chroma(chroma, (1, 4), (1, 2), "center")
    assert torch.allclose(up[0], torch.tensor([0.0, 1.0, 3.0, 4.0]))


@pytest.mark.parametrize("siting", ["left", "center", "topleft"])
def test_constant_and_linear_chroma_survive_down_and_up(siting: str) -> None:
    h, w = 9, 13  # odd sizes: chroma is ceil(h/2) x ceil(w/2)
    const = torch.full((2, h, w), 0.25)
    down = colour.downsample_chroma(const, (2, 2), siting)  # type: ignore[arg-type]
    assert down.shape == (2, 5, 7)
    assert torch.allclose(down, torch.full_like(down, 0.25))
    ramp = torch.arange(w, dtype=torch.float64).expand(h, w) / w
    back = colour.upsample_chroma(colour.downsample_chroma(ramp, (1, 2), siting), (h, w), (1, 2), siting)  # type: ignore[arg-type]
    assert torch.allclose(back[:, 3:-3], ramp[:, 3:-3], atol=1e-9)  # edges see a truncated filter


def test_upsample_refuses_wrong_chroma_size() -> None:
    with pytest.raises(InputError, match="chroma planes"):
        colour.upsample_chroma(torch.zeros(4, 4), (9, 9))


# Every public name of the module this package replaced (chromaflow/core/colour.py before round 2).
_PUBLIC_BEFORE = [
    "D65_WHITE",
    "LAB_EPSILON",
    "LAB_KAPPA",
    "XYZ_TO_LINEAR_RGB",
    "srgb_to_linear",
    "linear_to_srgb",
    "linear_rgb_to_xyz",
    "xyz_to_linear_rgb",
    "xyz_to_lab",
    "lab_to_xyz",
    "rgb_to_lab",
    "lab_to_rgb",
    "lightness",
    "gray_to_rgb",
    "Matrix",
    "YCbCrFormat",
    "rgb_to_ypbpr_matrix",
    "rgb_to_ycbcr",
    "ycbcr_to_rgb",
    "quantize",
    "Siting",
    "upsample_chroma",
    "downsample_chroma",
]


def test_the_package_keeps_every_public_name() -> None:
    missing = [name for name in _PUBLIC_BEFORE if not hasattr(colour, name)]
    assert not missing, f"chromaflow.core.colour lost {missing}"
    assert set(colour.__all__) <= set(dir(colour))


@pytest.mark.parametrize(("code", "name"), [(1, "709"), (5, "601"), (6, "601"), (9, "2020")])
def test_matrix_names_come_from_the_tags(code: int, name: str) -> None:
    matrix = colour.Matrix(code)
    assert matrix.coefficients == name
    assert YCbCrFormat(matrix.coefficients).matrix == name
    with pytest.raises(InputError, match=r"matrix=7 \(SMPTE 240M\).*retag"):
        _ = colour.Matrix(7).coefficients
