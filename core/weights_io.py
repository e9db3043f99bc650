"""Safe loading of PyTorch weight files: tensors only, pickled code is never executed.

``torch.load(weights_only=True)`` restricts unpickling to tensors, containers and primitive values; anything else
(a class, a function call such as ``os.system``) is refused before it can run.
"""

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from chromaflow.core.errors import ModelError

# Keys under which training scripts commonly nest the state_dict inside a checkpoint dictionary.
_NESTED_KEYS = ("state_dict", "model")


def load_tensors(path: str | Path) -> Any:
    """Unpickle ``path`` with ``weights_only=True`` onto the CPU; anything beyond plain data is refused."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, AttributeError, TypeError) as err:
        if isinstance(err, pickle.UnpicklingError):
            # torch's own message suggests weights_only=False, which is exactly what must not be done.
            reason = "it holds pickled objects other than tensors"
        else:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelError(
            f"refused to load {path}: it is not a plain tensor file ({reason}). Weights are loaded with "
            "torch.load(weights_only=True), which never runs code stored in a pickle; obtain the file from "
            "its official source (chromaflow models download NAME)"
        ) from err


def load_state_dict(path: str | Path) -> dict[str, Tensor]:
    """A ``{name: tensor}`` state_dict from ``path`` (unwrapping ``{"state_dict": ...}`` checkpoints)."""
    data = load_tensors(path)
    if isinstance(data, Mapping):
        for key in _NESTED_KEYS:
            nested = data.get(key)
            if isinstance(nested, Mapping) and not isinstance(data.get("weight"), Tensor):
                data = nested
                break
    if not isinstance(data, Mapping) or not data:
        raise ModelError(f"{path} does not hold a state_dict (a non-empty mapping of names to tensors)")
    bad = [str(k) for k, v in data.items() if not isinstance(k, str) or not isinstance(v, Tensor)]
    if bad:
        raise ModelError(f"{path} is not a state_dict: entries {', '.join(bad[:3])} are not named tensors")
    return dict(data)


def checkpoint_info(path: str | Path) -> dict[str, Any]:
    """The non-tensor entries at the top level of a checkpoint (for example ``{"arch": "siggraph17"}``)."""
    data = load_tensors(path)
    if not isinstance(data, Mapping):
        return {}
    return {str(k): v for k, v in data.items() if isinstance(v, str | int | float | bool)}
