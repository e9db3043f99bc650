"""Reading and writing sequencer strips across Blender versions: 3.x calls them ``sequences``, 4.x+ ``strips``."""

import bpy

from .placement import StripGeometry


def top_strips(editor: bpy.types.SequenceEditor) -> bpy.types.bpy_prop_collection:
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def all_strips(editor: bpy.types.SequenceEditor) -> bpy.types.bpy_prop_collection:
    return editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all


def _children(meta: bpy.types.bpy_struct) -> bpy.types.bpy_prop_collection:
    return meta.strips if hasattr(meta, "strips") else meta.sequences


def container(editor: bpy.types.SequenceEditor, strip: bpy.types.bpy_struct) -> bpy.types.bpy_prop_collection:
    """The collection that holds ``strip``: the top level or the meta strip it is inside."""
    top = top_strips(editor)
    if any(s == strip for s in top):
        return top
    for meta in all_strips(editor):
        if meta.type == "META" and any(s == strip for s in _children(meta)):
            return _children(meta)
    return top


def geometry(strip: bpy.types.bpy_struct) -> StripGeometry:
    return StripGeometry(
        channel=strip.channel,
        frame_start=int(strip.frame_start),
        frame_offset_start=int(strip.frame_offset_start),
        frame_offset_end=int(strip.frame_offset_end),
        frame_duration=int(strip.frame_duration),
    )


def active_movie(context: bpy.types.Context) -> bpy.types.bpy_struct | None:
    """The active strip when it is a movie strip (the one the operators work on)."""
    editor = context.scene.sequence_editor
    strip = editor.active_strip if editor else None
    return strip if strip is not None and strip.type == "MOVIE" else None


def markers(context: bpy.types.Context) -> list[tuple[str, int]]:
    """The scene's timeline markers as ``(name, frame)``."""
    return [(m.name, int(m.frame)) for m in context.scene.timeline_markers]


def copy_look(source: bpy.types.bpy_struct, new: bpy.types.bpy_struct) -> None:
    """Same position, scale and crop as the source strip, so the result lines up with it."""
    for group, names in (
        ("transform", ("offset_x", "offset_y", "scale_x", "scale_y", "rotation")),
        ("crop", ("min_x", "max_x", "min_y", "max_y")),
    ):
        src, dst = getattr(source, group, None), getattr(new, group, None)
        if src is None or dst is None:
            continue
        for name in names:
            if hasattr(src, name):
                setattr(dst, name, getattr(src, name))
