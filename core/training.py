"""Training of colorizers from folders of images.

Every batch is drawn from a generator seeded with ``(seed, step)``, so a run is a pure function of its options and
device, and a run resumed from a checkpoint continues bit for bit as if it had never stopped (the checkpoint holds
the model, optimizer, critic and grad-scaler states and the step).

Loss: Huber on ab (normalised by 110) for every architecture; nets with a classification head (``logits`` and
``decode`` methods, as :class:`~chromaflow.core.nets.base.BaseColorNet`) add the cross-entropy against Gaussian
soft-encoded ab targets (Zhang et al. 2016). ``gan=True`` adds a PatchGAN critic on (L, ab) with a
generator-first schedule: the generator alone until ``gan_start``, then the critic alone for ``critic_warmup``
steps, then both. Simulated user hints (``hints=True``) are points or small patches carrying the ground truth's
mean ab, as in SIGGRAPH17, so that hint-following is learned.
"""

import hashlib
import logging
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chromaflow.core.colour import lab_to_rgb, rgb_to_lab
from chromaflow.core.errors import InputError, ModelError, OutputError, UsageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".jp2", ".exr")
ARCHS = ("base", "siggraph17", "eccv16")
AB_NORM = 110.0


@dataclass
class TrainConfig:
    """Options of one training run (all of them are stored in the checkpoint)."""

    arch: str = "base"
    width: int = 24  # base only
    size: int = 128
    steps: int = 1000
    batch: int = 12
    lr: float = 1e-3
    weight_decay: float = 1e-4
    gan: bool = False
    gan_start: int = 0  # 0: half of the steps
    critic_warmup: int = 0  # 0: a tenth of the steps
    gan_weight: float = 0.01
    hints: bool = True
    hint_free_fraction: float = 0.5
    huber_weight: float = 1.0
    rebalance: float = 0.0  # 0: off; else Zhang et al.'s lambda (0.5): rare colours weigh more in the CE
    seed: int = 0
    val_every: int = 250
    val_fraction: float = 0.05
    checkpoint_every: int = 250
    max_side: int = 512
    init: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- data


def list_images(folder: Path) -> list[Path]:
    """All image files under ``folder`` (recursively), sorted; raises InputError when there are none."""
    if not folder.is_dir():
        raise InputError(f"training data folder {folder} does not exist; pass a folder of images with --data")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {folder}")
    return files


def split_files(files: Sequence[Path], root: Path, val_fraction: float) -> tuple[list[Path], list[Path]]:
    """Deterministic train/validation split by a hash of each file's path relative to ``root``."""
    train: list[Path] = []
    val: list[Path] = []
    for f in files:
        h = int(hashlib.sha1(str(f.relative_to(root)).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (val if h < val_fraction else train).append(f)
    if not train:
        train, val = list(val), []
    return train, val


def load_rgb(path: Path, max_side: int, min_side: int) -> np.ndarray:
    """An image as RGB uint8, scaled down so its shorter side is at most ``max_side``."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read image {path}; remove it or convert it to PNG/JPEG")
    h, w = img.shape[:2]
    factor = max_side / min(h, w)
    if factor < 1:
        img = cv2.resize(img, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    if min(h, w) < min_side:
        factor = min_side / min(h, w)
        img = cv2.resize(img, (math.ceil(w * factor), math.ceil(h * factor)), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class ImageBank:
    """Images held in memory, with random crops, scales and flips drawn from a given generator."""

    def __init__(self, images: Sequence[np.ndarray], size: int) -> None:
        if not images:
            raise InputError("the training set is empty")
        self.images = list(images)
        self.size = size

    @classmethod
    def from_files(cls, files: Sequence[Path], size: int, max_side: int) -> "ImageBank":
        return cls([load_rgb(f, max_side, size) for f in files], size)

    def sample(self, rng: np.random.Generator, batch: int) -> Tensor:
        """(batch, 3, size, size) sRGB in [0, 1]: random image, scale, crop and horizontal flip."""
        out = np.empty((batch, self.size, self.size, 3), dtype=np.uint8)
        for i in range(batch):
            img = self.images[int(rng.integers(len(self.images)))]
            h, w = img.shape[:2]
            low = self.size / min(h, w)
            factor = float(rng.uniform(low, max(low, 1.0)))
            if factor != 1.0:
                nw, nh = max(self.size, round(w * factor)), max(self.size, round(h * factor))
                img = cv2.resize(
                    img, (nw, nh), interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR
                )
            y = int(rng.integers(img.shape[0] - self.size + 1))
            x = int(rng.integers(img.shape[1] - self.size + 1))
            crop = img[y : y + self.size, x : x + self.size]
            out[i] = crop[:, ::-1] if rng.random() < 0.5 else crop
        return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255.0

    def centre_crops(self) -> Tensor:
        """Every image scaled to the crop size on its shorter side and centre-cropped (for validation)."""
        crops = []
        for img in self.images:
            h, w = img.shape[:2]
            f = self.size / min(h, w)
            img = cv2.resize(
                img, (max(self.size, round(w * f)), max(self.size, round(h * f))), interpolation=3
            )
            y, x = (img.shape[0] - self.size) // 2, (img.shape[1] - self.size) // 2
            crops.append(img[y : y + self.size, x : x + self.size])
        return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0


def sample_hints(
    ab: Tensor, rng: np.random.Generator, free_fraction: float = 0.5, mean_points: float = 8.0
) -> tuple[Tensor, Tensor]:
    """Simulated user hints from ground-truth ab (N, 2, S, S): (ab_hint, mask).

    A fraction ``free_fraction`` of the images get none; the others a geometric number of points (mean
    ``mean_points``), each a square of 1 to 5 pixels carrying the mean ab of the ground truth under it.
    """
    n, _, h, w = ab.shape
    hint = torch.zeros_like(ab)
    mask = torch.zeros((n, 1, h, w), dtype=ab.dtype, device=ab.device)
    for i in range(n):
        if rng.random() < free_fraction:
            continue
        count = min(int(rng.geometric(1.0 / mean_points)), 64)
        for _ in range(count):
            p = int(rng.integers(1, 6))
            y, x = int(rng.integers(h - p + 1)), int(rng.integers(w - p + 1))
            hint[i, :, y : y + p, x : x + p] = ab[i, :, y : y + p, x : x + p].mean(dim=(1, 2), keepdim=True)
            mask[i, :, y : y + p, x : x + p] = 1.0
    return hint, mask


def points_hints(ab: Tensor, points: int, rng: np.random.Generator, patch: int = 3) -> tuple[Tensor, Tensor]:
    """Exactly ``points`` hints per image, each a ``patch`` x ``patch`` square of the ground truth's mean ab."""
    n, _, h, w = ab.shape
    hint = torch.zeros_like(ab)
    mask = torch.zeros((n, 1, h, w), dtype=ab.dtype, device=ab.device)
    for i in range(n):
        for _ in range(points):
            y, x = int(rng.integers(h - patch + 1)), int(rng.integers(w - patch + 1))
            hint[i, :, y : y + patch, x : x + patch] = ab[i, :, y : y + patch, x : x + patch].mean(
                dim=(1, 2), keepdim=True
            )
            mask[i, :, y : y + patch, x : x + patch] = 1.0
    return hint, mask


# ---------------------------------------------------------------------------------------------- models


def build_net(arch: str, width: int = 24) -> nn.Module:
    """A freshly initialised colour net of ``arch`` (``width`` applies to ``base``)."""
    if arch == "base":
        from chromaflow.core.nets.base import build_base

        return build_base(width)
    if arch in ("siggraph17", "eccv16"):
        from chromaflow.core.nets import zhang

        return zhang.build_zhang(arch).train()
    raise UsageError(f"unknown architecture {arch!r}: use one of {', '.join(ARCHS)}")


def init_from_registry(name: str, arch_hint: str = "base") -> tuple[str, nn.Module]:
    """The architecture and net of a registered model (or of a weights file of ``arch_hint``), with its weights,
    to fine-tune from."""
    if Path(name).is_file():
        arch, path = arch_hint, Path(name)
    else:
        from chromaflow.core import registry  # imported lazily: only fine-tuning needs it

        spec = registry.get_spec(name)
        arch = str(getattr(spec, "arch", None) or getattr(spec, "architecture", name))
        path = registry.weights_path(name)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise ModelError(f"cannot load weights of {name!r} from {path}: {err}") from err
    if arch in ("siggraph17", "eccv16"):
        from chromaflow.core.nets import zhang

        return arch, zhang.build_zhang(arch, state).train()
    if arch == "base":
        from chromaflow.core.nets.base import build_base

        return arch, build_base(state_dict=state).train()
    raise ModelError(f"model {name!r} has architecture {arch!r}, which cannot be trained here")


class PatchCritic(nn.Module):
    """PatchGAN critic (Isola et al. 2017) on (L', a', b') at the generator's output resolution."""

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(3, width, 4, 2, 1),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(width, 2 * width, 4, 2, 1),
            nn.InstanceNorm2d(2 * width, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(2 * width, 4 * width, 3, 1, 1),
            nn.InstanceNorm2d(4 * width, affine=True),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(4 * width, 1, 3, 1, 1),
        )

    def forward(self, l: Tensor, ab: Tensor) -> Tensor:
        return self.body(torch.cat(((l - 50) / 100, ab / AB_NORM), dim=1))


def soft_targets(ab: Tensor, centres: Tensor, sigma: float = 8.0) -> Tensor:
    """Gaussian soft-encoding of ab (N, 2, h, w) over bin centres (Q, 2): (N, Q, h, w) summing to one."""
    d2 = ((ab.unsqueeze(1) - centres.view(1, -1, 2, 1, 1)) ** 2).sum(dim=2)
    return torch.softmax(-d2 / (2 * sigma**2), dim=1)


# ---------------------------------------------------------------------------------------------- trainer


@dataclass
class StepResult:
    loss: float
    parts: dict[str, float]


class Trainer:
    """One training run: model, optimiser, optional critic, data and schedule."""

    def __init__(
        self,
        config: TrainConfig,
        train_bank: ImageBank,
        val_bank: ImageBank | None,
        device: torch.device,
        net: nn.Module | None = None,
    ) -> None:
        self.config = config
        self.device = device
        torch.manual_seed(config.seed)
        self.net = (net if net is not None else build_net(config.arch, config.width)).to(device)
        self.opt = torch.optim.AdamW(self.net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.critic: PatchCritic | None = None
        self.critic_opt: torch.optim.Optimizer | None = None
        if config.gan:
            self.critic = PatchCritic().to(device)
            self.critic_opt = torch.optim.Adam(
                self.critic.parameters(), lr=config.lr * 0.5, betas=(0.5, 0.999)
            )
        self.amp = device.type == "cuda"
        self.amp_dtype = torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp and self.amp_dtype == torch.float16)
        self.train_bank = train_bank
        self.val_bank = val_bank
        self.step = 0
        self.history: list[dict[str, float]] = []
        self.bin_weights: Tensor | None = None
        if config.rebalance > 0 and hasattr(self.net, "centres"):
            self.bin_weights = self.class_weights(config.rebalance).to(device)

    def class_weights(self, lam: float, batches: int = 32) -> Tensor:
        """Per-bin CE weights (Zhang et al. 2016, eq. 4): ((1 - lam) * prior + lam / Q)^-1, normalised so the
        prior-weighted mean is one. The prior is the Gaussian-smoothed bin histogram of ``batches`` batches
        drawn with their own seeds (independent of the training batches)."""
        centres: Tensor = self.net.centres.float().cpu()  # type: ignore[assignment]
        hist = torch.zeros(centres.shape[0])
        for k in range(batches):
            rng = np.random.default_rng([self.config.seed, 1_000_000 + k])
            ab = rgb_to_lab(self.train_bank.sample(rng, self.config.batch))[:, 1:]
            ab = F.avg_pool2d(ab, 4).permute(0, 2, 3, 1).reshape(-1, 2)
            nearest = torch.cdist(ab, centres).argmin(dim=1)
            hist += torch.bincount(nearest, minlength=centres.shape[0]).float()
        prior = hist / hist.sum()
        side = round(math.sqrt(centres.shape[0]))
        prior = _blur_grid(prior.view(1, 1, side, side), 1.0).flatten()
        prior = prior / prior.sum()
        weights = 1.0 / ((1 - lam) * prior + lam / centres.shape[0])
        return weights / (prior * weights).sum()

    # schedule ------------------------------------------------------------------------------------
    def lr_at(self, step: int) -> float:
        """Linear warm-up over 2% of the steps, then cosine decay to 5%."""
        total = max(1, self.config.steps)
        warm = max(1, total // 50)
        if step < warm:
            return self.config.lr * (step + 1) / warm
        t = (step - warm) / max(1, total - warm)
        return self.config.lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, t))))

    def gan_phase(self, step: int) -> str:
        """'generator' (alone), 'critic' (alone) or 'both'."""
        if self.critic is None:
            return "generator"
        start = self.config.gan_start or self.config.steps // 2
        warm = self.config.critic_warmup or max(1, self.config.steps // 10)
        if step < start:
            return "generator"
        return "critic" if step < start + warm else "both"

    # one step ------------------------------------------------------------------------------------
    def batch_at(self, step: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(L, ab_hint, mask, ab target) of ``step``, a pure function of (seed, step)."""
        rng = np.random.default_rng([self.config.seed, step])
        rgb = self.train_bank.sample(rng, self.config.batch)
        lab = rgb_to_lab(rgb)
        l, ab = lab[:, :1], lab[:, 1:]
        if self.config.hints:
            hint, mask = sample_hints(ab, rng, self.config.hint_free_fraction)
        else:
            hint, mask = torch.zeros_like(ab), torch.zeros_like(l)
        return tuple(t.to(self.device) for t in (l, hint, mask, ab))  # type: ignore[return-value]

    def generator_loss(
        self, l: Tensor, hint: Tensor, mask: Tensor, ab: Tensor
    ) -> tuple[Tensor, Tensor, dict]:
        net: Any = self.net
        parts: dict[str, Tensor] = {}
        if hasattr(net, "logits") and hasattr(net, "decode"):
            logits = net.logits(l, hint, mask).float()
            size = logits.shape[2:]
            target = F.adaptive_avg_pool2d(ab, size)
            soft = soft_targets(target, net.centres.float())
            ce = -(soft * torch.log_softmax(logits, dim=1)).sum(dim=1)
            if self.bin_weights is not None:
                ce = ce * self.bin_weights[soft.argmax(dim=1)]
            parts["ce"] = ce.mean()
            pred = net.decode(logits, temperature=1.0)
        else:
            pred = net(l, hint, mask).float()
            target = F.adaptive_avg_pool2d(ab, pred.shape[2:]) if pred.shape[2:] != ab.shape[2:] else ab
        parts["huber"] = self.config.huber_weight * F.smooth_l1_loss(
            pred / AB_NORM, target / AB_NORM, beta=0.1
        )
        return pred, target, parts

    def train_step(self) -> StepResult:
        step = self.step
        self.net.train()
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(step)
        l, hint, mask, ab = self.batch_at(step)
        phase = self.gan_phase(step)
        grad_ctx = torch.no_grad() if phase == "critic" else torch.enable_grad()
        with grad_ctx, torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
            pred, target, parts = self.generator_loss(l, hint, mask, ab)
            l_small = F.adaptive_avg_pool2d(l, (pred.shape[2], pred.shape[3]))
            if phase == "both" and self.critic is not None:
                fake_score = self.critic(l_small, pred)
                parts["adv"] = self.config.gan_weight * F.binary_cross_entropy_with_logits(
                    fake_score.float(), torch.ones_like(fake_score, dtype=torch.float32)
                )
        loss = sum(parts.values(), torch.zeros((), device=self.device))
        if phase != "critic":
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
        if phase != "generator" and self.critic is not None and self.critic_opt is not None:
            with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
                real = self.critic(l_small, target)
                fake = self.critic(l_small, pred.detach())
                d_loss = F.binary_cross_entropy_with_logits(
                    real.float(), torch.ones_like(real, dtype=torch.float32)
                ) + F.binary_cross_entropy_with_logits(
                    fake.float(), torch.zeros_like(fake, dtype=torch.float32)
                )
            self.critic_opt.zero_grad(set_to_none=True)
            self.scaler.scale(d_loss).backward()
            self.scaler.step(self.critic_opt)
            parts["critic"] = d_loss.detach()
        self.scaler.update()
        self.step += 1
        values = {k: float(v.detach()) for k, v in parts.items()}
        return StepResult(float(loss.detach()), values)

    # validation ----------------------------------------------------------------------------------
    def validate(self, temperature: float | None = None, hint_points: int = 5) -> dict[str, float]:
        """On the validation crops: PSNR (8-bit sRGB) of the prediction without hints, of the gray baseline
        (ab = 0) and with ``hint_points`` ground-truth hints (seeded), and colourfulness of prediction and truth."""
        if self.val_bank is None:
            return {}
        self.net.eval()
        net: Any = self.net
        rgb = self.val_bank.centre_crops()
        scores: dict[str, list[float]] = {
            "psnr": [],
            "psnr_gray": [],
            "psnr_hints": [],
            "cf": [],
            "cf_gt": [],
        }
        rng = np.random.default_rng(0)

        def predict(l: Tensor, hint: Tensor, mask: Tensor) -> Tensor:
            if temperature is not None and hasattr(net, "decode"):
                ab = net.decode(net.logits(l, hint, mask), temperature=temperature)
            else:
                ab = net(l, hint, mask)
            ab = F.interpolate(ab.float(), size=l.shape[2:], mode="bilinear", align_corners=False)
            return lab_to_rgb(torch.cat((l, ab), dim=1))

        def to8(x: Tensor) -> np.ndarray:
            return (x.clamp(0, 1) * 255).round().permute(1, 2, 0).cpu().numpy()

        with torch.no_grad():
            for start in range(0, rgb.shape[0], 16):
                chunk = rgb[start : start + 16].to(self.device)
                lab = rgb_to_lab(chunk)
                l, zeros = lab[:, :1], torch.zeros_like(lab[:, 1:])
                auto = predict(l, zeros, torch.zeros_like(l))
                gray = lab_to_rgb(torch.cat((l, zeros), dim=1))
                hint, mask = points_hints(lab[:, 1:], hint_points, rng)
                hinted = predict(l, hint, mask)
                for i, g in enumerate(chunk):
                    g8 = to8(g)
                    scores["psnr"].append(_psnr(to8(auto[i]), g8))
                    scores["psnr_gray"].append(_psnr(to8(gray[i]), g8))
                    scores["psnr_hints"].append(_psnr(to8(hinted[i]), g8))
                    scores["cf"].append(_colourfulness(to8(auto[i])))
                    scores["cf_gt"].append(_colourfulness(g8))
        self.net.train()
        mean = {k: float(np.mean(v)) for k, v in scores.items()}
        return {
            "psnr": mean["psnr"],
            "psnr_gray": mean["psnr_gray"],
            f"psnr_{hint_points}hints": mean["psnr_hints"],
            "colourfulness": mean["cf"],
            "colourfulness_gt": mean["cf_gt"],
            "colourfulness_ratio": mean["cf"] / mean["cf_gt"] if mean["cf_gt"] > 0 else 0.0,
        }

    # checkpoints ---------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "format": "chromaflow-train-1",
            "config": asdict(self.config),
            "step": self.step,
            "model": self.net.state_dict(),
            "optimizer": self.opt.state_dict(),
            "critic": self.critic.state_dict() if self.critic is not None else None,
            "critic_optimizer": self.critic_opt.state_dict() if self.critic_opt is not None else None,
            "scaler": self.scaler.state_dict(),
            "history": self.history,
        }

    def save_checkpoint(self, path: Path) -> None:
        atomic_save(self.state(), path)

    def load_checkpoint(self, path: Path) -> None:
        ckpt = load_checkpoint(path)
        if ckpt["config"]["arch"] != self.config.arch:
            raise UsageError(
                f"checkpoint {path} is for --arch {ckpt['config']['arch']}, not {self.config.arch}; "
                "use the same --arch to resume"
            )
        self.net.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])
        if self.critic is not None and ckpt.get("critic") is not None and self.critic_opt is not None:
            self.critic.load_state_dict(ckpt["critic"])
            self.critic_opt.load_state_dict(ckpt["critic_optimizer"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.step = int(ckpt["step"])
        self.history = list(ckpt.get("history", []))

    # loop ----------------------------------------------------------------------------------------
    def run(
        self,
        checkpoint: Path | None = None,
        progress: bool = True,
        on_validate: Callable[[int, dict[str, float]], None] | None = None,
        until: int | None = None,
    ) -> list[dict[str, float]]:
        """Train up to ``config.steps`` (or stop early at step ``until``, as an interrupted run would);
        checkpoints and validates on schedule. Returns the per-step log."""
        from tqdm import tqdm

        cfg = self.config
        bar = tqdm(
            total=cfg.steps,
            initial=self.step,
            file=sys.stderr,
            disable=not progress,
            unit="step",
            dynamic_ncols=True,
        )
        started = time.monotonic()
        last = cfg.steps if until is None else min(until, cfg.steps)
        while self.step < last:
            result = self.train_step()
            entry = {"step": float(self.step), "loss": result.loss, **result.parts}
            self.history.append(entry)
            bar.update(1)
            bar.set_postfix(loss=f"{result.loss:.4f}", phase=self.gan_phase(self.step - 1), refresh=False)
            if cfg.val_every and self.step % cfg.val_every == 0 and self.val_bank is not None:
                metrics = self.validate()
                entry.update({f"val_{k}": v for k, v in metrics.items()})
                bar.write(
                    f"step {self.step}: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()),
                    file=sys.stderr,
                )
                if on_validate is not None:
                    on_validate(self.step, metrics)
            if checkpoint is not None and cfg.checkpoint_every and self.step % cfg.checkpoint_every == 0:
                self.save_checkpoint(checkpoint)
        bar.close()
        if checkpoint is not None:
            self.save_checkpoint(checkpoint)
        log.info("trained %d steps in %.0f s", cfg.steps, time.monotonic() - started)
        return self.history


# ---------------------------------------------------------------------------------------------- helpers


def _psnr(a: np.ndarray, b: np.ndarray) -> float:
    try:
        from chromaflow.core.metrics import psnr
    except ImportError:
        err = float(np.mean((a.astype(np.float64) - b) ** 2))
        return float("inf") if err == 0 else 10 * math.log10(255.0**2 / err)
    return psnr(a, b)


def _colourfulness(rgb: np.ndarray) -> float:
    try:
        from chromaflow.core.metrics import colorfulness
    except ImportError:
        r, g, b = (rgb[..., i].astype(np.float64) for i in range(3))
        rg, yb = r - g, 0.5 * (r + g) - b
        return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))
    return colorfulness(rgb)


def _blur_grid(grid: Tensor, sigma: float) -> Tensor:
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=grid.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, 1, -1)
    grid = F.conv2d(F.pad(grid, (radius, radius, 0, 0), mode="replicate"), k)
    return F.conv2d(F.pad(grid, (0, 0, radius, radius), mode="replicate"), k.transpose(2, 3))


def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary name in the same folder, then rename (no half-written files)."""
    path = Path(path)
    if not path.parent.is_dir():
        raise OutputError(f"folder {path.parent} does not exist; create it first or choose another --out")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        torch.save(obj, tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def load_checkpoint(path: Path) -> dict[str, Any]:
    """A training checkpoint (safe loading: tensors and plain containers only)."""
    if not Path(path).is_file():
        raise InputError(f"checkpoint {path} does not exist; check the --resume path")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise InputError(f"cannot read checkpoint {path}: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != "chromaflow-train-1":
        raise InputError(f"{path} is not a chromaflow training checkpoint")
    return ckpt


def export_weights(net: nn.Module, path: Path, half: bool = True) -> None:
    """Save a plain state_dict (fp16 floats when ``half``) loadable with ``torch.load(weights_only=True)``."""
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in net.state_dict().items()
    }
    atomic_save(state, path)


def prepare(
    data: Path,
    config: TrainConfig,
    device: torch.device,
    val: Path | None = None,
    init: str | None = None,
) -> Trainer:
    """Build a Trainer from a data folder (and optional validation folder or registered model to start from)."""
    files = list_images(data)
    if val is not None:
        train_files, val_files = files, list_images(val)
    else:
        train_files, val_files = split_files(files, data, config.val_fraction)
    log.info("%d training and %d validation images", len(train_files), len(val_files))
    train_bank = ImageBank.from_files(train_files, config.size, config.max_side)
    val_bank = ImageBank.from_files(val_files, config.size, config.max_side) if val_files else None
    net = None
    if init:
        arch, net = init_from_registry(init, config.arch)
        if arch != config.arch:
            raise UsageError(f"--init {init} is a {arch} model; pass --arch {arch}")
        config.init = init
    return Trainer(config, train_bank, val_bank, device, net)
