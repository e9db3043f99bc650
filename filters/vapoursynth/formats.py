"""The output format of ``colorize`` and ``transfer``: the input's for YUV and RGB (so YUV's luma is kept bit for
bit), a chosen colour format for GRAY; and the output clip built around a frame renderer."""

from collections.abc import Callable
from typing import Any

import vapoursynth as vs

from chromaflow.filters.vapoursynth.colour import ClipLayout

core = vs.core


def resolve_format(value: Any, func: str) -> vs.VideoFormat:
    """A ``vs.VideoFormat`` or a format id (``vs.YUV444P8``) as a format, or ``vs.Error`` naming ``func``."""
    if isinstance(value, vs.VideoFormat):
        return value
    try:
        return core.get_video_format(int(value))
    except (vs.Error, TypeError, ValueError) as err:
        raise vs.Error(
            f"chromaflow.{func}: out_format {value!r} is not a video format; pass one such as vs.YUV444P8"
        ) from err


def output_format(layout: ClipLayout, clip: vs.VideoNode, out_format: Any, func: str) -> vs.VideoFormat:
    """The output format: the input's for YUV/RGB; for GRAY ``out_format`` (default YUV 4:4:4, same depth)."""
    src = clip.format
    assert src is not None
    if layout.family != vs.GRAY:
        if out_format is not None and resolve_format(out_format, func).id != src.id:
            raise vs.Error(
                f"chromaflow.{func}: out_format applies to GRAY clips only; a {src.name} clip stays {src.name} "
                "(so its luma is kept bit for bit). Convert the result with core.resize afterwards"
            )
        return src
    if out_format is None:
        return core.query_video_format(vs.YUV, src.sample_type, src.bits_per_sample, 0, 0)
    fmt = resolve_format(out_format, func)
    if fmt.color_family == vs.RGB and fmt.subsampling_w == fmt.subsampling_h == 0:
        ok = (
            fmt.bits_per_sample in (16, 32) if fmt.sample_type == vs.FLOAT else 8 <= fmt.bits_per_sample <= 16
        )
        if ok:
            return fmt
    if (
        fmt.color_family == vs.YUV
        and fmt.sample_type == src.sample_type
        and fmt.bits_per_sample == src.bits_per_sample
        and fmt.subsampling_w <= 2
        and fmt.subsampling_h <= 2
    ):
        return fmt
    raise vs.Error(
        f"chromaflow.{func}: cannot turn {src.name} into {fmt.name}; a GRAY clip becomes YUV of its own sample "
        f"type and depth (its luma copied bit for bit, e.g. {src.name.replace('Gray', 'YUV444P')}) or RGB; "
        "convert the result with core.resize afterwards"
    )


Renderer = Callable[[int, Any], vs.VideoFrame]


def output_clip(
    clip: vs.VideoNode, layout: ClipLayout, out: vs.VideoFormat, renderer: Renderer
) -> vs.VideoNode:
    """The clip ``renderer`` fills: called with the clip's own frame, or for GRAY with ``[blank output frame
    carrying the source's properties, source frame]``."""
    if layout.family == vs.GRAY:
        blank = core.std.BlankClip(clip, format=out.id, keep=True)
        base = core.std.CopyFrameProps(blank, clip)
        return core.std.ModifyFrame(base, [base, clip], renderer)
    return core.std.ModifyFrame(clip, clip, renderer)
