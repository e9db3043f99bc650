"""Checkpoints and exported weights, written atomically and read back safely (tensors and plain containers only)."""

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from chromaflow.core.errors import InputError, OutputError
from chromaflow.core.weights_io import load_tensors

CHECKPOINT_FORMAT = "chromaflow-train-1"


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
        ckpt = load_tensors(path)  # sizes checked first, then torch.load(weights_only=True)
    except Exception as err:
        raise InputError(f"cannot read checkpoint {path}: {err}") from err
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise InputError(f"{path} is not a chromaflow training checkpoint")
    return ckpt


def export_weights(net: nn.Module, path: Path, half: bool = True) -> None:
    """Save a plain state_dict (fp16 floats when ``half``) loadable with ``torch.load(weights_only=True)``."""
    state = {
        k: (v.half() if half and v.is_floating_point() else v).detach().cpu().contiguous()
        for k, v in net.state_dict().items()
    }
    atomic_save(state, path)
