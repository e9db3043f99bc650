"""The fused CPU join (numba) against the tensor version it replaces on the CPU: same chroma to float rounding."""

import numpy as np
import pytest
import torch

from chromaflow.core.colour import YCbCrFormat, rgb_to_ycbcr
from chromaflow.core.colour.ycbcr_join import _cpu_chroma, join_in_gamut


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
    """Each pixel's chroma is that of the largest in-gamut fraction of its ab, found here by a plain grid search."""
    from chromaflow.core.colour import lab_to_rgb

    l, ab = _lab(4, 80.0)
    lab = torch.cat((l, ab), 1).double()
    raw = lab_to_rgb(lab, clip=False)
    outside = ((raw < -1e-5) | (raw > 1 + 1e-5)).any(1)
    assert 0.2 < outside.double().mean() < 0.95, "the test must exercise both kinds of pixel"
    fmt = YCbCrFormat("709", True, None)
    ours = torch.from_numpy(_cpu_chroma(l[:, 0].numpy(), ab.numpy(), fmt)).double()  # (N, 2, H, W)
    unscaled = rgb_to_ycbcr(raw, fmt)[:, 1:3]
    keep = ~outside[:, None].expand_as(ours)
    assert (ours[keep] - unscaled[keep]).abs().max() < 1e-5, "in-gamut colours are left as they are"

    pixels = outside.nonzero()[::13]  # (K, 3): n, y, x
    l_k = lab[pixels[:, 0], 0, pixels[:, 1], pixels[:, 2]]
    ab_k = lab[pixels[:, 0], 1:, pixels[:, 1], pixels[:, 2]]  # (K, 2)
    fractions = torch.linspace(0, 1, 16385, dtype=torch.float64)
    trial = torch.cat(
        (l_k[:, None, None].expand(-1, fractions.numel(), 1), ab_k[:, None, :] * fractions[None, :, None]), 2
    )  # (K, F, 3): L*, a, b for every fraction
    rgb = lab_to_rgb(trial.permute(2, 0, 1)[None], clip=False)[0]  # (3, K, F)
    inside = ((rgb >= -1e-5) & (rgb <= 1 + 1e-5)).all(0)
    steps = torch.arange(fractions.numel())
    best = (inside * steps).argmax(1)  # the last in-gamut fraction on the grid
    assert torch.equal(inside, steps[None] <= best[:, None]), "in gamut from gray up to `best`, then out"
    best_lab = torch.cat((l_k[:, None], ab_k * fractions[best][:, None]), 1).T[
        None, :, :, None
    ]  # (1, 3, K, 1)
    expected = rgb_to_ycbcr(lab_to_rgb(best_lab, clip=False), fmt)[0, 1:3, :, 0]  # (2, K)
    got = ours[pixels[:, 0], :, pixels[:, 1], pixels[:, 2]].T
    # 14 halvings land on this grid's steps (1/16384), so the two differ by float32 rounding alone
    assert (got - expected).abs().max() < 1e-4
    assert got.abs().max() <= 0.5 + 1e-6
    assert (got.norm(dim=0) < unscaled[pixels[:, 0], :, pixels[:, 1], pixels[:, 2]].T.norm(dim=0)).all()


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
    from chromaflow.core.colour.ycbcr_join import ycbcr_chroma

    fmt = YCbCrFormat("709", False, 8)
    l, ab = _lab(6, 60.0)
    cuda = ycbcr_chroma(l.cuda(), ab.cuda(), fmt, (2, 2)).cpu()
    cpu = ycbcr_chroma(l, ab, fmt, (2, 2))
    diff = (cuda - cpu).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 1e-2
