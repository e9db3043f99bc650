"""Weights are loaded with torch.load(weights_only=True): pickled code never runs."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from chromaflow.core import registry
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


# --------------------------------------------------------------------------- sizes checked before allocating

_CRAFT = '''
import collections, io, pickle, zipfile
import torch


def craft(path, numel, entry_bytes=None, deflate=True):
    """A torch zip archive whose one float32 storage declares ``numel`` elements; its entry holds
    ``entry_bytes`` zero bytes (default: all of them), deflated or stored."""
    class Ref:
        pass

    ref = Ref()

    class Tensor:
        def __reduce__(self):
            args = (ref, 0, (numel,), (1,), False, collections.OrderedDict())
            return (torch._utils._rebuild_tensor_v2, args)

    class Pickler(pickle.Pickler):
        def persistent_id(self, obj):
            return ("storage", torch.FloatStorage, "0", "cpu", numel) if obj is ref else None

    structure = io.BytesIO()
    Pickler(structure, protocol=2).dump({"w": Tensor()})
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("bomb/data.pkl", structure.getvalue())
        archive.writestr("bomb/byteorder", "little")
        info = zipfile.ZipInfo("bomb/data/0")
        info.compress_type = zipfile.ZIP_DEFLATED if deflate else zipfile.ZIP_STORED
        left = numel * 4 if entry_bytes is None else entry_bytes
        with archive.open(info, "w", force_zip64=True) as entry:
            while left:
                step = min(left, 1 << 20)
                entry.write(bytes(step))
                left -= step
        archive.writestr("bomb/version", "3\\n")
'''


def test_compressed_storage_bomb_is_refused_before_allocating(tmp_path: Path):
    """A ~130 KB file whose deflated storage expands to 128 MiB: refused with peak memory barely moving (measured
    in a child process, whose peak RSS is its own)."""
    code = (
        _CRAFT
        + f"""
import json, resource
from chromaflow.core.weights_io import load_state_dict
craft({str(tmp_path / "bomb.pt")!r}, 32 << 20)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
try:
    load_state_dict({str(tmp_path / "bomb.pt")!r})
    outcome = "loaded"
except Exception as err:
    outcome = type(err).__name__ + ": " + str(err)
grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
print(json.dumps({{"outcome": outcome, "grown_mib": grown}}))
"""
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert (tmp_path / "bomb.pt").stat().st_size < 1 << 20
    assert result["outcome"].startswith("ModelError") and "expand" in result["outcome"], result
    assert result["grown_mib"] < 32, f"the loader allocated {result['grown_mib']:.0f} MiB before refusing"


def _craft(path: Path, numel: int, entry_bytes: int | None = None, deflate: bool = True) -> None:
    namespace: dict[str, object] = {}
    exec(_CRAFT, namespace)  # the same crafting code the child process runs
    namespace["craft"](str(path), numel, entry_bytes, deflate)  # type: ignore[operator]


def test_storage_declared_larger_than_its_entry_is_refused(tmp_path: Path):
    lie = tmp_path / "lie.pt"
    _craft(lie, numel=1 << 28, entry_bytes=64, deflate=False)  # 1 GiB declared, 64 bytes present
    with pytest.raises(ModelError, match="declared as 268435456 elements"):
        load_state_dict(lie)


def test_tensor_shapes_are_checked_against_the_architecture(tmp_path: Path):
    state = SIGGRAPH17(width=2).state_dict()
    state["model1.0.bias"] = torch.zeros(4096)  # the architecture at width 2 has 2 biases there
    odd = tmp_path / "odd.pt"
    torch.save(state, odd)
    with pytest.raises(ModelError, match="siggraph17 architecture"):
        load_state_dict(odd)
    legacy = tmp_path / "legacy.pt"
    torch.save(SIGGRAPH17(width=2).state_dict(), legacy, _use_new_zipfile_serialization=False)
    assert load_state_dict(legacy).keys() == SIGGRAPH17(width=2).state_dict().keys(), (
        "pre-zip files still load"
    )


def test_zhang_models_are_pinned_by_full_digests():
    """The 8-hex-digit prefix in the file names is 32 bits: the registry pins the full SHA-256."""
    for name in ("eccv16", "siggraph17"):
        spec = registry.get_spec(name)
        assert spec.sha256 is not None and len(spec.sha256) == 64
        assert spec.sha256.startswith(spec.filename.rsplit("-", 1)[1].split(".")[0])
        assert not spec.matches(spec.sha256[:8] + "0" * 56), "a file sharing only the prefix is refused"
    for name in registry.names():
        spec = registry.get_spec(name)
        assert spec.sha256 is None or len(spec.sha256) == 64, name
