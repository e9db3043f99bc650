"""DeOldify's generators against the authors' package ``deoldify==0.0.1`` (with the fastai v1 it bundles), same
random weights, fp32 on the CPU.

The oracle's fastai imports ``pkg_resources`` only to check fastprogress's version; setuptools 81 and later no
longer ship that module, so when it is absent a stub with a no-op ``require`` stands in for it (sys.modules only,
nothing installed or patched in the package). Everything else of the oracle runs as published.
"""

import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from chromaflow.core import registry
from chromaflow.core.colorizer import Colorizer
from chromaflow.core.colour.lab import gray_to_rgb, rgb_to_lab
from chromaflow.core.errors import ModelError, UsageError
from chromaflow.core.nets import builders
from chromaflow.core.nets.colour_net import ColorNet
from chromaflow.core.nets.deoldify import DeOldify, _SpectralConv, build, side_for_render_factor, unwrap

TOL = 1e-4  # normalised RGB units, as the generator outputs them
AB_TOL = 1e-3  # ab units, after the Lab conversion (which amplifies near-black differences a little)

# arch -> (encoder, decoder class, nf_factor), as deoldify.generators' gen_inference_deep / gen_inference_wide
# configure them (the artistic model is the deep one on ResNet-34, stable and video the wide one on ResNet-101).
AUTHORS = {
    "deoldify-deep": ("resnet34", "DynamicUnetDeep", 1.5),
    "deoldify-wide": ("resnet101", "DynamicUnetWide", 2),
}


def _oracle() -> types.SimpleNamespace:
    try:
        import pkg_resources  # noqa: F401
    except ImportError:
        stub = types.ModuleType("pkg_resources")
        stub.require = lambda *a, **k: None  # type: ignore[attr-defined]
        sys.modules.setdefault("pkg_resources", stub)
    unet = pytest.importorskip("deoldify.unet")
    from fastai.layers import NormType
    from fastai.vision import models
    from fastai.vision.data import imagenet_stats, normalize_funcs
    from fastai.vision.learner import create_body

    return types.SimpleNamespace(
        unet=unet,
        NormType=NormType,
        models=models,
        create_body=create_body,
        imagenet_stats=imagenet_stats,
        normalize_funcs=normalize_funcs,
    )


def _authors_generator(ref: types.SimpleNamespace, arch: str) -> torch.nn.Module:
    """The generator as ``deoldify.generators.unet_learner_deep/_wide`` builds it (without the Learner, and
    without downloading the ImageNet encoder: its weights are replaced anyway)."""
    encoder, decoder, nf_factor = AUTHORS[arch]
    body = ref.create_body(getattr(ref.models, encoder), False)
    return getattr(ref.unet, decoder)(
        body,
        n_classes=3,
        blur=True,
        blur_final=True,
        self_attention=True,
        y_range=(-3.0, 3.0),
        norm_type=ref.NormType.Spectral,
        last_cross=True,
        bottle=False,
        nf_factor=nf_factor,
    ).eval()


def _random_state(state: dict[str, torch.Tensor], seed: int) -> dict[str, torch.Tensor]:
    """Random weights that keep activations O(1): He-scaled convolutions, random batch-norm statistics, a
    non-zero attention weight, residual branches damped (101 layers of random residuals would overflow), and
    spectral-norm ``u``/``v`` from three power-iteration steps on random starts (so sigma is near the true one,
    yet the stored vectors still differ from what a further step would give)."""
    gen = torch.Generator().manual_seed(seed)
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if not value.is_floating_point():
            out[key] = value.clone()
        elif key.endswith("running_var"):
            out[key] = torch.rand(value.shape, generator=gen) + 0.5
        elif key.endswith("running_mean"):
            out[key] = torch.randn(value.shape, generator=gen) * 0.1
        elif key.endswith("gamma"):
            out[key] = torch.randn(value.shape, generator=gen)
        elif value.dim() >= 2:
            out[key] = torch.randn(value.shape, generator=gen) * (2.0 / value[0].numel()) ** 0.5
        else:
            centre = 1.0 if key.endswith(("weight", "weight_g")) else 0.0
            out[key] = centre + torch.randn(value.shape, generator=gen) * 0.1
        if key.endswith("bn3.weight"):
            out[key] = out[key] * 0.3
    for key in [k for k in out if k.endswith("weight_orig")]:
        stem = key[: -len("orig")]
        matrix, u = out[key].reshape(out[key].shape[0], -1), out[stem + "u"]
        for _ in range(3):
            v = F.normalize(matrix.t() @ u, dim=0)
            u = F.normalize(matrix @ v, dim=0)
        out[stem + "u"], out[stem + "v"] = u, v
    return out


def _shapes(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


@pytest.fixture(scope="module")
def ref() -> types.SimpleNamespace:
    return _oracle()


@pytest.fixture(scope="module", params=list(AUTHORS))
def pair(request, ref) -> tuple[torch.nn.Module, DeOldify]:
    """The authors' generator and ours of one architecture, holding the same random weights."""
    authors = _authors_generator(ref, request.param)
    ours = build(request.param)
    assert _shapes(ours) == _shapes(authors)  # key sets and shapes, before any weights move
    state = _random_state(authors.state_dict(), seed=2)
    authors.load_state_dict(state)
    return authors, build(request.param, state)


def _smooth(shape: tuple[int, ...], seed: int) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return F.interpolate(torch.rand(shape[0], shape[1], 8, 8, generator=gen), shape[2:], mode="bilinear")


# 48: odd sizes deep in the encoder, so the upsampled maps are resized to the skips' sizes
@pytest.mark.parametrize(("batch", "side"), [(2, 32), (1, 48)])
def test_generator_matches_the_authors(pair, batch: int, side: int) -> None:
    authors, ours = pair
    x = torch.randn(batch, 3, side, side, generator=torch.Generator().manual_seed(side))
    with torch.no_grad():
        expected = authors(x)
        got = ours.forward_rgb(x)
    assert got.shape == expected.shape == (batch, 3, side, side)
    assert expected.std() > 0.1  # not saturated: the comparison sees the whole net
    assert (got - expected).abs().max() <= TOL


def test_colour_net_is_the_authors_pipeline_on_gray_rgb(pair, ref) -> None:
    """L* -> neutral sRGB -> the authors' normalisation -> generator -> their de-normalisation and clipping
    (``pred_batch(reconstruct=True)``) -> keep a*b*."""
    authors, ours = pair
    l_star = _smooth((2, 1, 32, 32), seed=5) * 100
    norm, denorm = ref.normalize_funcs(*ref.imagenet_stats, do_x=True, do_y=True)
    gray = gray_to_rgb(l_star)
    x, _ = norm((gray, gray))
    with torch.no_grad():
        rgb = denorm(authors(x), do_x=True).clamp(0, 1)
        got = ours(l_star, torch.zeros(2, 2, 32, 32), torch.zeros(2, 1, 32, 32))
    expected = rgb_to_lab(rgb)[:, 1:]
    assert got.shape == (2, 2, 32, 32)
    assert expected.abs().mean() > 1.0
    assert (got - expected).abs().max() <= AB_TOL
    assert isinstance(ours, ColorNet) and not ours.accepts_hints


@pytest.mark.parametrize("dims", [1, 2])
def test_spectral_norm_steps_as_torch_does_in_training_and_not_in_eval(dims: int) -> None:
    """The authors' layers are torch's ``spectral_norm`` (fastai applies it): each training forward takes one
    power-iteration step and updates u and v; eval forwards use them as stored. Ours, over a few steps of each."""
    torch.manual_seed(dims)
    conv = (
        torch.nn.Conv1d(12, 6, 1, bias=False)
        if dims == 1
        else torch.nn.Conv2d(12, 6, 3, padding=1, bias=False)
    )
    authors = torch.nn.utils.spectral_norm(conv)
    ours = _SpectralConv(12, 6, 1 if dims == 1 else 3, bias=False, dims=dims)  # type: ignore[arg-type]
    ours.load_state_dict(authors.state_dict())
    x = torch.randn(2, 12, *((9,) if dims == 1 else (7, 7)))
    for training in (True, True, False, False, True):
        authors.train(training)
        ours.train(training)
        before = ours.weight_u.clone()
        with torch.no_grad():
            assert (ours(x) - authors(x)).abs().max() <= 1e-5
        assert torch.equal(ours.weight_u, before) != training
        for key, value in authors.state_dict().items():
            assert (ours.state_dict()[key] - value).abs().max() <= 1e-6, key


def test_render_factor_sides_and_registry_entries() -> None:
    assert side_for_render_factor(35) == 560 and side_for_render_factor(21) == 336
    for bad in (0, -3, 2.5, True):
        with pytest.raises(UsageError, match="render factor"):
            side_for_render_factor(bad)  # type: ignore[arg-type]
    expected = {
        "deoldify-artistic": ("deoldify-deep", 560, "3f750246", "e22477"),
        "deoldify-stable": ("deoldify-wide", 560, "ca9cd7f4", "1ee5af"),
        "deoldify-video": ("deoldify-wide", 336, "e3d98bb6", "ac83ad"),
    }
    for name, (arch, side, head, tail) in expected.items():
        spec = registry.get_spec(name)
        assert (spec.arch, spec.input_size, spec.kind) == (arch, side, "colorizer")
        assert spec.sha256 is not None and len(spec.sha256) == 64
        assert spec.sha256.startswith(head) and spec.sha256.endswith(tail)
        assert spec.url is not None and spec.url.endswith("/" + spec.filename)
        assert spec.licence.startswith("MIT")
    assert builders.builder_for("deoldify-wide").input_size == 560
    with pytest.raises(UsageError, match="fixed size"):
        builders.DEOLDIFY_DEEP.build(8)


def test_checkpoint_round_trip_through_the_registry(tmp_path: Path) -> None:
    """A bare state_dict, and the authors' container as fastai's Learner.save wrote it (legacy serialisation,
    pickle protocol 2, a ``slice`` among the non-tensor entries, as Hugging Face's scan of their files shows),
    load with ``registry.load(path, arch=...)``; every tensor arrives."""
    net = build("deoldify-deep")
    state = net.state_dict()
    bare, wrapped = tmp_path / "bare.pth", tmp_path / "ColorizeArtistic_gen.pth"
    torch.save(state, bare)
    torch.save(
        {"model": state, "opt": {"lr": slice(1e-6, 1e-3)}},
        wrapped,
        _use_new_zipfile_serialization=False,
        pickle_protocol=2,
    )
    for path in (bare, wrapped):
        loaded = registry.load(path, arch="deoldify-deep", kind="colorizer")
        assert isinstance(loaded, DeOldify) and not loaded.training
        assert loaded.state_dict().keys() == state.keys()
        assert all(torch.equal(v, state[k]) for k, v in loaded.state_dict().items())
    bare.unlink()
    assert unwrap({"module." + k: v for k, v in state.items()}).keys() == state.keys()  # DataParallel saves
    with pytest.raises(
        UsageError, match=r"say which architecture ColorizeArtistic_gen\.pth holds: add --arch"
    ):
        registry.load(wrapped, kind="colorizer")
    with pytest.raises(ModelError, match="holds a deoldify-deep generator: use --arch deoldify-deep"):
        registry.load(wrapped, arch="deoldify-wide")


def test_wrong_files_are_refused_with_what_to_do(tmp_path: Path) -> None:
    state = build("deoldify-deep").state_dict()
    partial = {k: v for k, v in state.items() if not k.startswith("layers.10.")}
    torch.save({"model": partial}, tmp_path / "partial.pth")
    with pytest.raises(ModelError, match=r"do not fit the deoldify-deep architecture.*DeOldify generator"):
        registry.load(tmp_path / "partial.pth", arch="deoldify-deep")
    reshaped = dict(state)
    reshaped["layers.11.0.bias"] = torch.zeros(4)
    torch.save(reshaped, tmp_path / "reshaped.pth")
    with pytest.raises(ModelError, match="do not fit"):
        registry.load(tmp_path / "reshaped.pth", arch="deoldify-deep")
    torch.save({"model": [1, 2, 3]}, tmp_path / "list.pth")
    with pytest.raises(ModelError, match=r"not a DeOldify state_dict.*use a DeOldify generator file"):
        registry.load(tmp_path / "list.pth", arch="deoldify-deep")


def test_colorizer_runs_a_frame_end_to_end(pair) -> None:
    _, ours = pair
    gray = (_smooth((1, 1, 40, 56), seed=6)[0, 0].numpy() * 255).astype(np.uint8)
    frame = np.repeat(gray[:, :, None], 3, axis=2)
    out = Colorizer(ours, size=32).colorize(frame)
    assert out.shape == frame.shape and out.dtype == np.uint8
    spread = out.astype(int).max(axis=2) - out.astype(int).min(axis=2)
    assert spread.max() > 3  # colour was added
    with pytest.raises(UsageError, match="even input side"):
        ours.forward_rgb(torch.zeros(1, 3, 33, 33))
