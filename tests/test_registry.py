"""The model registry: specs, download (from a local http.server, never the internet), import, verify."""

import functools
import http.server
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from chromaflow.core import registry
from chromaflow.core.errors import ModelError
from chromaflow.core.paths import models_dir
from chromaflow.plugins.cli.main import main

ALL = [
    "base",
    "eccv16",
    "siggraph17",
    "meso4-df",
    "meso4-f2f",
    "mesoinception-df",
    "mesoinception-f2f",
    "blazeface",
    "blazeface-anchors",
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
        assert spec.kind in ("colorizer", "classifier", "detector", "anchors")
        if spec.filename in sums:
            assert spec.sha256 == sums[spec.filename]
            assert spec.url is not None and spec.url.endswith("/" + spec.filename)
    assert registry.get_spec("eccv16").sha256 == "9b330a0b"
    assert registry.get_spec("siggraph17").sha256 == "df00044c"
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
