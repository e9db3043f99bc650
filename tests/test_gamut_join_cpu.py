"""The fused CPU join (numba) against the tensor version it replaces on the CPU: same chroma to float rounding."""

import numpy as np
import pytest
import torch

from chromaflow.core.colorizer import _cpu_chroma, join_in_gamut
from chromaflow.core.colour import YCbCrFormat, rgb_to_ycbcr


def _lab(seed: int, chroma: float) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    l = torch.rand(2, 1, 40, 56, generator=gen) * 100
    l[0, 0, 0, :4] = torch.tensor([0.0, 100.0, 7.9, 8.1])  # black, white, both sides of the L* = 8 knee
    ab = torch.randn(2, 2, 40, 56, generator=gen) * chroma
    return l, ab


@pytest.mark.parametrize(
    "fmt",
    [
        YCbCrFormat("709", False, 8),
        YCbCrFormat("601", True, 10),
        YCbCrFormat("2020", False, 16),
        YCbCrFormat("709", False, None),
    ],
)
@pytest.mark.parametrize("chroma", [5.0, 60.0])
def test_fused_join_matches_the_tensor_join(fmt: YCbCrFormat, chroma: float) -> None:
    l, ab = _lab(3, chroma)
    rgb, _ = join_in_gamut(l.double(), ab.double())
    ref = rgb_to_ycbcr(rgb, fmt)[:, 1:3].numpy()
    ours = _cpu_chroma(l[:, 0].numpy(), ab.numpy(), fmt)
    unit = 1.0 if fmt.bits is None else fmt.scale_offset()[2]  # one E'P unit in code values
    assert ours.dtype == np.float32 and ours.shape == ref.shape
    assert np.abs(ours - ref).max() < 2e-5 * unit


def test_out_of_gamut_colour_is_scaled_into_gamut() -> None:
    l, ab = _lab(4, 80.0)
    rgb_raw = torch.cat((l, ab), 1)
    from chromaflow.core.colour import lab_to_rgb

    outside = ((lab_to_rgb(rgb_raw, clip=False) < -1e-3) | (lab_to_rgb(rgb_raw, clip=False) > 1 + 1e-3)).any(
        1
    )
    assert outside.float().mean() > 0.2, "the test must exercise the bisection"
    fmt = YCbCrFormat("709", True, None)
    ours = _cpu_chroma(l[:, 0].numpy(), ab.numpy(), fmt)
    gray = np.zeros_like(ours)
    assert np.abs(ours).max() <= 0.5 + 1e-6 and not np.allclose(ours, gray), (
        "colour kept, inside the code range"
    )


@pytest.mark.parametrize("fmt", [YCbCrFormat("709", False, 8), YCbCrFormat("2020", True, 10)])
def test_branch_free_gpu_form_matches_the_cpu_kernel(fmt: YCbCrFormat) -> None:
    """The pointwise form CUDA compiles, run eagerly on the CPU: same maths as the numba kernel."""
    from chromaflow.core.colour import rgb_to_ypbpr_matrix
    from chromaflow.core.gamut_join_gpu import chroma_pointwise

    l, ab = _lab(5, 60.0)
    _, _, scale, offset = fmt.scale_offset()
    rows, scale_offset = (
        rgb_to_ypbpr_matrix(fmt.matrix)[1:],
        torch.tensor((scale, offset), dtype=torch.float64),
    )
    ours = chroma_pointwise(l.double(), ab.double(), rows, scale_offset, 1e-5, 14).numpy()
    ref = _cpu_chroma(l[:, 0].numpy(), ab.numpy(), fmt)
    assert np.abs(ours - ref).max() < 1e-3 * scale


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_compiled_cuda_join_matches_the_cpu_kernel() -> None:
    from chromaflow.core.colorizer import ycbcr_chroma

    fmt = YCbCrFormat("709", False, 8)
    l, ab = _lab(6, 60.0)
    cuda = ycbcr_chroma(l.cuda(), ab.cuda(), fmt, (2, 2)).cpu()
    cpu = ycbcr_chroma(l, ab, fmt, (2, 2))
    diff = (cuda - cpu).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-2
