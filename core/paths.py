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


def model_dirs() -> list[Path]:
    """Where weights are looked for: :func:`models_dir` first, then the folders of ``$CHROMAFLOW_MODEL_PATH``
    (``os.pathsep``-separated; e.g. a studio's shared, read-only weights folder). Downloads and imports only ever
    write to :func:`models_dir`."""
    extra = os.environ.get("CHROMAFLOW_MODEL_PATH", "")
    return [models_dir(), *(Path(p).expanduser() for p in extra.split(os.pathsep) if p)]


def shared_dir() -> Path:
    """The shared data folder: ``$CHROMAFLOW_SHARED``, else ``../shared`` relative to the working directory."""
    explicit = os.environ.get("CHROMAFLOW_SHARED")
    return Path(explicit).expanduser() if explicit else Path.cwd().parent / "shared"
