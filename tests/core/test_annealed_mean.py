"""The annealed-mean decode of ``base`` and ``base-v2``: the per-image inference form equals the whole-batch
formula it replaced (softmax over the bins at a temperature, then the probability-weighted bin centres), and
training still gets gradients through the whole-batch form."""

import pytest
import torch

from chromaflow.core.nets.base import ab_bin_centres, annealed_mean, build_base


def _reference(logits: torch.Tensor, centres: torch.Tensor, temperature: float) -> torch.Tensor:
    probs = torch.softmax(logits.double() / temperature, dim=1)
    return torch.einsum("nqhw,qc->nchw", probs, centres.double())


@pytest.mark.parametrize("temperature", [0.38, 1.0])
def test_inference_form_equals_the_batch_formula(temperature: float) -> None:
    centres = ab_bin_centres()
    logits = torch.randn(3, centres.shape[0], 7, 5, generator=torch.Generator().manual_seed(1)) * 4
    with torch.no_grad():
        got = annealed_mean(logits, centres, temperature)
    assert got.shape == (3, 2, 7, 5) and got.dtype == torch.float32
    assert torch.allclose(got.double(), _reference(logits, centres, temperature), atol=1e-4)
    assert torch.equal(logits, logits.clone()), "the caller's logits are left as they were"


def test_half_logits_come_back_half() -> None:
    centres = ab_bin_centres()
    logits = torch.randn(2, centres.shape[0], 4, 4).half()
    with torch.no_grad():
        got = annealed_mean(logits, centres, 0.5)
    assert got.dtype == torch.float16
    assert torch.allclose(got.double(), _reference(logits.float(), centres, 0.5), atol=0.1)


def test_training_gets_gradients() -> None:
    net = build_base().train()
    l = torch.rand(2, 1, 64, 64) * 100
    hint, mask = torch.zeros(2, 2, 64, 64), torch.zeros(2, 1, 64, 64)
    logits = net.logits(l, hint, mask)
    net.decode(logits).square().mean().backward()
    assert net.head.weight.grad is not None and net.head.weight.grad.abs().sum() > 0
