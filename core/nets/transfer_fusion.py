"""TransferFusion: how much of the matching's colour replaces the flow chains', per pixel.

Keyframe transfer has two colour sources that fail differently: flow chains are sharp and stable where they hold
and lost where motion is fast or content comes back; non-local matching re-finds content anywhere within its radius
but is coarse and can pick a look-alike. The fusion sees neither colour, only how far each source can be trusted and
how much they disagree (the cues of :func:`chromaflow.core.transfer.fusion.fusion_inputs`), at each pixel and as
means over a 9x9 window around it: reliability cues carry over from the training footage to other footage far
better than colours and textures do. It is a logistic model of those 14 planes (15 parameters); a hidden layer did
not give a clear gain on held-out sequences for 20 times the parameters (model card). Its
weight ``alpha`` for the matching is gated by the chains' doubt (1 - their confidence), so confident chain colour
is kept.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

IN_CHANNELS = 7
CHAIN_CONF = 0  # the input channel of the chains' confidence
CONTEXT = 9  # window (pixels) of the cues' local means


class TransferFusion(nn.Module):
    """A 1x1 convolution over the cues and their local means, a sigmoid, the chains' doubt as a gate."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Conv2d(2 * IN_CHANNELS, 1, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``alpha (N, 1, h, w)`` in [0, 1] for cues ``x (N, 7, h, w)``."""
        context = F.avg_pool2d(x, CONTEXT, 1, CONTEXT // 2, count_include_pad=False)
        doubt = 1.0 - x[:, CHAIN_CONF : CHAIN_CONF + 1].clamp(0.0, 1.0)
        return torch.sigmoid(self.linear(torch.cat((x, context), dim=1))) * doubt


def parameter_count(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())
