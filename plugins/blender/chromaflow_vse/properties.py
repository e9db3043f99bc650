"""What the user sets: the add-on preferences (the chromaflow program, the device) and the scene's panel settings.

No ``from __future__ import annotations`` here: Blender reads the property annotations as objects.
"""

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    StringProperty,
)

SETTING = "the add-on preferences"  # where the user sets the chromaflow program, for the client's messages


def preferences(context: bpy.types.Context) -> bpy.types.AddonPreferences | None:
    addon = context.preferences.addons.get(__package__)
    return addon.preferences if addon else None


class ChromaflowPreferences(bpy.types.AddonPreferences):
    bl_idname = __package__

    cli_path: StringProperty(  # type: ignore[valid-type]
        name="chromaflow program",
        description="The chromaflow executable, the Python of the environment where chromaflow is installed, or "
        "that environment's folder. Empty: $CHROMAFLOW_CLI, then 'chromaflow' on PATH",
        subtype="FILE_PATH",
        default="",
    )
    device: StringProperty(  # type: ignore[valid-type]
        name="Device", description="cpu, cuda, cuda:1 ... (empty: the CLI's choice)", default=""
    )

    def draw(self, context: bpy.types.Context) -> None:
        self.layout.prop(self, "cli_path")
        self.layout.prop(self, "device")


class ChromaflowReference(bpy.types.PropertyGroup):
    """A timeline marker and the coloured still the user painted for its frame."""

    marker: StringProperty(name="Marker")  # type: ignore[valid-type]
    image: StringProperty(name="Still", subtype="FILE_PATH")  # type: ignore[valid-type]


class ChromaflowSettings(bpy.types.PropertyGroup):
    model: StringProperty(name="Model", default="base", description="colorization model name")  # type: ignore[valid-type]
    use_smooth: BoolProperty(name="Temporal smoothing", default=True)  # type: ignore[valid-type]
    smooth: IntProperty(  # type: ignore[valid-type]
        name="Radius", default=2, min=1, max=16, description="temporal chroma smoothing radius in frames"
    )
    references: CollectionProperty(type=ChromaflowReference)  # type: ignore[valid-type]
    detector: EnumProperty(  # type: ignore[valid-type]
        name="Detector",
        items=[("DEFAULT", "Default", "the CLI's default detector"), ("haar", "Haar cascade", "OpenCV's, built in"),
               ("blazeface", "BlazeFace", "needs its weights (chromaflow models download blazeface)")],
    )  # fmt: skip
    classifier: EnumProperty(  # type: ignore[valid-type]
        name="Classifier",
        items=[("DEFAULT", "Default", "the CLI's default classifier")]
        + [
            (n, n, "MesoNet weights")
            for n in ("meso4-df", "meso4-f2f", "mesoinception-df", "mesoinception-f2f")
        ],
    )
    overlay: BoolProperty(  # type: ignore[valid-type]
        name="Overlay", default=True, description="add a strip with boxes and scores drawn on the faces"
    )
    deflicker_radius: IntProperty(  # type: ignore[valid-type]
        name="Radius",
        default=3,
        min=1,
        max=10,
        description="frames on either side a frame's colour is smoothed with",
    )
    deflicker_strength: FloatProperty(  # type: ignore[valid-type]
        name="Strength",
        default=1.0,
        min=0.0,
        max=2.0,
        description="weight of the neighbouring frames (1: a confident neighbour counts as much as the frame; 0: off)",
    )
    output_dir: StringProperty(  # type: ignore[valid-type]
        name="Output folder", subtype="DIR_PATH", default="", description="empty: next to the source movie"
    )
    status: StringProperty(name="Status", default="")  # type: ignore[valid-type]
    progress: FloatProperty(name="Progress", default=0.0, min=0.0, max=1.0, subtype="FACTOR")  # type: ignore[valid-type]


CLASSES = (ChromaflowPreferences, ChromaflowReference, ChromaflowSettings)
