"""Validation of a colour net on held-out crops: PSNR with and without hints against the gray baseline, and
colourfulness against the ground truth's."""

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chromaflow.core.colour import lab_to_rgb, rgb_to_lab
from chromaflow.core.metrics import colorfulness, psnr
from chromaflow.core.nets.colour_net import BinnedColorNet
from chromaflow.core.training.simulated_hints import points_hints


def validate(
    net: nn.Module, rgb: Tensor, device: torch.device, temperature: float | None = None, hint_points: int = 5
) -> dict[str, float]:
    """Scores of ``net`` (in eval mode) on sRGB crops ``rgb`` (N, 3, S, S): PSNR (8-bit sRGB) of the prediction
    without hints, of the gray baseline (ab = 0) and with ``hint_points`` ground-truth hints (seeded), and
    colourfulness of prediction and truth. ``temperature`` decodes a binned net at that temperature."""
    scores: dict[str, list[float]] = {"psnr": [], "psnr_gray": [], "psnr_hints": [], "cf": [], "cf_gt": []}
    rng = np.random.default_rng(0)

    def predict(l: Tensor, hint: Tensor, mask: Tensor) -> Tensor:
        # the net's own forward at that temperature, so hints get the refinement users get (base's
        # propagate_hint_residual), not just the decoded logits
        saved = getattr(net, "temperature", None)
        if temperature is not None and isinstance(net, BinnedColorNet):
            setattr(net, "temperature", temperature)  # noqa: B010 (nn.Module's typing hides the attribute)
        try:
            ab = net(l, hint, mask)
        finally:
            if saved is not None:
                setattr(net, "temperature", saved)  # noqa: B010
        ab = F.interpolate(ab.float(), size=l.shape[2:], mode="bilinear", align_corners=False)
        return lab_to_rgb(torch.cat((l, ab), dim=1))

    with torch.no_grad():
        for start in range(0, rgb.shape[0], 16):
            chunk = rgb[start : start + 16].to(device)
            lab = rgb_to_lab(chunk)
            l, zeros = lab[:, :1], torch.zeros_like(lab[:, 1:])
            auto = predict(l, zeros, torch.zeros_like(l))
            gray = lab_to_rgb(torch.cat((l, zeros), dim=1))
            hint, mask = points_hints(lab[:, 1:], hint_points, rng)
            hinted = predict(l, hint, mask)
            for i, g in enumerate(chunk):
                g8 = _to8(g)
                scores["psnr"].append(psnr(_to8(auto[i]), g8))
                scores["psnr_gray"].append(psnr(_to8(gray[i]), g8))
                scores["psnr_hints"].append(psnr(_to8(hinted[i]), g8))
                scores["cf"].append(colorfulness(_to8(auto[i])))
                scores["cf_gt"].append(colorfulness(g8))
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    return {
        "psnr": mean["psnr"],
        "psnr_gray": mean["psnr_gray"],
        f"psnr_{hint_points}hints": mean["psnr_hints"],
        "colourfulness": mean["cf"],
        "colourfulness_gt": mean["cf_gt"],
        "colourfulness_ratio": mean["cf"] / mean["cf_gt"] if mean["cf_gt"] > 0 else 0.0,
    }


def _to8(x: Tensor) -> np.ndarray:
    return (x.clamp(0, 1) * 255).round().permute(1, 2, 0).cpu().numpy()
