"""Safe loading of PyTorch weight files: sizes checked before anything is allocated, pickled code never executed.

``torch.load(weights_only=True)`` restricts unpickling to tensors, containers and primitive values; anything else
(a class, a function call such as ``os.system``) is refused before it can run. It does not bound memory: a ``.pt``
file is a zip archive (``<name>/data.pkl``, the pickled structure, and one entry ``<name>/data/<key>`` per storage),
and an entry stored deflated can expand enormously (a small file of compressed zeros can declare gigabytes, which
the loader allocates before refusing the file; ``tests/core/test_safe_loading.py`` crafts one). So before
``torch.load`` runs, :func:`check_archive`:

1. reads the sizes the zip directory declares (nothing is decompressed): all entries together may expand to at most
   :data:`MAX_EXPANSION` times the file's size (torch stores its entries uncompressed, so only a re-packed or crafted
   archive compresses at all);
2. walks ``data.pkl`` with a stand-in unpickler that imports nothing and builds no tensor: each storage's declared
   size (elements x element size) must equal its entry's, and each tensor must fit inside its storage;
3. when the tensor names are those of a colorizer architecture of this project, checks each tensor's shape against
   that architecture's, at the width the file declares.

Legacy (pre-zip) files hold their storages raw after the pickles; their declared sizes together may not exceed the
file. A structure the stand-in cannot follow is left to ``torch.load``, after the size check of step 1.
"""

import io
import logging
import pickle
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from chromaflow.core.errors import ModelError

log = logging.getLogger(__name__)

# Keys under which training scripts commonly nest the state_dict inside a checkpoint dictionary.
_NESTED_KEYS = ("state_dict", "model")
MAX_EXPANSION = 4  # uncompressed bytes of all zip entries per byte of file
_SLACK = 1 << 20  # bytes: room for the small entries of tiny files
_MAX_PICKLE = 64 << 20  # bytes: a state_dict's structure is kilobytes
_MAX_WIDTH = 4096  # channel width: the published nets have 64, the bundled one 24


class _NotFollowedError(Exception):
    """The pickle uses something the stand-in unpickler does not follow."""


# What walking a pickle we cannot follow may raise: the file is then left to the size check and torch.load.
_STRUCTURE_NOT_FOLLOWED = (
    _NotFollowedError,
    pickle.UnpicklingError,
    EOFError,
    ValueError,
    TypeError,
    IndexError,
    AttributeError,
)


@dataclass(frozen=True)
class StorageFact:
    """One storage as the pickle declares it: zip key, element size in bytes, number of elements."""

    key: str
    itemsize: int
    numel: int

    @property
    def nbytes(self) -> int:
        return self.itemsize * self.numel


@dataclass(frozen=True)
class TensorFact:
    """One tensor as the pickle declares it (nothing allocated): its storage, offset, shape and strides."""

    storage: StorageFact
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]

    def span(self) -> int:
        """Elements of the storage the tensor reaches (offset included)."""
        if any(n == 0 for n in self.shape):
            return self.offset
        return self.offset + 1 + sum((n - 1) * abs(s) for n, s in zip(self.shape, self.stride, strict=False))


@dataclass
class ArchiveFacts:
    """What a weights file declares, read without loading it."""

    storages: dict[str, StorageFact] = field(default_factory=dict)
    tensors: dict[str, TensorFact] = field(default_factory=dict)  # the state_dict's named tensors, when found


def _refused(path: Path, reason: str) -> ModelError:
    return ModelError(
        f"refused to load {path}: {reason}. Nothing was loaded; obtain the file from its official source "
        "(chromaflow models download NAME) or re-save it with torch.save"
    )


# ------------------------------------------------------------------------------------- the stand-in unpickler


def _itemsize(storage_type: str) -> int:
    try:
        return int(torch.storage._get_dtype_from_pickle_storage_type(storage_type).itemsize)
    except (KeyError, AttributeError) as err:
        raise _NotFollowedError(f"storage type {storage_type}") from err


class _StorageType:
    def __init__(self, name: str) -> None:
        self.name = name


class _Opaque:
    """Whatever the pickle builds besides tensors and containers: accepts every operation, means nothing."""

    def __new__(cls, *args: Any, **kwargs: Any) -> "_Opaque":
        return super().__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        pass

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def append(self, item: Any) -> None:
        pass

    def extend(self, items: Any) -> None:
        pass


class _Dict(dict[Any, Any]):
    """An ordered dict as a state_dict pickles it (its ``_metadata`` attribute comes as state, and is dropped)."""

    def __setstate__(self, state: Any) -> None:
        pass


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> TensorFact:
    if not isinstance(storage, StorageFact):
        raise _NotFollowedError("a tensor without a storage")
    return TensorFact(storage, int(offset), tuple(int(n) for n in size), tuple(int(s) for s in stride))


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    return data


_KNOWN = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): _Dict,
}


class _Inspector(pickle.Unpickler):
    """Follows a torch pickle with stand-ins: ``find_class`` never imports, ``persistent_load`` never reads data."""

    def __init__(self, data: bytes | io.BufferedIOBase, legacy: bool = False) -> None:
        super().__init__(io.BytesIO(data) if isinstance(data, bytes) else data)
        self.legacy = legacy
        self.storages: dict[str, StorageFact] = {}

    def find_class(self, module: str, name: str) -> Any:
        if module == "torch" and name.endswith("Storage"):
            return _StorageType(name)
        return _KNOWN.get((module, name), _Opaque)

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            return _Opaque()  # legacy files also reference modules' source this way
        _tag, storage_type, key, _location, numel = pid[:5]
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise _NotFollowedError("a storage reference")
        fact = StorageFact(str(key), _itemsize(storage_type.name), numel)
        self.storages.setdefault(fact.key, fact)
        if self.legacy and len(pid) > 5 and pid[5] is not None:  # a view of a larger legacy storage
            raise _NotFollowedError("a legacy storage view")
        return fact


def _named_tensors(obj: Any) -> dict[str, TensorFact]:
    """The named tensors of a state_dict, or of one nested under ``state_dict`` / ``model``."""
    if isinstance(obj, dict):
        for key in _NESTED_KEYS:
            nested = obj.get(key)
            if isinstance(nested, dict) and not isinstance(obj.get("weight"), TensorFact):
                obj = nested
                break
        return {k: v for k, v in obj.items() if isinstance(k, str) and isinstance(v, TensorFact)}
    return {}


# ------------------------------------------------------------------------------------------- the checks


def check_archive(path: str | Path) -> ArchiveFacts | None:
    """Check what ``path`` declares against what it holds (module docstring), before anything is allocated.

    Returns what was found (``None`` when the structure could not be followed; only the size check applied).
    Raises :class:`ModelError` for a file that would expand beyond itself or whose declarations disagree.
    """
    path = Path(path)
    size = path.stat().st_size
    if zipfile.is_zipfile(path):
        return _check_zip(path, size)
    return _check_legacy(path, size)


def _check_zip(path: Path, size: int) -> ArchiveFacts | None:
    try:
        with zipfile.ZipFile(path) as archive:
            entries = {info.filename: info for info in archive.infolist()}
            expanded = sum(info.file_size for info in entries.values())
            if expanded > MAX_EXPANSION * size + _SLACK:
                raise _refused(
                    path,
                    f"its zip entries expand to {expanded} bytes from a {size}-byte file (compressed storages); "
                    "torch writes weights uncompressed",
                )
            pickles = [name for name in entries if name.endswith("data.pkl")]
            if len(pickles) != 1:
                return None  # not a torch archive: torch.load says what it is
            prefix = pickles[0][: -len("data.pkl")]
            if entries[pickles[0]].file_size > _MAX_PICKLE:
                raise _refused(path, f"its structure (data.pkl) is {entries[pickles[0]].file_size} bytes")
            data = archive.read(pickles[0])
    except zipfile.BadZipFile as err:
        raise _refused(path, f"it is a damaged zip archive ({err})") from err
    try:
        inspector = _Inspector(data)
        tensors = _named_tensors(inspector.load())
    except _STRUCTURE_NOT_FOLLOWED as err:
        log.debug("%s: structure not followed (%s); relying on the size check", path, err)
        return None
    for fact in inspector.storages.values():
        entry = entries.get(f"{prefix}data/{fact.key}")
        if entry is None:
            raise _refused(path, f"storage {fact.key} is declared but the archive has no entry for it")
        if entry.file_size != fact.nbytes:
            raise _refused(
                path,
                f"storage {fact.key} is declared as {fact.numel} elements of {fact.itemsize} bytes "
                f"({fact.nbytes} bytes) but its entry holds {entry.file_size} bytes",
            )
    facts = ArchiveFacts(dict(inspector.storages), tensors)
    _check_tensors(path, facts)
    return facts


def _check_legacy(path: Path, size: int) -> ArchiveFacts | None:
    """A pre-zip torch file: magic, protocol and system-info pickles, the structure, then raw storages."""
    try:
        with open(path, "rb") as f:
            for _ in range(3):
                _Inspector(f).load()
            inspector = _Inspector(f, legacy=True)
            tensors = _named_tensors(inspector.load())
    except _STRUCTURE_NOT_FOLLOWED as err:
        log.debug("%s: structure not followed (%s); left to torch.load", path, err)
        return None
    declared = sum(fact.nbytes for fact in inspector.storages.values())
    if declared > size:
        raise _refused(path, f"it declares {declared} bytes of tensors in a {size}-byte file")
    facts = ArchiveFacts(dict(inspector.storages), tensors)
    _check_tensors(path, facts)
    return facts


def _check_tensors(path: Path, facts: ArchiveFacts) -> None:
    for name, tensor in facts.tensors.items():
        if any(n < 0 for n in tensor.shape) or tensor.span() > tensor.storage.numel:
            raise _refused(
                path,
                f"tensor {name!r} of shape {tensor.shape} reaches past its storage of {tensor.storage.numel} elements",
            )
    expected = _architecture_shapes(facts.tensors)
    if expected is None:
        return
    arch, shapes = expected
    for name, tensor in facts.tensors.items():
        want = shapes.get(name)
        if want is not None and tuple(want) != tensor.shape:
            raise _refused(
                path,
                f"tensor {name!r} is declared with shape {tensor.shape}, but the {arch} architecture at this width "
                f"has {tuple(want)}",
            )


@contextmanager
def _meta_device() -> Iterator[None]:
    with torch.device("meta"):
        yield


def _architecture_shapes(tensors: Mapping[str, TensorFact]) -> tuple[str, dict[str, tuple[int, ...]]] | None:
    """``(arch, {name: shape})`` of the colorizer architecture whose tensor names these are, at the declared width
    (built on the meta device: no memory), or ``None`` when the names are no known architecture's."""
    from chromaflow.core.nets import base, base_v2, zhang

    names = set(tensors)
    candidates: list[tuple[str, Any, Any]] = [
        (arch, lambda w, cls=cls: cls(width=w), zhang.width_of) for arch, cls in zhang.ARCHITECTURES.items()
    ]
    candidates.append(("base", lambda w: base.BaseColorNet(width=w), base.width_of))
    candidates.append((base_v2.ARCH, lambda w: base_v2.BaseV2ColorNet(width=w), base_v2.width_of))
    for arch, make, width_of in candidates:
        try:
            width = width_of(tensors)
        except (KeyError, IndexError, ModelError, AttributeError):
            continue
        if not 1 <= width <= _MAX_WIDTH:
            continue
        with _meta_device():
            shapes = {k: tuple(v.shape) for k, v in make(width).state_dict().items()}
        optional = {base.TEMPERATURE_KEY} if arch in ("base", base_v2.ARCH) else set()
        optional |= {k for k in shapes if k.endswith("num_batches_tracked")}  # older files lack the counters
        if arch == base_v2.ARCH:  # a shipped file leaves out the ImageNet encoder (base_v2.shipped_state)
            optional |= {k for k in shapes if k.startswith(base_v2.ENCODER_PREFIX)}
        if set(shapes) - optional <= names <= set(shapes) | optional:
            return arch, shapes
    return None


# ------------------------------------------------------------------------------------------- loading


def load_tensors(path: str | Path) -> Any:
    """Check ``path`` (:func:`check_archive`), then unpickle it with ``weights_only=True`` onto the CPU; anything
    beyond plain data is refused."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"weights file {path} does not exist")
    check_archive(path)
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
