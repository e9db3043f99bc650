"""The colour a user gives ``colorize`` and ``transfer`` besides the clip: hint points and reference keyframes,
checked against the clip and turned into what :class:`chromaflow.core.video.VideoColorizer` takes."""

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import vapoursynth as vs

from chromaflow.core.hints import Hint, parse_hint
from chromaflow.core.transfer import PROPAGATING, as_rgb_float, load_rgb
from chromaflow.filters.vapoursynth.colour import ClipLayout, check_clip, describe
from chromaflow.filters.vapoursynth.frames import frame_rgb, reported
from chromaflow.filters.vapoursynth.properties import KEYFRAME_PROP

HintsArg = Sequence[str | Hint] | Mapping[int, Sequence[str | Hint]] | None


def parse_hints(hints: HintsArg, num_frames: int, func: str) -> dict[int, list[Hint]] | list[Hint]:
    """Hints for every frame (a list) or per frame (``{frame: [hints]}``); strings are ``x,y,#RRGGBB[,radius]``."""

    def one_list(items: Sequence[str | Hint]) -> list[Hint]:
        if isinstance(items, str | Hint):
            items = [items]
        return [item if isinstance(item, Hint) else parse_hint(str(item)) for item in items]

    with reported(func):
        if hints is None:
            return []
        if isinstance(hints, Mapping):
            out: dict[int, list[Hint]] = {}
            for key, items in hints.items():
                n = int(key)
                if not 0 <= n < num_frames:
                    raise vs.Error(
                        f"chromaflow.{func}: hints given for frame {n}, but the clip has frames 0..{num_frames - 1}"
                    )
                out[n] = one_list(items)
            return out
        return one_list(hints)


def reference_images(
    references: Any,
    clip: vs.VideoNode,
    layout: ClipLayout,
    mode: str,
    keyframes: Sequence[int] | None,
    func: str,
) -> dict[int, np.ndarray]:
    """``{frame: RGB float (H, W, 3)}`` from a mapping of paths/arrays or from a reference clip."""
    if isinstance(references, vs.VideoNode):
        images = _clip_references(references, clip, keyframes, func)
    elif isinstance(references, Mapping):
        images = {}
        for key, value in references.items():
            n = int(key)
            if not 0 <= n < clip.num_frames:
                raise vs.Error(
                    f"chromaflow.{func}: a reference is given for frame {n}, but the clip has frames "
                    f"0..{clip.num_frames - 1}"
                )
            with reported(func):
                images[n] = (
                    load_rgb(value) if isinstance(value, str | Path) else as_rgb_float(np.asarray(value))
                )
    else:
        raise vs.Error(
            f"chromaflow.{func}: references must be a {{frame: image path or RGB array}} dict or a reference clip "
            f"of the same length, got {type(references).__name__}"
        )
    if not images:
        raise vs.Error(f"chromaflow.{func}: no references given; pass {{frame: image}} or a reference clip")
    if mode in PROPAGATING:
        for n, img in images.items():
            rh, rw = img.shape[:2]
            if (rh, rw) != (layout.height, layout.width):
                raise vs.Error(
                    f"chromaflow.{func}: the reference for frame {n} is {rw}x{rh} but the clip is "
                    f"{layout.width}x{layout.height}; a keyframe reference is a colouring of that frame, so give "
                    "it the clip's size, or use transfer='knn' (or 'reinhard'/'histogram') for references of "
                    "other content"
                )
    return images


def _clip_references(
    references: vs.VideoNode, clip: vs.VideoNode, keyframes: Sequence[int] | None, func: str
) -> dict[int, np.ndarray]:
    """The keyframes of a reference clip (listed, or marked with ``ChromaflowKeyframe=1``) as RGB images."""
    ref_layout = check_clip(references, func)
    if references.num_frames != clip.num_frames:
        raise vs.Error(
            f"chromaflow.{func}: the reference clip has {references.num_frames} frames, the clip "
            f"{clip.num_frames}; give a reference clip of the same length (or a {{frame: image}} dict)"
        )
    if keyframes is None:
        keyframes = [
            n for n in range(references.num_frames) if references.get_frame(n).props.get(KEYFRAME_PROP, 0)
        ]
        if not keyframes:
            raise vs.Error(
                f"chromaflow.{func}: no frame of the reference clip is marked as a keyframe; mark them with "
                f"core.std.SetFrameProps(ref, {KEYFRAME_PROP}=1) on the coloured frames, or pass keyframes=[...]"
            )
    images = {}
    for n in keyframes:
        if not 0 <= int(n) < clip.num_frames:
            raise vs.Error(f"chromaflow.{func}: keyframe {n} is outside the clip (0..{clip.num_frames - 1})")
        frame = references.get_frame(int(n))
        rgb = frame_rgb(frame, ref_layout, describe(frame.props, ref_layout, func, int(n)))
        images[int(n)] = rgb.permute(1, 2, 0).numpy()
    return images
