"""One training run: the net, its optimiser, an optional critic, the data and the schedule.

Every batch is drawn from a generator seeded with ``(seed, step)``, so a run is a pure function of its options and
device, and a run resumed from a checkpoint continues bit for bit as if it had never stopped (the checkpoint holds
the model, optimizer, critic and grad-scaler states and the step).
"""

import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chromaflow.core.colour import rgb_to_lab
from chromaflow.core.errors import UsageError
from chromaflow.core.nets.builders import builder_for
from chromaflow.core.nets.colour_net import BinnedColorNet
from chromaflow.core.training.checkpoints import CHECKPOINT_FORMAT, atomic_save, load_checkpoint
from chromaflow.core.training.config import TrainConfig
from chromaflow.core.training.data import ImageBank
from chromaflow.core.training.losses import AB_NORM, PatchCritic, bin_weights, soft_targets
from chromaflow.core.training.simulated_hints import sample_hints
from chromaflow.core.training.validation import validate

log = logging.getLogger(__name__)


def build_net(arch: str, width: int = 24) -> nn.Module:
    """A freshly initialised colour net of ``arch`` (``width`` applies where the architecture takes it as a
    training option: ``base``)."""
    builder = builder_for(arch, "colorizer")
    return builder.build(width if builder.width_option else None)


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
        if config.rebalance > 0 and isinstance(self.net, BinnedColorNet):
            self.bin_weights = self.class_weights(config.rebalance).to(device)

    def class_weights(self, lam: float, batches: int = 32) -> Tensor:
        """Per-bin CE weights of a binned net (:func:`~chromaflow.core.training.losses.bin_weights`)."""
        if not isinstance(self.net, BinnedColorNet):
            raise UsageError(f"--rebalance needs a net with colour bins (base), not {self.config.arch}")
        return bin_weights(
            self.net.bin_centres, self.train_bank, self.config.seed, self.config.batch, lam, batches
        )

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
        return l.to(self.device), hint.to(self.device), mask.to(self.device), ab.to(self.device)

    def generator_loss(
        self, l: Tensor, hint: Tensor, mask: Tensor, ab: Tensor
    ) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        """(prediction, its target, loss terms): Huber on ab for every net, plus cross-entropy against
        soft-encoded targets for a binned net (Zhang et al. 2016)."""
        net = self.net
        parts: dict[str, Tensor] = {}
        if isinstance(net, BinnedColorNet):
            logits = self.net_logits(l, hint, mask).float()
            target = F.adaptive_avg_pool2d(ab, (logits.shape[2], logits.shape[3]))
            soft = soft_targets(target, net.bin_centres.float())
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

    def net_logits(self, l: Tensor, hint: Tensor, mask: Tensor) -> Tensor:
        """A binned net's logits for the current batch (a subclass may use features it already holds)."""
        net: Any = self.net
        return net.logits(l, hint, mask)

    def set_lr(self, step: int) -> None:
        """The learning rate(s) of ``step`` (every parameter group follows :meth:`lr_at` here)."""
        for group in self.opt.param_groups:
            group["lr"] = self.lr_at(step)

    def train_step(self) -> StepResult:
        step = self.step
        self.net.train()
        self.set_lr(step)
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
        """Scores on the validation crops (:func:`~chromaflow.core.training.validation.validate`); empty without
        a validation set."""
        if self.val_bank is None:
            return {}
        self.net.eval()
        scores = validate(self.net, self.val_bank.centre_crops(), self.device, temperature, hint_points)
        self.net.train()
        return scores

    # checkpoints ---------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {
            "format": CHECKPOINT_FORMAT,
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
