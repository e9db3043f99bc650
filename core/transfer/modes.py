"""The keyframe-transfer modes and their check, owned here and shared by the options (``--transfer``) and the engine.

- ``propagate``: flow chains from the keyframes (:mod:`~chromaflow.core.transfer.propagate`), global transfer where
  no chain reaches or matches;
- ``auto``: the same chains with the Welsh-style ``knn`` transfer as the fallback (references of other content
  work too);
- ``reinhard``, ``histogram``, ``knn``: per-frame transfer from the nearest keyframe's reference (any content).
"""

from typing import Literal

from chromaflow.core.errors import UsageError

Mode = Literal["propagate", "reinhard", "histogram", "knn", "auto"]
MODES: tuple[str, ...] = ("propagate", "reinhard", "histogram", "knn", "auto")


def check_transfer_mode(mode: str) -> None:
    """Refuse a mode that is not one of :data:`MODES` (:class:`UsageError`)."""
    if mode not in MODES:
        raise UsageError(f"unknown transfer mode {mode!r}; use one of {', '.join(MODES)}")
