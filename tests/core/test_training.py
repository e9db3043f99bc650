"""Training pipeline and the built-in ``base`` net: tiny runs on generated images."""

from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from chromaflow.core import registry, training
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.nets.base import TEMPERATURE_KEY, BaseColorNet, build_base, propagate_hint_residual
from chromaflow.core.nets.base_v2 import ENCODER_PREFIX, FINETUNE_FROM, BaseV2ColorNet
from chromaflow.core.nets.mobilenet_v2 import imagenet_state
from chromaflow.core.nets.zhang import ECCV16
from chromaflow.core.training.validation import validate

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread here, restored after: a conv's float result depends on the thread count (oneDNN picks
    its kernel by it), and threads that first run torch later (VapourSynth's workers) would otherwise inherit 1."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Eight 48x40 images: a coloured background with a differently coloured square; colour follows brightness."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs" / "nested"
    folder.mkdir(parents=True)
    for i in range(8):
        img = np.zeros((40, 48, 3), np.uint8)
        img[:] = (40, 160, 60)  # dark-ish green background (BGR)
        y, x = rng.integers(0, 16, 2)
        img[y : y + 20, x : x + 20] = (230, 120, 30)  # bright blue square
        cv2.imwrite(str(folder / f"{i}.png" if i % 2 else folder / f"{i}.jpg"), img)
    return tmp_path / "imgs"


def _trainer(folder: Path, steps: int, **kw: object) -> training.Trainer:
    cfg = training.TrainConfig(
        width=8, size=32, steps=steps, batch=4, lr=3e-3, seed=3, val_every=0, checkpoint_every=0, **kw
    )  # type: ignore[arg-type]
    files = training.list_images(folder)
    bank = training.ImageBank.from_files(files, cfg.size, cfg.max_side)
    return training.Trainer(cfg, bank, bank, torch.device("cpu"))


def test_list_images_finds_nested_files_and_rejects_empty(image_folder: Path, tmp_path: Path) -> None:
    assert len(training.list_images(image_folder)) == 8
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no images"):
        training.list_images(tmp_path / "empty")


def test_batches_are_a_function_of_seed_and_step(image_folder: Path) -> None:
    t = _trainer(image_folder, 1, hints=True)
    a, b = t.batch_at(5), t.batch_at(5)
    c = t.batch_at(6)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert not torch.equal(a[0], c[0])
    l, hint, mask, ab = a
    assert l.shape == (4, 1, 32, 32) and hint.shape == ab.shape == (4, 2, 32, 32)
    # Hints carry the ground truth's colour where the mask is set, nothing elsewhere.
    assert torch.all(hint[mask.expand_as(hint) == 0] == 0)


def test_tiny_run_lowers_loss_and_resumes_bit_identically(image_folder: Path, tmp_path: Path) -> None:
    full = _trainer(image_folder, 24, hints=True)
    history = full.run(progress=False)
    first = np.mean([h["loss"] for h in history[:4]])
    last = np.mean([h["loss"] for h in history[-4:]])
    assert last < first * 0.9

    ckpt = tmp_path / "run.ckpt"
    part = _trainer(image_folder, 24, hints=True)
    part.run(checkpoint=ckpt, progress=False, until=12)  # an interrupted run
    resumed = _trainer(image_folder, 24, hints=True)
    resumed.load_checkpoint(ckpt)
    assert resumed.step == 12
    resumed.run(progress=False)
    for (k, v), (k2, v2) in zip(full.net.state_dict().items(), resumed.net.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2), k


def test_gan_schedule_is_generator_then_critic_then_both(image_folder: Path) -> None:
    t = _trainer(image_folder, 10, gan=True, gan_start=4, critic_warmup=3)
    phases = [t.gan_phase(s) for s in range(10)]
    assert phases == ["generator"] * 4 + ["critic"] * 3 + ["both"] * 3
    before = {k: v.clone() for k, v in t.net.named_parameters()}
    t.step = 4  # critic phase: the generator must not change
    critic_before = [p.clone() for p in t.critic.parameters()]  # type: ignore[union-attr]
    result = t.train_step()
    assert "critic" in result.parts
    assert all(torch.equal(before[k], v) for k, v in t.net.named_parameters())
    assert any(not torch.equal(a, b) for a, b in zip(critic_before, t.critic.parameters(), strict=True))  # type: ignore[union-attr]
    t.step = 8
    assert "adv" in t.train_step().parts


def test_checkpoint_round_trip_and_export(image_folder: Path, tmp_path: Path) -> None:
    t = _trainer(image_folder, 3, hints=False)
    t.run(progress=False)
    ckpt = tmp_path / "c.ckpt"
    t.save_checkpoint(ckpt)
    other = _trainer(image_folder, 3, hints=False)
    other.load_checkpoint(ckpt)
    assert other.step == 3
    assert all(
        torch.equal(a, b)
        for a, b in zip(t.net.state_dict().values(), other.net.state_dict().values(), strict=True)
    )
    assert other.opt.state_dict()["state"].keys() == t.opt.state_dict()["state"].keys()
    weights = tmp_path / "w.pt"
    training.export_weights(t.net, weights)
    state = torch.load(weights, weights_only=True)
    net = build_base(state_dict=state)
    assert isinstance(net, BaseColorNet)
    x = torch.full((1, 1, 32, 32), 60.0)
    z = torch.zeros(1, 2, 32, 32)
    t.net.eval()
    torch.testing.assert_close(net(x, z, z[:, :1]), t.net(x, z, z[:, :1]).float(), atol=0.5, rtol=0)
    with pytest.raises(InputError):
        training.load_checkpoint(weights)  # a plain state_dict is not a checkpoint


def test_base_protocol_shapes_and_range() -> None:
    net = BaseColorNet(width=8).eval()
    assert BaseColorNet.accepts_hints is True
    l = torch.rand(2, 1, 64, 64) * 100
    ab = net(l, torch.zeros(2, 2, 64, 64), torch.zeros(2, 1, 64, 64))
    assert ab.shape == (2, 2, 16, 16)
    assert ab.abs().max() <= 120.0


BUNDLED = ("base", "base-v1")  # today's default and the first base, both shipped in core/weights/


@pytest.mark.parametrize("name", BUNDLED)
def test_bundled_colorizers_are_small_and_load_safely(name: str) -> None:
    """Each bundled file stays small, holds its temperature, and is a plain tensor file of its architecture."""
    path = registry.weights_path(name)
    assert path.parent == REPO / "core/weights" and path.stat().st_size <= 20 * 2**20
    state = torch.load(path, weights_only=True)
    assert TEMPERATURE_KEY in state
    net = registry.load(name, kind="colorizer")
    assert sum(p.numel() for p in net.parameters()) < 5_000_000 and not net.training


def test_base_ships_only_what_chromaflow_trained() -> None:
    """``base``'s file leaves out the frozen ImageNet encoder blocks (torchvision's weights are not ours to
    redistribute); loading fills them from the SHA-256-checked registry copy, and they equal that file exactly."""
    state = torch.load(registry.weights_path("base"), weights_only=True)
    shipped_blocks = {int(k.split(".")[2]) for k in state if k.startswith(ENCODER_PREFIX)}
    assert shipped_blocks and min(shipped_blocks) >= FINETUNE_FROM  # only the fine-tuned stages
    net = registry.load("base")
    assert isinstance(net, BaseV2ColorNet)
    imagenet = imagenet_state(progress=False)
    for key, value in net.encoder.state_dict().items():
        if int(key.split(".")[1]) < FINETUNE_FROM:
            assert torch.equal(value, imagenet[key].float()), key
    assert not torch.equal(
        net.encoder.features[FINETUNE_FROM + 1].conv[0][0].weight,
        imagenet[f"features.{FINETUNE_FROM + 1}.conv.0.0.weight"].float(),
    )  # the fine-tuned stages are the shipped ones


@pytest.mark.parametrize("name", BUNDLED)
@pytest.mark.parametrize("refine", [True, False])
def test_hints_change_the_output_where_they_are_placed(refine: bool, name: str) -> None:
    """With and without the explicit residual propagation: the learned net itself follows hints too. A hint on the
    dark half of a two-tone image recolours that half, much less the bright half across the edge."""
    net = registry.load(name)
    assert isinstance(net, BaseColorNet | BaseV2ColorNet)
    net.refine_hints = refine
    l = torch.full((1, 1, 128, 128), 35.0)
    l[:, :, :, 64:] = 80.0
    zeros = torch.zeros(1, 2, 128, 128)
    mask = torch.zeros(1, 1, 128, 128)
    hint = zeros.clone()
    mask[:, :, 20:24, 20:24] = 1
    hint[:, 0, 20:24, 20:24] = 60.0  # strong red
    hint[:, 1, 20:24, 20:24] = 40.0
    with torch.no_grad():
        plain = net(l, zeros, mask * 0)
        hinted = net(l, hint, mask)
    change = (hinted - plain).norm(dim=1)[0]  # (32, 32) at the output's quarter resolution
    near = change[4:7, 4:7].mean()
    across_edge = change[:, 20:].mean()
    assert near > 20.0  # moves by more than 20 ab units at the hint
    # what users get (refinement on) stays on its side of the edge; the net alone spreads a lone hint further
    # (base-v2's decoder reads hints at every scale, up to the global context), but still less across the edge
    assert near > (2 if refine else 1.5) * across_edge
    # ...towards the hint's colour: onto it with the refinement users get; most of the way by the net alone.
    target = torch.tensor([60.0, 40.0])
    miss = (hinted[0, :, 5, 5] - target).norm()
    assert miss < 10.0 if refine else miss < 0.3 * (plain[0, :, 5, 5] - target).norm()


def test_residual_propagation_reaches_the_hint_colour() -> None:
    pred = torch.zeros(1, 2, 16, 16)
    l_small = torch.full((1, 1, 16, 16), 50.0)
    l_small[:, :, :, 8:] = 90.0  # a lightness edge down the middle
    hint = torch.zeros(1, 2, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[:, :, 8:12, 8:12] = 1
    hint[:, 0] = 40.0
    out = propagate_hint_residual(pred, l_small, hint, mask)
    assert abs(float(out[0, 0, 2, 2]) - 40.0) < 2.0  # at the hint
    assert out[0, 0, 2, 6] > 4 * out[0, 0, 2, 10]  # same distance, but across the edge it barely leaks
    assert torch.equal(propagate_hint_residual(pred, l_small, hint, mask * 0), pred)


def test_cli_train_passes_every_option_to_the_run(image_folder: Path, tmp_path: Path) -> None:
    """The console verb end to end: a few steps, weights out, and the options recorded in the checkpoint."""
    from chromaflow.plugins.cli.main import main

    out = tmp_path / "tiny.pt"
    args = [
        "train",
        "colorizer",
        "--data",
        str(image_folder),
        "--out",
        str(out),
        "--size",
        "32",
        "--steps",
        "2",
    ]
    args += ["--batch", "2", "--width", "8", "--rebalance", "0.5", "--hints", "--seed", "4", "--no-progress"]
    assert main([*args, "--device", "cpu", "--val-every", "0"]) == 0
    config = training.load_checkpoint(out.with_suffix(".ckpt"))["config"]
    assert config["rebalance"] == 0.5 and config["hints"] and config["seed"] == 4 and config["steps"] == 2
    assert out.is_file()


def test_nets_come_from_the_registry_builders(image_folder: Path, tmp_path: Path) -> None:
    """Fresh nets of each trainable architecture (base at --width, the Zhang nets at their published width), and
    fine-tuning from a registered model or a weights file of --arch."""
    assert training.ARCHS == ("base", "siggraph17", "eccv16", "base-v2")
    base = training.build_net("base", 8)
    assert isinstance(base, BaseColorNet) and base.enc1[0].out_channels == 4 and base.training
    eccv = training.build_net("eccv16", 8)  # --width is base's option only
    assert isinstance(eccv, ECCV16) and eccv.model1[0].out_channels == 64 and eccv.training
    with pytest.raises(UsageError, match="unknown colorizer architecture 'meso4'"):
        training.build_net("meso4")
    arch, net = training.init_from_registry("base")  # today's base is a base-v2 net
    assert arch == "base-v2" and isinstance(net, BaseV2ColorNet) and net.training
    arch, net = training.init_from_registry("base-v1")
    assert arch == "base" and isinstance(net, BaseColorNet) and net.training
    weights = tmp_path / "w.pt"
    training.export_weights(base, weights)
    arch, net = training.init_from_registry(str(weights), "base")
    assert arch == "base" and net.enc1[0].out_channels == 4 and net.training
    with pytest.raises(UsageError, match="not a colorizer"):
        training.init_from_registry("meso4-df")


def test_binned_net_adds_the_bin_cross_entropy_and_the_zhang_nets_do_not(image_folder: Path) -> None:
    """The trainer recognises a net with colour bins by its protocol (a buffer-backed net included)."""
    t = _trainer(image_folder, 2, rebalance=0.5)
    assert t.bin_weights is not None and t.bin_weights.shape == (256,)
    assert set(t.train_step().parts) == {"ce", "huber"}
    zhang = _trainer(image_folder, 2, arch="eccv16", hints=False)
    assert zhang.bin_weights is None
    assert set(zhang.train_step().parts) == {"huber"}


def test_validation_at_a_temperature_scores_what_users_get() -> None:
    """Choosing a temperature scores the net's own forward at it (hint refinement included), exactly as if the
    net had been saved with that temperature."""
    torch.manual_seed(0)
    net = BaseColorNet(width=8).eval()
    crops = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    chosen = validate(net, crops, torch.device("cpu"), temperature=0.3)
    assert net.temperature != 0.3  # left as it was
    net.temperature = 0.3
    assert chosen == validate(net, crops, torch.device("cpu"))
    net.refine_hints = False
    assert validate(net, crops, torch.device("cpu"))["psnr_5hints"] != chosen["psnr_5hints"]
