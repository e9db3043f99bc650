"""The CPU downsampling by the tent's taps equals the dense resampling products it replaces."""

import pytest
import torch

from chromaflow.core.colour import downsample_chroma
from chromaflow.core.colour.subsampling import _SITING


@pytest.mark.parametrize("factors", [(2, 2), (1, 2), (2, 1), (3, 4)])
@pytest.mark.parametrize("siting", sorted(_SITING))
def test_taps_equal_the_dense_products(factors: tuple[int, int], siting: str) -> None:
    torch.manual_seed(0)
    planes = torch.rand(3, 2, 37, 51) * 224.0 + 16.0  # odd sizes: the last sample's tent is cut by the edge
    taps = downsample_chroma(planes, factors, siting)  # type: ignore[arg-type]  # float32 on the CPU: the taps
    dense = downsample_chroma(planes.double(), factors, siting).float()  # type: ignore[arg-type]  # float64: dense
    assert taps.dtype == torch.float32 and taps.shape == dense.shape
    assert taps.shape[-2:] == (-(-37 // factors[0]), -(-51 // factors[1]))
    torch.testing.assert_close(taps, dense, rtol=0, atol=1e-4)


def test_a_flat_plane_stays_flat_at_every_edge() -> None:
    """Normalised taps: a constant plane comes back exactly constant, borders included."""
    planes = torch.full((1, 2, 9, 11), 128.25)
    assert bool((downsample_chroma(planes, (2, 2), "left") == 128.25).all())
