"""``base``: chromaflow's own small colorizer (about 1.8 M parameters at the default width 24), trained by :mod:`chromaflow.core.training`.

Protocol (shared by every colour net of the project): ``forward(l, ab_hint, mask)`` with ``l`` the CIE L* plane
(N, 1, S, S) in [0, 100], ``ab_hint`` (N, 2, S, S) in ab units, ``mask`` (N, 1, S, S) in {0, 1}; it returns ab
(N, 2, S/4, S/4) in ab units, which the Colorizer upsamples and joins with the full-resolution luma.

Design:
- A light U-Net: strided 3x3 convolutions down to S/16, residual dilated blocks there, a global-context vector
  (mean-pooled features through a small MLP, added back everywhere) for the image-wide colour cast, and a decoder
  with skip connections back to S/4.
- Hints enter twice: as input channels (SIGGRAPH17-style L, ab, mask), and as parameter-free normalised
  convolutions at S/4 (Gaussian-blurred ``ab * mask`` divided by blurred ``mask`` at two widths, plus the mean of
  all hints) so the decoder sees a ready-made propagation of the user's colours. At inference the remaining
  difference between hints and prediction is spread by a cross-bilateral (space + lightness) interpolation
  (:func:`propagate_hint_residual`), so the output honours the hints.
- The head classifies each pixel over a 16 x 16 grid of ab bins (Zhang et al. 2016 showed that regression alone
  gives washed-out colour); the output is the annealed mean of that distribution (temperature ``temperature``,
  chosen on a held-out split), which keeps colours saturated where the net is confident.
- Normalisation inside, as Zhang: L' = (L - 50) / 100, ab' = ab / 110.
"""

import math
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from chromaflow.core.errors import ModelError
from chromaflow.core.weights_io import load_state_dict

AB_NORM = 110.0
L_CENTRE = 50.0
L_NORM = 100.0
GRID = 16
GRID_STEP = 16.0


def ab_bin_centres() -> Tensor:
    """The (GRID*GRID, 2) ab centres of the classification bins, in ab units (-120 .. 120, step 16)."""
    axis = (torch.arange(GRID, dtype=torch.float32) - (GRID - 1) / 2) * GRID_STEP
    a, b = torch.meshgrid(axis, axis, indexing="ij")
    return torch.stack((a.flatten(), b.flatten()), dim=1)


def annealed_mean(logits: Tensor, centres: Tensor, temperature: float) -> Tensor:
    """The annealed mean of the bin distribution: (N, 2, h, w) ab from (N, Q, h, w) logits and (Q, 2) centres.

    Without autograd it works one image at a time, overwriting its scaled logits by their softmax: the whole-batch
    version makes three batch-sized (N, Q, h, w) temporaries (tens of MB at batch 8, fresh pages every batch,
    whose zeroing cost the CPU pipeline more than the softmax itself). Same maths, equal to float32 rounding.
    """
    if torch.is_grad_enabled() and logits.requires_grad:
        probs = torch.softmax(logits.float() / temperature, dim=1)
        return torch.einsum("nqhw,qc->nchw", probs, centres.to(probs.dtype)).to(logits.dtype)
    n, q, h, w = logits.shape
    weights = centres.t().float()
    out = torch.empty((n, 2, h * w), dtype=torch.float32, device=logits.device)
    for i in range(n):
        scaled = logits[i].reshape(q, h * w).float() / temperature
        torch.matmul(weights, torch.softmax(scaled, dim=0, out=scaled), out=out[i])
    return out.reshape(n, 2, h, w).to(logits.dtype)


def _conv(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=dilation, dilation=dilation, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class _Residual(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv(channels, channels, dilation=dilation),
            nn.Conv2d(channels, channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(x + self.body(x))


def _gaussian_blur(x: Tensor, sigma: float) -> Tensor:
    """Separable Gaussian blur with zero padding (normalised convolution divides the zeros out)."""
    radius = max(1, math.ceil(2.5 * sigma))
    t = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    k = torch.exp(-(t**2) / (2 * sigma**2))
    k = k / k.sum()
    c = x.shape[1]
    x = F.conv2d(x, k.view(1, 1, 1, -1).expand(c, 1, 1, -1), padding=(0, radius), groups=c)
    return F.conv2d(x, k.view(1, 1, -1, 1).expand(c, 1, -1, 1), padding=(radius, 0), groups=c)


def hint_features(ab_hint: Tensor, mask: Tensor, size: tuple[int, int]) -> Tensor:
    """Propagated hint colours at ``size``: for two blur widths and the whole image, (a, b, confidence).

    Returns (N, 9, h, w): normalised ab (ab' units) and a confidence in [0, 1) per scale.
    """
    m = F.adaptive_avg_pool2d(mask, size)
    abm = F.adaptive_avg_pool2d(ab_hint * mask, size) / AB_NORM
    feats = []
    for sigma in (2.0, 8.0):
        bm = _gaussian_blur(m, sigma)
        bab = _gaussian_blur(abm, sigma)
        feats += [bab / (bm + 1e-4), 1 - torch.exp(-bm * 50)]
    total = m.sum(dim=(2, 3), keepdim=True)
    mean_ab = abm.sum(dim=(2, 3), keepdim=True) / (total + 1e-4)
    feats += [mean_ab.expand(-1, -1, *size), (1 - torch.exp(-total)).expand(-1, -1, *size)]
    return torch.cat(feats, dim=1)


def propagate_hint_residual(
    pred: Tensor,
    l_small: Tensor,
    ab_hint: Tensor,
    mask: Tensor,
    spatial_sigma: float = 0.5,
    lightness_sigma: float = 10.0,
    gain: float = 10.0,
    max_points: int = 1024,
) -> Tensor:
    """Pull the prediction towards the hints: the residual (hint - prediction) at hint pixels is spread with
    joint spatial / lightness Gaussian weights (a cross-bilateral interpolation) and added where the weights are
    strong. Parameter-free; all at the prediction's resolution.

    ``pred`` (N, 2, h, w) ab; ``l_small`` (N, 1, h, w) L*; ``ab_hint``/``mask`` at the input resolution.
    ``spatial_sigma`` is a fraction of the longer side of the prediction.
    """
    if not bool(mask.any()):
        return pred
    n, _, h, w = pred.shape
    m = F.adaptive_avg_pool2d(mask.float(), (h, w))
    abm = F.adaptive_avg_pool2d((ab_hint * mask).float(), (h, w))
    guide = l_small.float()
    while int((m > 0).sum(dim=(1, 2, 3)).max()) > max_points:  # dense hints: coarser hint grid
        m, abm, guide = F.avg_pool2d(m, 2), F.avg_pool2d(abm, 2), F.avg_pool2d(guide, 2)
    scale = h / m.shape[2]
    sigma = spatial_sigma * max(h, w)
    ys = torch.arange(h, device=pred.device, dtype=torch.float32)
    xs = torch.arange(w, device=pred.device, dtype=torch.float32)
    pred_f = pred.float()
    coarse_pred = F.adaptive_avg_pool2d(pred_f, (m.shape[2], m.shape[3])) if m.shape[2] != h else pred_f
    out = []
    for i in range(n):
        idx = (m[i, 0] > 0).nonzero()
        if len(idx) == 0:
            out.append(pred_f[i])
            continue
        mj = m[i, 0][idx[:, 0], idx[:, 1]]
        rj = abm[i][:, idx[:, 0], idx[:, 1]] / mj - coarse_pred[i][:, idx[:, 0], idx[:, 1]]
        lj = guide[i, 0][idx[:, 0], idx[:, 1]]
        cy, cx = (idx[:, 0].float() + 0.5) * scale - 0.5, (idx[:, 1].float() + 0.5) * scale - 0.5
        d2 = (ys[:, None, None] - cy) ** 2 + (xs[None, :, None] - cx) ** 2
        dl2 = (l_small[i, 0].float()[..., None] - lj) ** 2
        wgt = torch.exp(-d2 / (2 * sigma**2) - dl2 / (2 * lightness_sigma**2)) * mj
        total = wgt.sum(dim=-1)
        corr = torch.einsum("hwk,ck->chw", wgt, rj) / (total + 1e-6)
        out.append(pred_f[i] + corr * (1 - torch.exp(-gain * total)))
    return torch.stack(out).to(pred.dtype)


class BaseColorNet(nn.Module):
    """chromaflow's built-in colorizer: a small hint-aware U-Net with an ab-bin classification head."""

    accepts_hints = True
    output_stride = 4
    centres: Tensor  # the (GRID*GRID, 2) bin centres, a buffer that follows the net's device

    def __init__(self, width: int = 24, temperature: float = 0.4) -> None:
        super().__init__()
        w = width
        self.temperature = temperature
        self.refine_hints = True  # see propagate_hint_residual
        self.enc1 = _conv(4, w // 2)  # S
        self.enc2 = nn.Sequential(_conv(w // 2, w, 2), _conv(w, w))  # S/2
        self.enc3 = nn.Sequential(_conv(w, 2 * w, 2), _conv(2 * w, 2 * w))  # S/4
        self.enc4 = nn.Sequential(_conv(2 * w, 4 * w, 2), _conv(4 * w, 4 * w))  # S/8
        self.enc5 = nn.Sequential(
            _conv(4 * w, 6 * w, 2), _Residual(6 * w, 2), _Residual(6 * w, 4), _Residual(6 * w, 1)
        )  # S/16
        self.context = nn.Sequential(nn.Linear(6 * w, 6 * w), nn.ReLU(inplace=True), nn.Linear(6 * w, 6 * w))
        self.dec4 = _conv(6 * w + 4 * w, 4 * w)
        self.dec3 = nn.Sequential(_conv(4 * w + 2 * w + 9, 3 * w), _conv(3 * w, 3 * w))
        self.head = nn.Conv2d(3 * w, GRID * GRID, 1)
        self.register_buffer("centres", ab_bin_centres(), persistent=False)

    @property
    def bin_centres(self) -> Tensor:
        """The ab centres of the classification bins, (GRID*GRID, 2) in ab units, on the net's device."""
        return self.centres

    def logits(self, l: Tensor, ab_hint: Tensor, mask: Tensor) -> Tensor:
        """Per-pixel scores over the ab bins at S/4: (N, GRID*GRID, S/4, S/4)."""
        x = torch.cat(((l - L_CENTRE) / L_NORM, ab_hint * mask / AB_NORM, mask), dim=1)
        e1 = self.enc1(x)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        e4 = self.enc4(e3)
        e5 = self.enc5(e4)
        e5 = e5 + self.context(e5.mean(dim=(2, 3)))[:, :, None, None]
        d4 = self.dec4(torch.cat((F.interpolate(e5, size=e4.shape[2:], mode="bilinear"), e4), dim=1))
        size = (e3.shape[2], e3.shape[3])
        hints = hint_features(ab_hint.float(), mask.float(), size).to(e3.dtype)
        d3 = self.dec3(torch.cat((F.interpolate(d4, size=size, mode="bilinear"), e3, hints), dim=1))
        return self.head(d3)

    def decode(self, logits: Tensor, temperature: float | None = None) -> Tensor:
        """Annealed mean of the bin distribution, in ab units: (N, 2, h, w)."""
        return annealed_mean(logits, self.centres, self.temperature if temperature is None else temperature)

    def forward(self, l: Tensor, ab_hint: Tensor, mask: Tensor) -> Tensor:
        ab = self.decode(self.logits(l, ab_hint, mask))
        if self.refine_hints:
            l_small = F.adaptive_avg_pool2d(l, (ab.shape[2], ab.shape[3]))
            ab = propagate_hint_residual(ab, l_small, ab_hint, mask)
        return ab


DEFAULT_WIDTH = 24
# Optional scalar entry of a saved state_dict: the annealing temperature chosen on held-out data.
TEMPERATURE_KEY = "temperature"


def width_of(state_dict: Mapping[str, Tensor]) -> int:
    """The ``width`` a BaseColorNet state_dict was trained with."""
    return int(state_dict["enc1.0.weight"].shape[0]) * 2


def build_base(width: int = DEFAULT_WIDTH, state_dict: Mapping[str, Tensor] | None = None) -> BaseColorNet:
    """The ``base`` architecture (weights: ``core/weights/base.pt``); loads ``state_dict`` when given."""
    if state_dict is not None:
        state = {k: v.float() for k, v in state_dict.items()}
        temperature = state.pop(TEMPERATURE_KEY, None)
        net = BaseColorNet(width=width_of(state))
        net.load_state_dict(state)
        if temperature is not None:
            net.temperature = float(temperature)
        return net.eval()
    return BaseColorNet(width=width)


def load_base(path: str | Path) -> BaseColorNet:
    """The ``base`` net in eval mode from a state_dict file (tensors only, never unpickled code)."""
    state = load_state_dict(path)
    try:
        return build_base(state_dict=state)
    except (RuntimeError, KeyError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise ModelError(f"the weights do not fit the 'base' architecture: {reason}") from err
