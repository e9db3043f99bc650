"""Several classifiers of one kind run as one: each member sees the same batch of crops, on the same device.

The DFDC winners averaged the probabilities of their seven EfficientNets (per video, after each model's own
aggregation); the ensemble therefore returns every member's logit, ``(N, M)``, and leaves the averaging to the
scorer, which needs the members' scores apart for that video rule.
"""

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from chromaflow.core.errors import ModelError
from chromaflow.core.nets.face_input import FaceInput, face_input_of


class ClassifierEnsemble(nn.Module):
    """Members sharing one :class:`FaceInput`; ``forward`` gives ``(N, M)`` logits, one column per member."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        if not members:
            raise ModelError("an ensemble needs at least one classifier")
        inputs = {face_input_of(m) for m in members}
        if len(inputs) != 1:
            raise ModelError("the members of an ensemble must take the same face crops")
        self.members = nn.ModuleList(members)
        self.face_input: FaceInput = inputs.pop()

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat([m(x).reshape(x.shape[0], -1) for m in self.members], dim=1)
