"""Runs inside ``blender -b --factory-startup --python tests/support/blender_vse_driver.py -- SPEC.json``, or with Blender as
a Python module (PyPI ``bpy``): ``python -c "import bpy, runpy, sys; runpy.run_path(sys.argv[1])" DRIVER -- SPEC``.

Not a pytest module: tests/plugins/test_blender_addon.py writes SPEC and reads back the JSON this script writes.
SPEC keys: zip, movie, cli, verb ("colorize", "deflicker" or "deepfake"), frame_start, trim_start, trim_end, result, and
optionally install ("addon", the default, or "extension") and ref_image (a still for a timeline marker inside the
strip). The script installs the add-on zip the way a user does, adds the movie as a strip (plus a sound strip and a
strip that blocks the channel above), runs the operator blocking (background mode) and records what the scene looks
like afterwards.
"""

import json
import sys
import traceback

import addon_utils
import bpy


def strips_of(editor):
    return editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all


def top_strips(editor):
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def install(spec):
    """Install and enable the zip as a legacy add-on (``bl_info``) or a 4.2+ extension (``blender_manifest.toml``),
    the way a user does; returns the add-on's module name."""
    if spec.get("install", "addon") == "extension":
        bpy.ops.extensions.package_install_files(
            filepath=spec["zip"], repo="user_default", enable_on_install=True
        )
        return "bl_ext.user_default.chromaflow_vse"
    bpy.ops.preferences.addon_install(filepath=spec["zip"], overwrite=True)
    addon_utils.enable("chromaflow_vse", default_set=True, handle_error=None)
    return "chromaflow_vse"


def new_color_strip(strips, start, end):
    """A colour strip on channel 2 over [start, end): Blender 5 takes ``length``, earlier versions ``frame_end``."""
    try:
        return strips.new_effect(
            name="blocker", type="COLOR", channel=2, frame_start=start, length=end - start
        )
    except TypeError:
        return strips.new_effect(name="blocker", type="COLOR", channel=2, frame_start=start, frame_end=end)


def describe(strip):
    info = {
        "name": strip.name,
        "type": strip.type,
        "channel": strip.channel,
        "frame_start": int(strip.frame_start),
        "frame_final_start": int(strip.frame_final_start),
        "frame_final_end": int(strip.frame_final_end),
        "frame_offset_start": int(strip.frame_offset_start),
        "frame_offset_end": int(strip.frame_offset_end),
        "frame_duration": int(strip.frame_duration),
    }
    if strip.type == "MOVIE":
        info["filepath"] = bpy.path.abspath(strip.filepath)
    if strip.type == "SOUND":
        info["sound"] = bpy.path.abspath(strip.sound.filepath)
    return info


def main(spec):
    result = {"ok": False}
    try:
        prefs = bpy.context.preferences.addons[install(spec)].preferences
        prefs.cli_path = spec["cli"]
        result["blender"] = bpy.app.version_string

        scene = bpy.context.scene
        scene.render.fps = spec.get("fps", 25)
        editor = scene.sequence_editor_create()
        strips = top_strips(editor)
        movie = strips.new_movie(
            name="clip", filepath=spec["movie"], channel=1, frame_start=spec["frame_start"]
        )
        movie.frame_offset_start = spec["trim_start"]
        movie.frame_offset_end = spec["trim_end"]
        sound = strips.new_sound(
            name="clip-sound", filepath=spec["movie"], channel=5, frame_start=spec["frame_start"]
        )
        blocker = new_color_strip(strips, movie.frame_final_start, movie.frame_final_end)
        if spec.get("ref_image"):
            marker = scene.timeline_markers.new("key", frame=movie.frame_final_start + 1)
            ref = scene.chromaflow.references.add()
            ref.marker = marker.name
            ref.image = spec["ref_image"]
        editor.active_strip = movie
        before = {s.name for s in strips_of(editor)}
        result["sound_before"] = describe(sound)
        result["source"] = describe(movie)
        result["blocker"] = describe(blocker)

        op = getattr(bpy.ops.chromaflow, f"{spec['verb']}_strip")
        try:
            result["operator"] = sorted(op())
        except RuntimeError as err:  # an operator that reports an error raises in background mode
            result["operator"] = ["CANCELLED"]
            result["op_error"] = str(err)
        result["status"] = scene.chromaflow.status + " " + result.get("op_error", "")
        result["new"] = [describe(s) for s in strips_of(editor) if s.name not in before]
        result["sound_after"] = describe(sound)
        result["ok"] = True
    except Exception:
        result["error"] = traceback.format_exc()
    with open(spec["result"], "w", encoding="utf-8") as fh:
        json.dump(result, fh, indent=1)


with open(sys.argv[sys.argv.index("--") + 1], encoding="utf-8") as spec_file:
    main(json.load(spec_file))
