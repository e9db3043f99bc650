"""The Sequencer sidebar's Chromaflow tab: the settings of each verb, its button, the status of the run."""

import bpy

from . import strips
from .job import ACTIVE
from .operators import (
    CHROMAFLOW_OT_colorize_strip,
    CHROMAFLOW_OT_deepfake_strip,
    CHROMAFLOW_OT_deflicker_strip,
    CHROMAFLOW_OT_sync_markers,
)


class CHROMAFLOW_PT_panel(bpy.types.Panel):  # noqa: N801 - Blender's naming convention
    bl_label = "chromaflow"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Chromaflow"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.chromaflow
        strip = strips.active_movie(context)
        if strip is None:
            layout.label(text="Select a movie strip", icon="INFO")

        box = layout.box()
        box.label(text="Colorize", icon="COLOR")
        box.prop(settings, "model")
        row = box.row()
        row.prop(settings, "use_smooth")
        sub = row.row()
        sub.active = settings.use_smooth
        sub.prop(settings, "smooth")
        box.operator(CHROMAFLOW_OT_sync_markers.bl_idname, icon="MARKER_HLT")
        if strip is not None:
            geometry = strips.geometry(strip)
            frames = dict(strips.markers(context))
            for ref in settings.references:
                frame = frames.get(ref.marker)
                if frame is None or not geometry.final_start <= frame < geometry.final_end:
                    continue
                row = box.row(align=True)
                row.label(text=f"{ref.marker} @ {frame}")
                row.prop(ref, "image", text="")
        box.prop(settings, "project")
        box.operator(CHROMAFLOW_OT_colorize_strip.bl_idname, icon="PLAY")

        box = layout.box()
        box.label(text="Deflicker", icon="MOD_SMOOTH")
        row = box.row()
        row.prop(settings, "deflicker_radius")
        row.prop(settings, "deflicker_strength")
        box.operator(CHROMAFLOW_OT_deflicker_strip.bl_idname, icon="PLAY")

        box = layout.box()
        box.label(text="Deepfake scan", icon="VIEWZOOM")
        box.prop(settings, "detector")
        box.prop(settings, "classifier")
        box.prop(settings, "overlay")
        box.operator(CHROMAFLOW_OT_deepfake_strip.bl_idname, icon="PLAY")

        layout.prop(settings, "output_dir")
        if settings.status:
            if "job" in ACTIVE:
                layout.prop(settings, "progress", slider=True)
            layout.label(text=settings.status)


CLASSES = (CHROMAFLOW_PT_panel,)
