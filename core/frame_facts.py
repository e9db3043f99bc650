"""FrameFacts: what a colorize run knows about one output frame, for hosts to report (VapourSynth frame properties,
the PyAV node's ``on_info``, JSON summaries).

A typed record that also reads as a mapping of its fields (``facts["scene_cut"]``, ``dict(facts)``, equal to the
dict of the same facts), so hosts that write properties by name need no conversion.
"""

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any


@dataclass(frozen=True, eq=False)
class FrameFacts(Mapping[str, Any]):
    """Per-frame facts of a colorize run (compared as mappings: equal to a dict with the same items)."""

    keyframe_distance: int  # frames to the nearest keyframe a chain reached; -1 if none (or no keyframes)
    confidence: (
        float  # mean propagation confidence in [0, 1] (1 for keyframes, 0 for global modes and the model)
    )
    scene_cut: bool  # a new shot starts at this frame
    is_keyframe: bool  # the frame has a reference image

    @classmethod
    def model_only(cls, scene_cut: bool) -> "FrameFacts":
        """The facts of a frame coloured by the model alone (no keyframes)."""
        return cls(-1, 0.0, scene_cut, False)

    def as_dict(self) -> dict[str, Any]:
        """A plain dict of the facts (for JSON)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def __getitem__(self, key: str) -> Any:
        if key not in _NAMES:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(_NAMES)

    def __len__(self) -> int:
        return len(_NAMES)


_NAMES: tuple[str, ...] = tuple(f.name for f in fields(FrameFacts))
