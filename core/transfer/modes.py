"""The keyframe-transfer modes and their check, owned here and shared by the options (``--transfer``) and the engine.

- ``propagate``: flow chains from the keyframes (:mod:`~chromaflow.core.transfer.propagate`), global transfer where
  no chain reaches or matches;
- ``flow``: the same chains with the Welsh-style ``knn`` transfer as the fallback (references of other content
  work too); what ``auto`` did before the fused transfer;
- ``auto``: ``flow`` joined by a learned fusion (:mod:`~chromaflow.core.transfer.fusion`) with non-local matching
  against the keyframes and a short memory (:mod:`~chromaflow.core.transfer.matching`); ``flow`` when the matching
  encoder's weights (``mobilenet-v2-imagenet``) are not in the model cache;
- ``reinhard``, ``histogram``, ``knn``: per-frame transfer from the nearest keyframe's reference (any content).
"""

from typing import Literal

from chromaflow.core.errors import UsageError

Mode = Literal["propagate", "reinhard", "histogram", "knn", "auto", "flow"]
MODES: tuple[str, ...] = ("propagate", "reinhard", "histogram", "knn", "auto", "flow")
# the modes that carry keyframes along flow chains
PROPAGATING: tuple[str, ...] = ("propagate", "flow", "auto")


def check_transfer_mode(mode: str) -> None:
    """Refuse a mode that is not one of :data:`MODES` (:class:`UsageError`)."""
    if mode not in MODES:
        raise UsageError(f"unknown transfer mode {mode!r}; use one of {', '.join(MODES)}")
