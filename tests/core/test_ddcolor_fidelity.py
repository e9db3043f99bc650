"""DDColor (tiny and large) against the authors' architecture as the ``vsddcolor`` package carries it, same random
weights; plus loading the authors' checkpoint layout and running through the Colorizer.

The oracle is built with the authors' inference settings (2 output channels, spectral norm on the last upsampler,
100 queries, 3 scales, 9 decoder layers) on the meta device (its own initialisation of ConvNeXt-L's 196M weights
would dominate the test's time), then given real random weights with ``assign=True``: weights that keep
activations O(1), random batch-norm statistics, non-trivial layer scales, and singular vectors from a power
iteration (so each spectral norm divides by a true largest singular value, as in a trained checkpoint).
"""

from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chromaflow.core import registry
from chromaflow.core.colorizer import Colorizer
from chromaflow.core.errors import ModelError, UsageError
from chromaflow.core.nets import builders, ddcolor
from chromaflow.core.nets.colour_net import ColorNet

TOL = 1e-4  # ab units
ENCODERS = {"ddcolor-tiny": "convnext-t", "ddcolor-large": "convnext-l"}


def _oracle_skeleton(arch: str) -> torch.nn.Module:
    """The authors' DDColor on the meta device (shapes only, nothing allocated).

    Its ConvNeXt reads its stochastic-depth rates with ``.item()``, which a meta tensor cannot give: while it is
    built, ``torch.linspace`` makes CPU tensors (the only change to the oracle, and only to how it is built).
    """
    arch_module = pytest.importorskip("vsddcolor.ddcolor_arch")
    linspace = torch.linspace

    def cpu_linspace(*args: Any, **kwargs: Any) -> torch.Tensor:
        return linspace(*args, **{**kwargs, "device": "cpu"})

    with torch.device("meta"), mock.patch.object(torch, "linspace", cpu_linspace):
        return arch_module.DDColor(
            encoder_name=ENCODERS[arch],
            input_size=(32, 32),
            num_output_channels=2,
            last_norm="Spectral",
            num_queries=100,
            num_scales=3,
            dec_layers=9,
        ).eval()


def _oracle(arch: str, seed: int) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """The authors' DDColor filled with random weights, and those weights."""
    oracle = _oracle_skeleton(arch)
    state = _random_state(oracle.state_dict(), seed)
    oracle.load_state_dict(state, strict=True, assign=True)
    return oracle, state


def _random_state(skeleton: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for key, value in skeleton.items():
        if key == "mean":
            out[key] = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        elif key == "std":
            out[key] = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        elif key.endswith("num_batches_tracked"):
            out[key] = torch.zeros((), dtype=torch.long)
        elif key.endswith(("weight_u", "weight_v")):
            continue  # from the power iteration below
        elif key.endswith("running_var"):
            out[key] = torch.rand(value.shape, generator=gen) + 0.5
        elif key.endswith("running_mean"):
            out[key] = torch.randn(value.shape, generator=gen) * 0.1
        elif key.endswith("gamma"):
            out[key] = torch.rand(value.shape, generator=gen) * 0.5
        elif value.dim() >= 2:
            out[key] = torch.randn(value.shape, generator=gen) / value[0].numel() ** 0.5
        else:
            centre = 1.0 if key.endswith("weight") else 0.0
            out[key] = centre + torch.randn(value.shape, generator=gen) * 0.1
    for key in [k for k in skeleton if k.endswith("weight_orig")]:
        matrix = out[key].flatten(1)
        u = F.normalize(torch.randn(matrix.shape[0], generator=gen), dim=0)
        for _ in range(10):
            v = F.normalize(matrix.t() @ u, dim=0)
            u = F.normalize(matrix @ v, dim=0)
        stem = key.removesuffix("orig")
        out[stem + "u"], out[stem + "v"] = u, v
    return out


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _smooth_rgb(n: int, side: int, seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(n, 3, 8, 8, generator=gen), (side, side), mode="bilinear")


@pytest.fixture(scope="module")
def tiny_pair() -> tuple[torch.nn.Module, ddcolor.DDColor]:
    oracle, state = _oracle("ddcolor-tiny", seed=5)
    return oracle, ddcolor.build("ddcolor-tiny", state)


@pytest.mark.parametrize("arch", ["ddcolor-tiny", "ddcolor-large"])
def test_state_dict_keys_and_shapes_are_the_authors(arch):
    with torch.device("meta"):
        ours = ddcolor.DDColor(arch)
    assert _shapes(ours) == _shapes(_oracle_skeleton(arch))


def test_tiny_matches_the_authors_network(tiny_pair):
    oracle, ours = tiny_pair
    rgb = _smooth_rgb(2, 32, seed=6)
    with torch.no_grad():
        expected = oracle(rgb)
        got = ours.forward_rgb(rgb)
        second_alone = ours.forward_rgb(rgb[1:])
    assert got.shape == (2, 2, 32, 32)
    assert expected.std() > 0.1
    assert (got - expected).abs().max() <= TOL
    assert (got[1:] - second_alone).abs().max() <= TOL  # each image of a batch is its own


def test_large_matches_the_authors_network():
    oracle, state = _oracle("ddcolor-large", seed=7)
    ours = ddcolor.build("ddcolor-large", state)
    rgb = _smooth_rgb(1, 32, seed=8)
    with torch.no_grad():
        expected = oracle(rgb)
        got = ours.forward_rgb(rgb)
    assert expected.std() > 0.1
    assert (got - expected).abs().max() <= TOL


def test_colour_net_forward_is_the_authors_pipeline_on_the_gray_image(tiny_pair):
    """L* in, ab out equals the oracle fed the authors' gray input: the sRGB image of (L*, 0, 0)."""
    kornia = pytest.importorskip("kornia")
    oracle, ours = tiny_pair
    gen = torch.Generator().manual_seed(9)
    l = F.interpolate(torch.rand(1, 1, 8, 8, generator=gen), (64, 64), mode="bilinear") * 100
    gray_lab = torch.cat((l, torch.zeros_like(l), torch.zeros_like(l)), dim=1)
    with torch.no_grad():
        expected = oracle(kornia.color.lab_to_rgb(gray_lab))
        got = ours(l, torch.zeros(1, 2, 64, 64), torch.zeros(1, 1, 64, 64))
    assert isinstance(ours, ColorNet) and not ours.accepts_hints
    assert got.shape == (1, 2, 64, 64)
    assert (got - expected).abs().max() <= TOL


@pytest.mark.parametrize("side", [48, 100, 16])
def test_a_side_that_is_not_a_multiple_of_32_is_refused(tiny_pair, side):
    _, ours = tiny_pair
    with pytest.raises(UsageError, match="multiple of 32"):
        ours(torch.full((1, 1, side, side), 50.0))


def test_builders_and_registry_entries():
    assert builders.builder_for("ddcolor-tiny", "colorizer").input_size == 512
    assert builders.builder_for("ddcolor-large").kind == "colorizer"
    with pytest.raises(UsageError, match="no width"):
        builders.builder_for("ddcolor-tiny").build(width=8)
    expected = {
        "ddcolor-modelscope": "ddcolor-large",
        "ddcolor-artistic": "ddcolor-large",
        "ddcolor-paper": "ddcolor-large",
        "ddcolor-paper-tiny": "ddcolor-tiny",
    }
    for name, arch in expected.items():
        spec = registry.get_spec(name)
        assert spec.arch == arch and spec.input_size == 512 and spec.kind == "colorizer"
        assert spec.sha256 is not None and len(spec.sha256) == 64
        assert spec.url == f"https://huggingface.co/piddnad/DDColor-models/resolve/main/{spec.filename}"
        assert spec.licence.startswith("Apache-2.0")


def test_checkpoints_round_trip_bare_and_in_the_authors_container(tiny_pair, tmp_path: Path):
    _, ours = tiny_pair
    state = ours.state_dict()
    l = torch.linspace(0, 100, 32 * 32).view(1, 1, 32, 32)
    zeros_ab, zeros_mask = torch.zeros(1, 2, 32, 32), torch.zeros(1, 1, 32, 32)
    with torch.no_grad():
        expected = ours(l, zeros_ab, zeros_mask)
    container = tmp_path / "ddcolor_paper_tiny.pth"
    torch.save({"params": state}, container)
    loaded = registry.load(container, arch="ddcolor-tiny")
    assert isinstance(loaded, ddcolor.DDColor) and not loaded.training
    # A bare state_dict of a DataParallel wrapper ("module." prefixes), without the constant buffers.
    bare = {f"module.{k}": v for k, v in state.items() if k not in ("mean", "std")}
    loaded_bare = ddcolor.build("ddcolor-tiny", ddcolor.unwrap_checkpoint(bare))
    with torch.no_grad():
        assert torch.equal(loaded(l, zeros_ab, zeros_mask), expected)
        assert torch.equal(loaded_bare(l, zeros_ab, zeros_mask), expected)
    with pytest.raises(ModelError, match="--arch ddcolor-tiny"):
        ddcolor.build("ddcolor-large", state)
    # A fine-tune stored in half precision runs in float32, like the published files.
    half = ddcolor.build(
        "ddcolor-tiny", {k: v.half() if v.is_floating_point() else v for k, v in state.items()}
    )
    assert {v.dtype for v in half.state_dict().values() if v.is_floating_point()} == {torch.float32}


def test_wrong_files_and_states_are_refused(tiny_pair, tmp_path: Path):
    _, ours = tiny_pair
    other = tmp_path / "eccv16.pth"
    torch.save(builders.builder_for("eccv16").build(4).state_dict(), other)
    with pytest.raises(ModelError, match="not a DDColor checkpoint"):
        registry.load(other, arch="ddcolor-tiny")
    state = ours.state_dict()
    missing = {k: v for k, v in state.items() if not k.startswith("refine_net.")}
    with pytest.raises(ModelError, match="do not fit the ddcolor-tiny"):
        ddcolor.build("ddcolor-tiny", missing)
    reshaped = dict(state)
    reshaped["decoder.layers.0.bn.weight"] = torch.ones(7)
    with pytest.raises(ModelError, match="do not fit the ddcolor-tiny"):
        ddcolor.build("ddcolor-tiny", reshaped)
    with pytest.raises(ModelError, match="named tensor"):
        ddcolor.unwrap_checkpoint({"params": {"mean": [0.5]}})


def test_the_colorizer_runs_a_ddcolor_module_end_to_end(tiny_pair):
    _, ours = tiny_pair
    colorizer = Colorizer(ours, size=64)
    gen = np.random.default_rng(10)
    gray = (gen.random((40, 56)) * 255).astype(np.uint8)
    rgb, ab = colorizer.colorize(gray, return_ab=True)
    assert rgb.shape == (40, 56, 3) and rgb.dtype == np.uint8
    assert ab.shape == (40, 56, 2) and np.isfinite(ab).all() and np.abs(ab).max() > 0
    with pytest.raises(UsageError, match="multiple of 32"):
        Colorizer(ours, size=40).colorize(gray)
