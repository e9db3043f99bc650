"""Shared fixtures: the shared data folder and small generated media."""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never touch the user's model cache."""
    monkeypatch.setenv("CHROMAFLOW_HOME", str(tmp_path_factory.mktemp("chromaflow-home")))
