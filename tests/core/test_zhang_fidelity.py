"""ECCV16/SIGGRAPH17 against the reference package rz-colorization (``colorizers``), same random weights.

The reference imports ``IPython.embed`` (a debugging helper it never calls); when IPython is not installed a stub
module stands in for it so the reference can be imported. Nothing else of the reference is replaced.
"""

import sys
import types

import pytest
import torch
import torch.nn.functional as F

from chromaflow.core.errors import ModelError
from chromaflow.core.nets.zhang import ECCV16, SIGGRAPH17, build_zhang, load_zhang_state

TOL = 1e-3  # ab units


def _reference():
    try:
        import IPython  # noqa: F401
    except ImportError:
        stub = types.ModuleType("IPython")
        stub.embed = lambda *a, **k: None  # type: ignore[attr-defined]
        sys.modules.setdefault("IPython", stub)
    return pytest.importorskip("colorizers")


def _random_state(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Random weights that keep activations O(1) and random batch-norm statistics (so BN maths is exercised)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in state.items():
        if key.endswith("num_batches_tracked"):
            out[key] = value.clone()
        elif key.endswith("running_var"):
            out[key] = torch.rand(value.shape, generator=gen) + 0.5
        elif key.endswith("running_mean"):
            out[key] = torch.randn(value.shape, generator=gen) * 0.1
        elif value.dim() == 4:
            fan_in = value.shape[1] * value.shape[2] * value.shape[3]
            out[key] = torch.randn(value.shape, generator=gen) * (2.0 / fan_in) ** 0.5
        else:
            centre = 1.0 if key.endswith("weight") else 0.0
            out[key] = centre + torch.randn(value.shape, generator=gen) * 0.1
    return out


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def ref():
    return _reference()


@pytest.fixture(scope="module")
def lightness_batch() -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    smooth = F.interpolate(torch.rand(1, 1, 8, 8, generator=gen), (64, 64), mode="bilinear")
    return (smooth * 100).clamp(0, 100)


def test_state_dict_keys_and_shapes_match_the_official_layout(ref):
    assert _shapes(ECCV16()) == _shapes(ref.eccv16(pretrained=False))
    assert _shapes(SIGGRAPH17()) == _shapes(ref.siggraph17(pretrained=False))


def test_eccv16_matches_reference(ref, lightness_batch):
    reference = ref.eccv16(pretrained=False).eval()
    state = _random_state(reference.state_dict(), seed=2)
    # A peaky bin distribution and a wide projection, so the output is far from constant.
    state["model8.6.weight"] *= 20
    state["model_out.weight"] = (
        torch.rand(state["model_out.weight"].shape, generator=torch.Generator().manual_seed(3)) * 2 - 1
    )
    reference.load_state_dict(state)
    ours = build_zhang("eccv16", state)
    with torch.no_grad():
        expected = reference(lightness_batch)
        got = ours(lightness_batch, torch.zeros(1, 2, 64, 64), torch.zeros(1, 1, 64, 64))
    assert got.shape == (1, 2, 16, 16)
    assert expected.std() > 1.0
    upsampled = F.interpolate(got, scale_factor=4, mode="bilinear", align_corners=False)
    assert (upsampled - expected).abs().max() <= TOL


@pytest.fixture(scope="module")
def siggraph_pair(ref):
    reference = ref.siggraph17(pretrained=False).eval()
    state = _random_state(reference.state_dict(), seed=4)
    reference.load_state_dict(state)
    return reference, build_zhang("siggraph17", state)


def test_siggraph17_without_hints_matches_reference(siggraph_pair, lightness_batch):
    reference, ours = siggraph_pair
    with torch.no_grad():
        expected = reference(lightness_batch)
        got = ours(lightness_batch, torch.zeros(1, 2, 64, 64), torch.zeros(1, 1, 64, 64))
    assert expected.std() > 1.0
    assert (got - expected).abs().max() <= TOL


def test_siggraph17_with_hints_matches_reference_and_hints_matter(siggraph_pair, lightness_batch):
    from chromaflow.core.hints import Hint, hint_tensors

    reference, ours = siggraph_pair
    hints = [Hint(10, 12, (255, 0, 0), 4), Hint(50, 40, (0, 80, 255), 2)]
    ab_hint, mask = hint_tensors(hints, (64, 64), 64)
    with torch.no_grad():
        expected = reference(lightness_batch, ab_hint, mask)
        got = ours(lightness_batch, ab_hint, mask)
        plain = ours(lightness_batch, torch.zeros_like(ab_hint), torch.zeros_like(mask))
    assert (got - expected).abs().max() <= TOL
    assert (got - plain).abs().max() > 0.1


def test_batch_of_two_gives_each_image_its_own_result(siggraph_pair, lightness_batch):
    _, ours = siggraph_pair
    batch = torch.cat((lightness_batch, 100 - lightness_batch))
    zeros_ab, zeros_mask = torch.zeros(2, 2, 64, 64), torch.zeros(2, 1, 64, 64)
    with torch.no_grad():
        both = ours(batch, zeros_ab, zeros_mask)
        second = ours(batch[1:], zeros_ab[1:], zeros_mask[1:])
    assert (both[1:] - second).abs().max() <= TOL


def test_checkpoint_without_batchnorm_counters_loads_and_wrong_shapes_are_refused():
    net = SIGGRAPH17(width=4)
    state = {k: v for k, v in net.state_dict().items() if not k.endswith("num_batches_tracked")}
    load_zhang_state(SIGGRAPH17(width=4), state)
    with pytest.raises(ModelError, match="do not fit"):
        load_zhang_state(SIGGRAPH17(width=8), net.state_dict())
    assert build_zhang("eccv16", ECCV16(width=4).state_dict()).model1[0].out_channels == 4
