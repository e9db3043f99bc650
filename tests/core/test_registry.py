"""The model registry: specs, download (from a local http.server, never the internet), import, verify, and the
builders its entries carry (``registry.load``)."""

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import h5py
import pytest
import torch

from chromaflow.core import registry
from chromaflow.core.errors import ModelError, UsageError
from chromaflow.core.nets import base_v2, builders
from chromaflow.core.nets.base import TEMPERATURE_KEY, BaseColorNet
from chromaflow.core.nets.blazeface import BlazeFace
from chromaflow.core.nets.mesonet import Meso4, MesoInception4, load_meso
from chromaflow.core.nets.zhang import SIGGRAPH17
from chromaflow.core.paths import models_dir
from chromaflow.core.weights_io import load_state_dict
from chromaflow.plugins.cli.main import main

ALL = [
    "base",
    "base-v1",
    "eccv16",
    "siggraph17",
    "ddcolor-modelscope",
    "ddcolor-artistic",
    "ddcolor-paper",
    "ddcolor-paper-tiny",
    "deoldify-artistic",
    "deoldify-stable",
    "deoldify-video",
    "meso4-df",
    "meso4-f2f",
    "mesoinception-df",
    "mesoinception-f2f",
    "blazeface",
    "blazeface-anchors",
    "mtcnn-pnet",
    "mtcnn-rnet",
    "mtcnn-onet",
    *(f"effnet-b7-dfdc-{k}" for k in range(1, 8)),
    "mobilenet-v2-imagenet",
]


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path, shared: Path) -> Iterator[str]:
    """A local server with the real Meso4_DF.h5 and a corrupted copy (one byte changed)."""
    root = tmp_path / "www"
    root.mkdir()
    good = shared / "models/mesonet/Meso4_DF.h5"
    shutil.copy(good, root / "good.h5")
    data = bytearray(good.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (root / "bad.h5").write_bytes(bytes(data))
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root))
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_all_names_registered_with_complete_specs(shared: Path):
    assert registry.names() == ALL
    sums = {}
    for folder in ("mesonet", "blazeface"):
        for line in (shared / "models" / folder / "SHA256SUMS").read_text().splitlines():
            digest, name = line.split()
            sums[name] = digest
    for name in ALL:
        spec = registry.get_spec(name)
        assert spec.arch and spec.filename and spec.licence and spec.input_size > 0
        assert spec.kind in ("colorizer", "classifier", "detector", "anchors", "encoder")
        if spec.filename in sums:
            assert spec.sha256 == sums[spec.filename]
            assert spec.url is not None and spec.url.endswith("/" + spec.filename)
    # full digests (issue 16): the file names carry only the first 8 hex digits
    assert (
        registry.get_spec("eccv16").sha256
        == "9b330a0bae53f4ded77b1e23defbf78beaa09c10ebc4c4999e8e4f4a160b93f9"
    )
    assert (
        registry.get_spec("siggraph17").sha256
        == "df00044c0a4d7c3edcecf6f75437ce346a66e7a42612d9b968e1a7e17dbc6f66"
    )
    assert (
        registry.get_spec("meso4-df").url
        == "https://github.com/DariusAf/MesoNet/raw/master/weights/Meso4_DF.h5"
    )
    assert (
        registry.get_spec("blazeface").url
        == "https://github.com/hollance/BlazeFace-PyTorch/raw/master/blazeface.pth"
    )
    with pytest.raises(ModelError, match="known models are"):
        registry.get_spec("nope")


def test_absent_weights_name_the_download_and_import_commands():
    with pytest.raises(ModelError) as err:
        registry.weights_path("siggraph17")
    assert "chromaflow models download siggraph17" in str(err.value)
    assert "chromaflow models import siggraph17 PATH" in str(err.value)


def test_base_is_bundled_and_missing_weights_say_so(monkeypatch, tmp_path):
    monkeypatch.setattr(registry, "BUNDLED_DIR", tmp_path)
    with pytest.raises(ModelError, match=r"bundled weights .* missing from this install"):
        registry.weights_path("base")
    with pytest.raises(ModelError, match="ships inside chromaflow"):
        registry.download("base")


def test_download_good_file_lands_in_cache(served: str, shared: Path):
    path = registry.download("meso4-df", url=f"{served}/good.h5", progress=False)
    assert path == models_dir() / "Meso4_DF.h5"
    assert path.read_bytes() == (shared / "models/mesonet/Meso4_DF.h5").read_bytes()
    assert registry.weights_path("meso4-df") == path
    assert registry.verify("meso4-df").ok
    assert [p.name for p in models_dir().iterdir()] == ["Meso4_DF.h5"]


def test_corrupted_download_is_refused_and_leaves_nothing(served: str):
    with pytest.raises(ModelError, match="SHA-256"):
        registry.download("meso4-df", url=f"{served}/bad.h5", progress=False)
    assert list(models_dir().iterdir()) == []
    with pytest.raises(ModelError, match="could not download"):
        registry.download("meso4-df", url=f"{served}/missing.h5", progress=False)
    assert list(models_dir().iterdir()) == []


def test_import_checks_the_hash(shared: Path, tmp_path: Path):
    with pytest.raises(ModelError, match="SHA-256"):
        registry.import_file("meso4-df", shared / "models/mesonet/Meso4_F2F.h5")
    assert not models_dir().exists() or list(models_dir().iterdir()) == []
    path = registry.import_file("blazeface", shared / "models/blazeface/blazeface.pth")
    assert path.name == "blazeface.pth" and registry.verify("blazeface").ok


def test_weights_on_the_model_path_are_found_checked_and_never_written(
    shared: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    """$CHROMAFLOW_MODEL_PATH: folders searched after the cache (a studio's shared copy); a file there is checked
    like any other, and downloads or imports still land in the cache."""
    shared_folder = tmp_path / "studio-models"
    shared_folder.mkdir()
    shutil.copy(shared / "models/mesonet/Meso4_DF.h5", shared_folder / "Meso4_DF.h5")
    (shared_folder / "blazeface.pth").write_bytes(b"not blazeface")
    monkeypatch.setenv("CHROMAFLOW_MODEL_PATH", f"{tmp_path / 'absent'}{os.pathsep}{shared_folder}")
    assert registry.weights_path("meso4-df") == shared_folder / "Meso4_DF.h5"
    assert isinstance(registry.load("meso4-df"), Meso4)
    with pytest.raises(ModelError, match="does not match the checksum"):
        registry.weights_path("blazeface")
    imported = registry.import_file("blazeface", shared / "models/blazeface/blazeface.pth")
    assert imported == models_dir() / "blazeface.pth" and registry.weights_path("blazeface") == imported
    assert (shared_folder / "blazeface.pth").read_bytes() == b"not blazeface"  # the cache comes first


def test_tampered_cache_file_is_refused_by_weights_path_and_verify(shared: Path):
    path = registry.import_file("blazeface-anchors", shared / "models/blazeface/anchors.npy")
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(ModelError, match="does not match the checksum"):
        registry.weights_path("blazeface-anchors")
    assert not registry.verify("blazeface-anchors").ok


def test_cli_list_download_import_verify(served: str, shared: Path, capsys):
    assert main(["models", "download", "meso4-df", "--url", f"{served}/good.h5"]) == 0
    assert main(["models", "import", "meso4-f2f", str(shared / "models/mesonet/Meso4_F2F.h5")]) == 0
    capsys.readouterr()
    assert main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    rows = {line.split()[0]: line.split()[2] for line in listing.splitlines()[1:]}
    assert rows["meso4-df"] == "yes" and rows["meso4-f2f"] == "yes" and rows["eccv16"] == "no"
    assert main(["models", "verify"]) == 0
    assert main(["models", "verify", "siggraph17"]) == ModelError.exit_code
    assert main(["models", "download", "meso4-df", "--url", f"{served}/bad.h5"]) == ModelError.exit_code
    # The failed download did not touch the good copy already in the cache.
    assert registry.verify("meso4-df").ok


# ------------------------------------------------------------------------------------ builders and load()

NETS = [name for name in ALL if registry.get_spec(name).part == "weights"]


def _weights_file(name: str, shared: Path) -> Path:
    """Model ``name``'s weight file: the bundled one, or the copy in ../shared/models (skips when absent)."""
    spec = registry.get_spec(name)
    if spec.bundled:
        return registry.cached_path(name)
    found = sorted((shared / "models").rglob(spec.filename))
    if not found:
        pytest.skip(f"{spec.filename} is not in {shared / 'models'}")
    return found[0]


def _float_sizes(net: torch.nn.Module) -> list[int]:
    return sorted(t.numel() for t in net.state_dict().values() if t.is_floating_point())


@pytest.mark.parametrize("name", NETS)
def test_each_builder_builds_the_net_its_weight_file_holds(name: str, shared: Path) -> None:
    """A fresh net of the entry's builder has the tensors of the weight file, key for key and shape for shape
    (Keras files have no keys: the same tensor sizes), and loading the file fills every one of them."""
    spec = registry.get_spec(name)
    path = _weights_file(name, shared)
    fresh = spec.builder.build()
    assert fresh.training
    if spec.builder.file_format == "state_dict":
        stored = load_state_dict(path)
        stored.pop(TEMPERATURE_KEY, None)  # base's annealing temperature: a scalar, not a layer
        expected = {k: tuple(v.shape) for k, v in fresh.state_dict().items()}
        if spec.arch == base_v2.ARCH:  # the shipped file leaves out encoder tensors still equal to ImageNet's
            left_out = {k for k in expected if k not in stored}
            assert all(k.startswith(base_v2.ENCODER_PREFIX) for k in left_out)
            frozen = {
                k
                for k in expected
                if k.startswith(base_v2.ENCODER_PREFIX) and int(k.split(".")[2]) < base_v2.FINETUNE_FROM
            }
            assert frozen <= left_out
            expected = {k: v for k, v in expected.items() if k not in left_out}
        assert expected == {k: tuple(v.shape) for k, v in stored.items()}
    else:
        with h5py.File(path, "r") as f:
            sizes: list[int] = []
            f.visititems(lambda _, obj: sizes.append(obj.size) if isinstance(obj, h5py.Dataset) else None)
        assert _float_sizes(fresh) == sorted(sizes)
    loaded = spec.builder.load(path)
    assert type(loaded) is type(fresh) and not loaded.training
    fresh_state = fresh.state_dict()
    for key, value in loaded.state_dict().items():
        if value.is_floating_point():
            assert not torch.equal(value, fresh_state[key].to(value.dtype)), (
                f"{key} was not filled from {path}"
            )


def test_every_architecture_has_a_registered_model_and_facts() -> None:
    used = {registry.get_spec(n).arch for n in ALL}
    assert used == set(builders.BUILDERS)
    for b in builders.BUILDERS.values():
        assert b.input_size > 0 and b.inputs
    assert builders.archs("colorizer")[:5] == (
        "base",
        "siggraph17",
        "eccv16",
        "ddcolor-tiny",
        "ddcolor-large",
    )
    assert registry.get_spec("blazeface-anchors").kind == "anchors"
    assert registry.get_spec("blazeface-anchors").input_size == 128


def test_load_by_name_gives_the_registered_weights(shared: Path) -> None:
    """By name: verified weights through the entry's builder, the same numbers as the file loaded directly."""
    registry.import_file("meso4-df", shared / "models/mesonet/Meso4_DF.h5")
    registry.import_file("blazeface", shared / "models/blazeface/blazeface.pth")
    meso = registry.load("meso4-df")
    assert isinstance(meso, Meso4) and not meso.training
    x = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(meso(x), load_meso("meso4", shared / "models/mesonet/Meso4_DF.h5")(x))
    assert isinstance(registry.load("BlazeFace"), BlazeFace)  # names are case-insensitive
    base = registry.load("base", kind="colorizer")
    assert isinstance(base, base_v2.BaseV2ColorNet) and not base.training
    assert isinstance(registry.load("base-v1", kind="colorizer"), BaseColorNet)
    with pytest.raises(ModelError, match="chromaflow models download siggraph17"):
        registry.load("siggraph17")  # registered, not downloaded
    with pytest.raises(
        UsageError, match="is a classifier, not a colorizer: use base, base-v1, eccv16, siggraph17"
    ):
        registry.load("meso4-df", kind="colorizer")
    with pytest.raises(UsageError, match="not a net"):
        registry.load("blazeface-anchors")
    with pytest.raises(
        ModelError, match="unknown model 'nope': use one of base, base-v1, eccv16, siggraph17"
    ):
        registry.load("nope", kind="colorizer")


def test_load_by_path_and_arch(shared: Path, tmp_path: Path) -> None:
    """By path: the builder of ``arch``, or of the arch a checkpoint records; the same names as ``--arch``."""
    torch.manual_seed(0)
    state = SIGGRAPH17(width=2).state_dict()
    plain, recorded = tmp_path / "plain.pt", tmp_path / "recorded.pth"
    torch.save(state, plain)
    torch.save({"arch": "siggraph17", "state_dict": state}, recorded)
    for net in (registry.load(plain, arch="siggraph17"), registry.load(recorded)):
        assert isinstance(net, SIGGRAPH17) and net.model1[0].out_channels == 2
        assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())
    meso = registry.load(
        shared / "models/mesonet/MesoInception_DF.h5", arch="mesoinception4", kind="classifier"
    )
    assert isinstance(meso, MesoInception4)
    with pytest.raises(UsageError, match="add --arch with one of base, siggraph17, eccv16"):
        registry.load(plain, kind="colorizer")
    with pytest.raises(UsageError, match="unknown colorizer architecture 'meso4'"):
        registry.load(plain, arch="meso4", kind="colorizer")
    with pytest.raises(ModelError, match="do not fit the ECCV16 architecture"):
        registry.load(plain, arch="eccv16")
    with pytest.raises(ModelError, match="does not exist"):
        registry.load(tmp_path / "absent.pt", arch="base")


def test_builders_make_fresh_nets_of_a_width() -> None:
    assert builders.BASE.build(8).enc1[0].out_channels == 4
    assert builders.ECCV16.build(4).model1[0].out_channels == 4
    assert builders.builder_for("SIGGRAPH17").build().model1[0].out_channels == 64
    with pytest.raises(UsageError, match="fixed size"):
        builders.MESO4.build(8)
