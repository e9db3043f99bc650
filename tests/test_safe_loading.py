"""Weights are loaded with torch.load(weights_only=True): pickled code never runs."""

import os
from pathlib import Path

import pytest
import torch

from chromaflow.core.colorizer import load_net
from chromaflow.core.errors import ModelError
from chromaflow.core.nets.zhang import SIGGRAPH17
from chromaflow.core.weights_io import checkpoint_info, load_state_dict


class _Payload:
    """Unpickling this object would call os.system and create a marker file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_pickle_with_code_payload_is_refused(tmp_path: Path):
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model1.0.weight": torch.zeros(1), "x": _Payload(marker)}, evil)
    with pytest.raises(ModelError, match="refused to load") as err:
        load_state_dict(evil)
    assert "weights_only=False" not in str(err.value)
    with pytest.raises(ModelError, match="refused"):
        load_net(evil, arch="siggraph17")
    assert not marker.exists()


def test_plain_and_nested_state_dicts_load(tmp_path: Path):
    state = SIGGRAPH17(width=2).state_dict()
    plain, nested = tmp_path / "plain.pt", tmp_path / "nested.pt"
    torch.save(state, plain)
    torch.save({"arch": "siggraph17", "steps": 10, "state_dict": state}, nested)
    assert load_state_dict(plain).keys() == state.keys()
    assert load_state_dict(nested).keys() == state.keys()
    assert checkpoint_info(nested) == {"arch": "siggraph17", "steps": 10}
    assert load_net(nested).model1[0].out_channels == 2


def test_not_a_state_dict_or_garbage_is_a_model_error(tmp_path: Path):
    lst = tmp_path / "list.pt"
    torch.save([torch.zeros(1)], lst)
    with pytest.raises(ModelError, match="does not hold a state_dict"):
        load_state_dict(lst)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a torch file at all")
    with pytest.raises(ModelError):
        load_state_dict(junk)
    with pytest.raises(ModelError, match="does not exist"):
        load_state_dict(tmp_path / "absent.pt")
