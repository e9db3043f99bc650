"""Stand-ins for downloadable weights: the official files cannot be fetched in the test environment.

:func:`install_stand_in` writes a narrow, seeded random-weight net of a registry model's architecture into the
test's model cache (``$CHROMAFLOW_HOME``, a fresh folder per test) under the model's official file name, and lets
the registry accept it for the rest of the test (its entry's SHA-256 is cleared through ``monkeypatch``). Loading,
sizing and running then take the same code paths as with the real file.
"""

import dataclasses
from pathlib import Path

import pytest
import torch

from chromaflow.core import registry
from chromaflow.core.nets.zhang import SIGGRAPH17, build_zhang


def install_stand_in(monkeypatch: pytest.MonkeyPatch, name: str, width: int = 4, seed: int = 0) -> Path:
    """A random-weight file for Zhang model ``name`` (eccv16 or siggraph17) in the cache; its path.

    The output layer is scaled up so the stand-in's colours are far from gray, as a trained net's are.
    """
    spec = registry.get_spec(name)
    torch.manual_seed(seed)
    net = build_zhang(spec.arch, width=width)
    with torch.no_grad():
        if isinstance(net, SIGGRAPH17):
            net.model_out[0].weight.mul_(30)
        else:  # ECCV16 decodes a softmax over its ab bins: a random 1x1 decoder gives near-gray ab, scale it up
            net.model8[6].weight.mul_(30)
            net.model_out.weight.mul_(40)
    path = registry.models_dir() / spec.filename
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(net.state_dict(), path)
    monkeypatch.setitem(registry.MODELS, spec.name, dataclasses.replace(spec, sha256=None))
    return path
