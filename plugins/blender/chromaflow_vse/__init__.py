"""chromaflow for Blender's Video Sequence Editor: colorize a movie strip, deflicker it, or scan it for deepfakes.

The add-on never imports torch or chromaflow: it runs the ``chromaflow`` command line of the environment set in
the add-on preferences, in a subprocess, shows its progress, and adds the result as a new movie strip on a free
channel above the source strip with the same start and trims. Esc cancels the run and deletes what it wrote.

Scripts (and ``blender -b``) get a blocking run: ``bpy.ops.chromaflow.colorize_strip()`` waits for the CLI.
Works with Blender 3.4+ (``sequences``) and 4.x+ (``strips``).

Its parts: ``properties`` (what the user sets), ``operators`` (what the user runs), ``panel`` (the sidebar tab),
``job`` (one run, from the panel's settings to the new strip), ``strips`` (the sequencer API across versions) and,
without bpy, ``commands`` (the CLI's argv), ``placement`` (strip arithmetic) and ``chromaflow_cli_client`` (the
process, its progress and its outputs; shared with the OBS script and copied here by tools/package_hosts.py).
"""

import bpy
from bpy.props import PointerProperty

from . import chromaflow_cli_client, commands, job, operators, panel, placement, properties, strips

# F3 > Reload Scripts runs this file again in its old namespace: reload every part, each after those it imports.
if "_LOADED" in globals():
    import importlib

    for _part in (chromaflow_cli_client, commands, placement, strips, properties, job, operators, panel):
        importlib.reload(_part)
_LOADED = True

bl_info = {
    "name": "chromaflow VSE",
    "author": "chromaflow developers",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Sequencer > Sidebar > Chromaflow",
    "description": "Colorize, deflicker and deepfake-scan movie strips with the chromaflow command line",
    "category": "Sequencer",
}


def _classes() -> tuple[type, ...]:
    return (*properties.CLASSES, *operators.CLASSES, *panel.CLASSES)


def register() -> None:
    for cls in _classes():
        bpy.utils.register_class(cls)
    bpy.types.Scene.chromaflow = PointerProperty(type=properties.ChromaflowSettings)


def unregister() -> None:
    running = job.ACTIVE.pop("job", None)
    if running is not None:
        running.run.cancel()
    del bpy.types.Scene.chromaflow
    for cls in reversed(_classes()):
        bpy.utils.unregister_class(cls)
