"""Where chromaflow keeps and finds things: the model cache and the shared development data."""

import os
from pathlib import Path


def home_dir() -> Path:
    """The model cache folder: ``$CHROMAFLOW_HOME``, else ``$XDG_CACHE_HOME/chromaflow``, else ``~/.cache/chromaflow``."""
    explicit = os.environ.get("CHROMAFLOW_HOME")
    if explicit:
        return Path(explicit).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache).expanduser() / "chromaflow"


def models_dir() -> Path:
    """Folder holding downloaded or imported model weights."""
    return home_dir() / "models"


def shared_dir() -> Path:
    """The shared data folder: ``$CHROMAFLOW_SHARED``, else ``../shared`` relative to the working directory."""
    explicit = os.environ.get("CHROMAFLOW_SHARED")
    return Path(explicit).expanduser() if explicit else Path.cwd().parent / "shared"
