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

from .chromaflow_cli_client import COLOUR_MODELS
from .commands import CLASSIFIERS

SETTING = "the add-on preferences"  # where the user sets the chromaflow program, for the client's messages


def model_suggestions(
    _settings: bpy.types.PropertyGroup, _context: bpy.types.Context, _text: str
) -> list[tuple[str, str]]:
    """The registry's colour models for the Model field's search list (any other text may still be typed: a mix
    ``A+B``, a weights file)."""
    return [(name, f"{text} (input {side} px)") for name, side, text in COLOUR_MODELS]


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
    model: StringProperty(  # type: ignore[valid-type]
        name="Model",
        default="base",
        description="colour model: pick one from the list (chromaflow models download NAME fetches its weights), "
        "or type two as A+B to mix their colours, or the path of a weights file",
        search=model_suggestions,
        search_options={"SUGGESTION"},
    )
    use_smooth: BoolProperty(name="Temporal smoothing", default=True)  # type: ignore[valid-type]
    smooth: IntProperty(  # type: ignore[valid-type]
        name="Radius", default=2, min=1, max=16, description="temporal chroma smoothing radius in frames"
    )
    references: CollectionProperty(type=ChromaflowReference)  # type: ignore[valid-type]
    project: StringProperty(  # type: ignore[valid-type]
        name="Project",
        subtype="FILE_PATH",
        description="a chromaflow studio project (.json): its model, hints and keyframes are used instead of the "
        "settings above (chromaflow studio saves one)",
    )
    detector: EnumProperty(  # type: ignore[valid-type]
        name="Detector",
        items=[("DEFAULT", "Default", "the CLI's default detector"), ("haar", "Haar cascade", "OpenCV's, built in"),
               ("blazeface", "BlazeFace", "needs its weights (chromaflow models download blazeface)"),
               ("mtcnn", "MTCNN", "needs its weights (chromaflow models download mtcnn)")],
    )  # fmt: skip
    classifier: EnumProperty(  # type: ignore[valid-type]
        name="Classifier",
        items=[("DEFAULT", "Default", "the CLI's default classifier")]
        + [
            (n, n, "the DFDC winner's EfficientNet-B7" if n.startswith("effnet") else "MesoNet weights")
            for n in CLASSIFIERS
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
