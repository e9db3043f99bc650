"""The colorize project: what a person set in the studio (model, hints per frame or per shot, keyframe references,
transfer and smoothing), saved as a small versioned JSON file that every host renders the same way.

Why a file of its own: the studio is where colours are chosen by looking, but the render happens anywhere
(``chromaflow colorize --project``, ``cf.colorize(clip, project=...)``, ``ColorizeNode(project=...)``, Blender).
One reader here turns the file into what the engine takes (:class:`ColorizeOptions`, hints by frame, reference
images), so the hosts cannot read it differently.

Schema, version 1 (paths are relative to the project file's folder; reference images live beside it)::

    {"chromaflow_project": 1,
     "source": "clip.mp4",                    # what the studio opened (informational for the hosts)
     "model": "base", "size": null,           # model name ("none": references alone) and input side
     "transfer": "auto", "smooth": 2, "smooth_strength": 1.0, "scene_cut_threshold": null,
     "frame_hints": {"12": [{"x": 40, "y": 30, "color": "#ff8800", "radius": 4}]},
     "shot_hints": [{"start": 0, "end": 24, "hints": [...]}],   # frames start .. end-1
     "keyframes": {"0": "clip.refs/key-000000.png"}}

A frame's hints are its shot's hints followed by its own (later hints win where they overlap). Hints steer the model
alone: a project with both hints and keyframes is refused when it is rendered (bake the hinted frame as a keyframe).
"""

import itertools
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from chromaflow.core.arrays import F32
from chromaflow.core.errors import InputError, OutputError, UsageError
from chromaflow.core.hints import Hint, hints_from_json
from chromaflow.core.options import ColorizeOptions
from chromaflow.core.transfer import load_rgb

VERSION = 1
KEY = "chromaflow_project"
NO_MODEL = "none"
_FIELDS = {
    KEY,
    "source",
    "model",
    "size",
    "transfer",
    "smooth",
    "smooth_strength",
    "scene_cut_threshold",
    "frame_hints",
    "shot_hints",
    "keyframes",
}


@dataclass(frozen=True)
class ShotHints:
    """Hints for every frame of a shot: frames ``start`` .. ``end - 1``."""

    start: int
    end: int
    hints: tuple[Hint, ...]


@dataclass(frozen=True)
class Project:
    """A loaded, checked project; ``folder`` is where its relative paths start."""

    folder: Path
    source: str | None = None
    model: str | None = "base"  # None: references alone
    size: int | None = None
    transfer: str = ColorizeOptions.transfer
    smooth: int = ColorizeOptions.smooth
    smooth_strength: float = ColorizeOptions.smooth_strength
    scene_cut_threshold: float | None = None
    frame_hints: Mapping[int, tuple[Hint, ...]] = field(default_factory=dict)
    shot_hints: tuple[ShotHints, ...] = ()
    keyframes: Mapping[int, str] = field(default_factory=dict)  # frame -> image path relative to folder

    def options(self, **host: Any) -> ColorizeOptions:
        """The run's options: the project's colour choices plus the host's own (device, precision, batch_size,
        engine), checked as :class:`ColorizeOptions` checks them."""
        return ColorizeOptions(
            model=self.model,
            size=self.size,
            transfer=self.transfer,
            smooth=self.smooth,
            smooth_strength=self.smooth_strength,
            scene_cut_threshold=self.scene_cut_threshold,
            **{k: v for k, v in host.items() if v is not None},
        )

    def source_path(self) -> Path | None:
        """The source the studio opened, resolved against the project's folder."""
        return None if self.source is None else (self.folder / self.source).resolve()

    def reference_paths(self) -> dict[int, Path]:
        """``{frame: reference image path}``, resolved against the project's folder."""
        return {n: (self.folder / p) for n, p in sorted(self.keyframes.items())}

    def hints_by_frame(self, num_frames: int | None = None) -> dict[int, list[Hint]]:
        """Each hinted frame's hints: its shot's, then its own; frames past ``num_frames`` (when known) refused."""
        out: dict[int, list[Hint]] = {}
        last = max([s.end - 1 for s in self.shot_hints] + list(self.frame_hints), default=-1)
        if num_frames is not None and last >= num_frames:
            raise UsageError(
                f"the project has hints for frame {last}, but the input has {num_frames} frames "
                f"(0 .. {num_frames - 1}); is it the project of another video?"
            )
        for shot in self.shot_hints:
            for n in range(shot.start, shot.end):
                out[n] = list(shot.hints)
        for n, hints in self.frame_hints.items():
            out[n] = out.get(n, []) + list(hints)
        return {n: h for n, h in sorted(out.items()) if h}

    def references(self, num_frames: int | None = None) -> dict[int, F32]:
        """The keyframe references as float RGB images; a missing image or a frame past the input is refused."""
        refs: dict[int, F32] = {}
        for n, path in self.reference_paths().items():
            if num_frames is not None and n >= num_frames:
                raise UsageError(
                    f"the project has a keyframe at frame {n}, but the input has {num_frames} frames "
                    f"(0 .. {num_frames - 1}); is it the project of another video?"
                )
            if not path.is_file():
                raise InputError(
                    f"the project's keyframe {n} names {path}, which does not exist; keep the reference images "
                    "beside the project file (move them together), or remove the keyframe in the studio"
                )
            refs[n] = load_rgb(path)
        return refs

    def engine_inputs(
        self, num_frames: int | None = None
    ) -> tuple[dict[int, list[Hint]] | None, dict[int, F32] | None]:
        """``(hints by frame, references)`` as :class:`~chromaflow.core.video.VideoColorizer` takes them (None
        where the project has none)."""
        hints = self.hints_by_frame(num_frames)
        refs = self.references(num_frames)
        if hints and refs:
            raise UsageError(
                "the project has both colour hints and keyframes; hints steer the model alone, so bake the hinted "
                "frames as keyframes (the studio's Bake) or remove the hints"
            )
        if self.model is None and not refs:
            raise UsageError('the project has model "none" and no keyframes: nothing to colour with')
        return hints or None, refs or None

    def to_json(self) -> dict[str, Any]:
        """The project as its JSON document (version :data:`VERSION`)."""
        return {
            KEY: VERSION,
            "source": self.source,
            "model": NO_MODEL if self.model is None else self.model,
            "size": self.size,
            "transfer": self.transfer,
            "smooth": self.smooth,
            "smooth_strength": self.smooth_strength,
            "scene_cut_threshold": self.scene_cut_threshold,
            "frame_hints": {
                str(n): [_hint_json(h) for h in hs] for n, hs in sorted(self.frame_hints.items())
            },
            "shot_hints": [
                {"start": s.start, "end": s.end, "hints": [_hint_json(h) for h in s.hints]}
                for s in self.shot_hints
            ],
            "keyframes": {str(n): p for n, p in sorted(self.keyframes.items())},
        }


def _hint_json(h: Hint) -> dict[str, Any]:
    r, g, b = h.rgb
    return {"x": h.x, "y": h.y, "color": f"#{r:02x}{g:02x}{b:02x}", "radius": h.radius}


def _frame(key: Any, what: str) -> int:
    """A frame number: an int >= 0, or its decimal digits (JSON object keys are strings)."""
    if isinstance(key, int) and not isinstance(key, bool) and key >= 0:
        return key
    if isinstance(key, str) and key.strip().isdigit():
        return int(key)
    raise UsageError(f"project: {what} {key!r} is not a frame number (0, 1, ...)")


def _hints(data: Any, where: str) -> tuple[Hint, ...]:
    try:
        return tuple(hints_from_json(data))
    except UsageError as err:
        raise UsageError(f"project: {where}: {err}") from None


def _shot(item: Any) -> ShotHints:
    if not isinstance(item, dict) or not {"start", "end", "hints"} <= item.keys():
        raise UsageError(
            'project: each shot_hints item is {"start": N, "end": M, "hints": [...]} (frames N..M-1)'
        )
    start, end = _frame(item["start"], "shot start"), _frame(item["end"], "shot end")
    if end <= start:
        raise UsageError(f"project: a shot from frame {start} must end after it (end {end} is exclusive)")
    return ShotHints(start, end, _hints(item["hints"], f"shot {start}..{end - 1}"))


def _number(data: dict[str, Any], name: str, default: Any) -> Any:
    value = data.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise UsageError(f"project: {name} must be a number, got {value!r}")
    return value


def _integer(data: dict[str, Any], name: str, default: Any) -> Any:
    value = _number(data, name, default)
    if value is not None and value != int(value):
        raise UsageError(f"project: {name} must be a whole number, got {value!r}")
    return None if value is None else int(value)


def project_from_json(data: Any, folder: str | Path) -> Project:
    """A :class:`Project` from its decoded JSON (relative paths start at ``folder``); everything checked."""
    if not isinstance(data, dict) or KEY not in data:
        raise UsageError(f'not a chromaflow project: the JSON object must have "{KEY}": {VERSION}')
    if data[KEY] != VERSION:
        raise UsageError(
            f"project version {data[KEY]!r} is not known to this chromaflow (it reads version {VERSION}); "
            "upgrade chromaflow, or save the project again from this version's studio"
        )
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise UsageError(
            f"project: unknown field(s) {', '.join(unknown)}; version {VERSION} has {sorted(_FIELDS)}"
        )
    model = data.get("model", "base")
    if not isinstance(model, str) or not model.strip():
        raise UsageError(f'project: model must be a model name (or "none"), got {model!r}')
    for name in ("source", "transfer"):
        if name in data and data[name] is not None and not isinstance(data[name], str):
            raise UsageError(f"project: {name} must be a string, got {data[name]!r}")
    frame_hints = data.get("frame_hints", {})
    shots = data.get("shot_hints", [])
    keys = data.get("keyframes", {})
    if not isinstance(frame_hints, dict) or not isinstance(shots, list) or not isinstance(keys, dict):
        raise UsageError("project: frame_hints and keyframes are objects keyed by frame, shot_hints a list")
    for n, path in keys.items():
        if not isinstance(path, str) or not path:
            raise UsageError(f"project: keyframe {n} must name its reference image, got {path!r}")
    shot_list = tuple(sorted((_shot(s) for s in shots), key=lambda s: s.start))
    for a, b in itertools.pairwise(shot_list):
        if b.start < a.end:
            raise UsageError(f"project: shots {a.start}..{a.end - 1} and {b.start}..{b.end - 1} overlap")
    project = Project(
        folder=Path(folder),
        source=data.get("source"),
        model=None if model.strip().lower() == NO_MODEL else model.strip(),
        size=_integer(data, "size", None),
        transfer=data.get("transfer", ColorizeOptions.transfer),
        smooth=_integer(data, "smooth", ColorizeOptions.smooth),
        smooth_strength=float(_number(data, "smooth_strength", ColorizeOptions.smooth_strength)),
        scene_cut_threshold=_number(data, "scene_cut_threshold", None),
        frame_hints={
            _frame(k, "frame_hints key"): _hints(v, f"hints of frame {k}") for k, v in frame_hints.items()
        },
        shot_hints=shot_list,
        keyframes={_frame(k, "keyframe"): v for k, v in keys.items()},
    )
    project.options()  # the colour options checked now, with ColorizeOptions' own messages
    return project


def load_project(path: str | Path) -> Project:
    """Read and check a project file."""
    p = Path(path).expanduser()
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"project file {p} does not exist; check the path") from None
    except OSError as err:
        raise InputError(f"cannot read project file {p}: {err.strerror or err}") from err
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise InputError(f"project file {p} is not valid JSON: {err}") from err
    return project_from_json(data, p.resolve().parent)


def save_project(project: Project, path: str | Path) -> Path:
    """Write ``project`` to ``path`` (a temporary name renamed at the end: an old project is never half-overwritten);
    its reference paths must already be relative to ``path``'s folder."""
    p = Path(path).expanduser()
    tmp = p.with_name(f".{p.name}.{os.getpid()}.partial")
    try:
        tmp.write_text(json.dumps(project.to_json(), indent=2) + "\n", encoding="utf-8")
        os.replace(tmp, p)
    except OSError as err:
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write project file {p}: {err.strerror or err}") from err
    return p


def references_folder(project_path: str | Path) -> Path:
    """Where the studio stores a project's reference images: ``NAME.refs/`` beside ``NAME.json``."""
    p = Path(project_path)
    return p.with_name(f"{p.stem}.refs")


def store_reference(
    project: Project, project_path: str | Path, frame: int, rgb: NDArray[np.uint8]
) -> Project:
    """``project`` with ``rgb`` (uint8 ``(H, W, 3)``) written as frame ``frame``'s reference image beside it (PNG,
    lossless) and that frame's own hints dropped (they are baked into the image)."""
    folder = references_folder(project_path)
    folder.mkdir(parents=True, exist_ok=True)
    image = folder / f"key-{frame:06d}.png"
    tmp = image.with_name(f".{image.name}.{os.getpid()}.partial.png")
    if not cv2.imwrite(str(tmp), np.ascontiguousarray(rgb[..., ::-1])):
        tmp.unlink(missing_ok=True)
        raise OutputError(f"cannot write the reference image {image}")
    os.replace(tmp, image)
    keys = {**project.keyframes, frame: image.relative_to(Path(project_path).parent).as_posix()}
    hints = {n: h for n, h in project.frame_hints.items() if n != frame}
    return replace(project, keyframes=keys, frame_hints=hints)


# the fields a project sets; the rest (device, precision, batch_size, engine, detect_cuts, params) stay the host's
COLOUR_FIELDS = (
    "model",
    "size",
    "render_factor",
    "mix",
    "mix_rule",
    "mix_softness",
    "transfer",
    "smooth",
    "smooth_strength",
    "scene_cut_threshold",
)


def host_options(project: Project, host: ColorizeOptions, where: str) -> ColorizeOptions:
    """``project``'s options with ``host``'s own choices (device, precision, batch size, engine, cut detection,
    params); a colour option the host set away from its default is refused (``where`` names the host)."""
    defaults = ColorizeOptions()
    clashing = [f for f in COLOUR_FIELDS if getattr(host, f) != getattr(defaults, f)]
    if clashing:
        raise UsageError(
            f"{where + ': ' if where else ''}project= sets the colour options itself; leave out {', '.join(clashing)} "
            "(edit them in the studio)"
        )
    base = project.options()
    return replace(
        base,
        device=host.device,
        precision=host.precision,
        batch_size=host.batch_size,
        engine=host.engine,
        detect_cuts=host.detect_cuts,
        params=host.params,
    )
