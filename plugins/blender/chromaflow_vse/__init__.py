"""chromaflow for Blender's Video Sequence Editor: colorize a movie strip, deflicker it, or scan it for deepfakes.

The add-on never imports torch or chromaflow: it runs the ``chromaflow`` command line of the environment set in
the add-on preferences, in a subprocess, shows its progress, and adds the result as a new movie strip on a free
channel above the source strip with the same start and trims. Esc cancels the run and deletes what it wrote.

Scripts (and ``blender -b``) get a blocking run: ``bpy.ops.chromaflow.colorize_strip()`` waits for the CLI.
Works with Blender 3.4+ (``sequences``) and 4.x (``strips``).
"""

# No `from __future__ import annotations`: Blender reads the property annotations as objects.
import os
import sys
from pathlib import Path

import bpy
from bpy.props import (
    BoolProperty,
    CollectionProperty,
    EnumProperty,
    FloatProperty,
    IntProperty,
    PointerProperty,
    StringProperty,
)

if "logic" in locals():  # add-on reload (F3 > Reload Scripts)
    import importlib

    logic = importlib.reload(logic)  # noqa: F821
else:
    from . import logic

bl_info = {
    "name": "chromaflow VSE",
    "author": "chromaflow developers",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Sequencer > Sidebar > Chromaflow",
    "description": "Colorize, deflicker and deepfake-scan movie strips with the chromaflow command line",
    "category": "Sequencer",
}

_ACTIVE: dict[str, object] = {}  # the run in progress, if any (one at a time)


# ----------------------------------------------------------------------------------------------------------------
# API differences between Blender 3.x and 4.x


def _top_strips(editor: bpy.types.SequenceEditor) -> bpy.types.bpy_prop_collection:
    return editor.strips if hasattr(editor, "strips") else editor.sequences


def _all_strips(editor: bpy.types.SequenceEditor) -> bpy.types.bpy_prop_collection:
    return editor.strips_all if hasattr(editor, "strips_all") else editor.sequences_all


def _children(meta: bpy.types.bpy_struct) -> bpy.types.bpy_prop_collection:
    return meta.strips if hasattr(meta, "strips") else meta.sequences


def _container(
    editor: bpy.types.SequenceEditor, strip: bpy.types.bpy_struct
) -> bpy.types.bpy_prop_collection:
    """The collection that holds ``strip``: the top level or the meta strip it is inside."""
    top = _top_strips(editor)
    if any(s == strip for s in top):
        return top
    for meta in _all_strips(editor):
        if meta.type == "META" and any(s == strip for s in _children(meta)):
            return _children(meta)
    return top


def _geometry(strip: bpy.types.bpy_struct) -> logic.StripGeometry:
    return logic.StripGeometry(
        channel=strip.channel,
        frame_start=int(strip.frame_start),
        frame_offset_start=int(strip.frame_offset_start),
        frame_offset_end=int(strip.frame_offset_end),
        frame_duration=int(strip.frame_duration),
    )


def _movie_strip(context: bpy.types.Context) -> bpy.types.bpy_struct | None:
    editor = context.scene.sequence_editor
    strip = editor.active_strip if editor else None
    return strip if strip is not None and strip.type == "MOVIE" else None


# ----------------------------------------------------------------------------------------------------------------
# Settings


def _preferences(context: bpy.types.Context) -> bpy.types.AddonPreferences | None:
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


# ----------------------------------------------------------------------------------------------------------------
# The run: prepare, poll or wait, place the result


def _choice(value: str) -> str:
    """An enum value for the CLI ('' = let the CLI choose)."""
    return "" if value == "DEFAULT" else value


def _markers_in(context: bpy.types.Context) -> list[tuple[str, int]]:
    return [(m.name, int(m.frame)) for m in context.scene.timeline_markers]


class _Job:
    """Everything one operator run needs between its start and the new strip."""

    def __init__(self, context: bpy.types.Context, mode: str) -> None:
        strip = _movie_strip(context)
        if strip is None:
            raise logic.AddonError("select a movie strip first (make it the active strip)")
        settings = context.scene.chromaflow
        prefs = _preferences(context)
        configured = (prefs.cli_path if prefs else "") or os.environ.get("CHROMAFLOW_CLI", "")
        prefix = logic.cli_prefix(bpy.path.abspath(configured) if configured else "")
        device = prefs.device if prefs else ""
        source = bpy.path.abspath(strip.filepath)
        if not os.path.isfile(source):
            raise logic.AddonError(f"the strip's movie {source} does not exist; relink it first")
        folder = bpy.path.abspath(settings.output_dir) if settings.output_dir else ""
        self.mode = mode
        self.scene = context.scene
        self.strip_name = strip.name
        self.geometry = _geometry(strip)
        self.video: Path | None = None
        self.notes: list[str] = []
        if mode == "colorize":
            refs, self.notes = logic.references_from_markers(
                _markers_in(context),
                {r.marker: r.image for r in settings.references if r.image},
                self.geometry,
                resolve=bpy.path.abspath,
            )
            opts = logic.ColorizeOptions(
                model=settings.model,
                smooth=settings.smooth if settings.use_smooth else 0,
                references=refs,
                device=device,
            )
            self.video = logic.output_path(source, mode, folder)
            finals = [self.video]
            video = self.video

            def argv(work: Path) -> list[str]:
                return logic.colorize_command(prefix, source, str(work / video.name), opts)
        elif mode == "deflicker":
            fopts = logic.DeflickerOptions(
                radius=settings.deflicker_radius, strength=settings.deflicker_strength
            )
            self.video = logic.output_path(source, mode, folder)
            finals = [self.video]
            video = self.video

            def argv(work: Path) -> list[str]:
                return logic.deflicker_command(prefix, source, str(work / video.name), fopts)
        else:
            dopts = logic.DeepfakeOptions(
                detector=_choice(settings.detector),
                classifier=_choice(settings.classifier),
                overlay=settings.overlay,
                device=device,
            )
            self.video = logic.output_path(source, mode, folder) if settings.overlay else None
            scores = logic.output_path(source, mode, folder, ext=".jsonl")
            finals = [p for p in (self.video, scores) if p is not None]
            out_name = self.video.name if self.video else None

            def argv(work: Path) -> list[str]:
                out = str(work / out_name) if out_name else None
                return logic.deepfake_command(prefix, source, out, str(work / scores.name), dopts)

        self.run = logic.CliRun(argv, finals, expected_frames=self.geometry.frame_duration)
        print("chromaflow:", " ".join(self.run.argv), file=sys.stderr)

    def place(self, context: bpy.types.Context) -> bpy.types.bpy_struct | None:
        """Add the result video as a new movie strip above the source; ``None`` when there is no video."""
        if self.video is None:
            return None
        editor = self.scene.sequence_editor
        source = _all_strips(editor).get(self.strip_name)
        if source is None:
            raise logic.AddonError(
                f"the source strip '{self.strip_name}' is gone; the result is at {self.video}"
            )
        geometry = _geometry(source)
        container = _container(editor, source)
        occupied = [
            (s.channel, int(s.frame_final_start), int(s.frame_final_end)) for s in container if s != source
        ]
        channel = logic.choose_channel(geometry, occupied)
        tag = logic.SUFFIXES[self.mode]
        new = container.new_movie(
            name=f"{source.name}.{tag}",
            filepath=str(self.video),
            channel=channel,
            frame_start=geometry.frame_start,
        )
        plan = logic.plan_placement(geometry, occupied, result_frames=int(new.frame_duration))
        new.frame_offset_start = plan.frame_offset_start
        new.frame_offset_end = plan.frame_offset_end
        if new.channel != plan.channel:
            new.channel = plan.channel
        _copy_look(source, new)
        return new


def _copy_look(source: bpy.types.bpy_struct, new: bpy.types.bpy_struct) -> None:
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


def _report_done(op: bpy.types.Operator, job: _Job, new: bpy.types.bpy_struct | None) -> None:
    settings = job.scene.chromaflow
    settings.progress = 1.0
    summary = job.run.summary
    video = summary.get("video")
    score = video.get("score") if isinstance(video, dict) else None
    parts = [f"chromaflow {job.mode}: done"]
    if new is not None:
        parts.append(f"new strip '{new.name}' on channel {new.channel}")
    if isinstance(score, (int, float)):
        parts.append(f"{'FAKE' if score >= 0.5 else 'REAL'} (video score {score:.3f})")
    elif job.mode == "deepfake":
        parts.append("no face found")
    if job.mode == "deflicker" and isinstance(summary.get("radius"), int):
        parts.append(f"radius {summary['radius']}, strength {summary.get('strength')}")
    parts.extend(job.notes)
    settings.status = "; ".join(parts)
    op.report({"INFO"}, settings.status)


class _RunStrip:
    """Shared body of the run operators: blocking ``execute``, modal ``invoke`` with a timer and Esc."""

    mode = "colorize"
    _job = None  # the _Job of a modal run
    _timer = None

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _movie_strip(context) is not None and "job" not in _ACTIVE

    def _start(self, context: bpy.types.Context) -> _Job | None:
        try:
            job = _Job(context, self.mode)
        except logic.AddonError as err:
            self.report({"ERROR"}, str(err))
            return None
        context.scene.chromaflow.status = f"chromaflow {self.mode}: starting"
        context.scene.chromaflow.progress = 0.0
        return job

    def _complete(self, context: bpy.types.Context, job: _Job) -> set[str]:
        try:
            job.run.finish()
            new = job.place(context)
        except logic.AddonError as err:
            job.scene.chromaflow.status = f"chromaflow {self.mode}: failed: {err}"
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        _report_done(self, job, new)
        return {"FINISHED"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Blocking run (scripts, ``blender -b``): progress goes to stderr."""
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}

        def show(p: logic.Progress) -> None:
            print(f"chromaflow {self.mode}: {p.describe()}", file=sys.stderr, flush=True)

        try:
            job.run.wait(show)
        except KeyboardInterrupt:
            job.run.cancel()
            self.report({"WARNING"}, "chromaflow run cancelled; nothing was written")
            return {"CANCELLED"}
        return self._complete(context, job)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background:
            return self.execute(context)
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        self._job = job
        _ACTIVE["job"] = job
        wm = context.window_manager
        self._timer = wm.event_timer_add(0.25, window=context.window)
        wm.modal_handler_add(self)
        wm.progress_begin(0, 1000)
        return {"RUNNING_MODAL"}

    def _stop_ui(self, context: bpy.types.Context) -> None:
        wm = context.window_manager
        if self._timer is not None:
            wm.event_timer_remove(self._timer)
            self._timer = None
        wm.progress_end()
        if context.workspace is not None:
            context.workspace.status_text_set(None)
        _ACTIVE.pop("job", None)
        _redraw(context)

    def modal(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        job = self._job
        assert job is not None
        if event.type == "ESC":
            job.run.cancel()
            self._stop_ui(context)
            job.scene.chromaflow.status = f"chromaflow {self.mode}: cancelled; nothing was written"
            self.report({"WARNING"}, job.scene.chromaflow.status)
            return {"CANCELLED"}
        if event.type != "TIMER":
            return {"PASS_THROUGH"}
        finished, progress = job.run.poll()
        fraction = progress.fraction
        settings = job.scene.chromaflow
        settings.status = f"chromaflow {self.mode}: {progress.describe()} (Esc cancels)"
        if fraction is not None:
            settings.progress = fraction
            context.window_manager.progress_update(int(fraction * 1000))
        if context.workspace is not None:
            context.workspace.status_text_set(settings.status)
        _redraw(context)
        if not finished:
            return {"RUNNING_MODAL"}
        self._stop_ui(context)
        return self._complete(context, job)


def _redraw(context: bpy.types.Context) -> None:
    screen = context.screen
    for area in screen.areas if screen else ():
        if area.type == "SEQUENCE_EDITOR":
            area.tag_redraw()


class CHROMAFLOW_OT_colorize_strip(_RunStrip, bpy.types.Operator):  # noqa: N801 - Blender's naming convention
    """Colorize the active movie strip with chromaflow and add the result on the channel above"""

    bl_idname = "chromaflow.colorize_strip"
    bl_label = "Colorize Strip"
    mode = "colorize"


class CHROMAFLOW_OT_deflicker_strip(_RunStrip, bpy.types.Operator):  # noqa: N801 - Blender's naming convention
    """Remove colour flicker from the active movie strip (luma kept) and add the result on the channel above"""

    bl_idname = "chromaflow.deflicker_strip"
    bl_label = "Deflicker Strip"
    mode = "deflicker"


class CHROMAFLOW_OT_deepfake_strip(_RunStrip, bpy.types.Operator):  # noqa: N801 - Blender's naming convention
    """Scan the active movie strip's faces for manipulation; with Overlay, add the annotated video above it"""

    bl_idname = "chromaflow.deepfake_strip"
    bl_label = "Deepfake Scan Strip"
    mode = "deepfake"


class CHROMAFLOW_OT_sync_markers(bpy.types.Operator):  # noqa: N801 - Blender's naming convention
    """List the timeline markers over the active strip so a coloured still can be chosen for each"""

    bl_idname = "chromaflow.sync_markers"
    bl_label = "Keyframes from Markers"
    bl_options = {"REGISTER", "UNDO"}  # noqa: RUF012 - read by Blender

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return _movie_strip(context) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        geometry = _geometry(_movie_strip(context))
        refs = context.scene.chromaflow.references
        inside = [
            name for name, frame in _markers_in(context) if geometry.final_start <= frame < geometry.final_end
        ]
        known = {r.marker for r in refs}
        for name in inside:
            if name not in known:
                item = refs.add()
                item.marker = name
                item.image = name if logic.looks_like_image(name) else ""
        self.report({"INFO"}, f"{len(inside)} marker(s) over the strip")
        return {"FINISHED"}


class CHROMAFLOW_PT_panel(bpy.types.Panel):  # noqa: N801 - Blender's naming convention
    bl_label = "chromaflow"
    bl_space_type = "SEQUENCE_EDITOR"
    bl_region_type = "UI"
    bl_category = "Chromaflow"

    def draw(self, context: bpy.types.Context) -> None:
        layout = self.layout
        settings = context.scene.chromaflow
        strip = _movie_strip(context)
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
            geometry = _geometry(strip)
            frames = dict(_markers_in(context))
            for ref in settings.references:
                frame = frames.get(ref.marker)
                if frame is None or not geometry.final_start <= frame < geometry.final_end:
                    continue
                row = box.row(align=True)
                row.label(text=f"{ref.marker} @ {frame}")
                row.prop(ref, "image", text="")
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
            if "job" in _ACTIVE:
                layout.prop(settings, "progress", slider=True)
            layout.label(text=settings.status)


CLASSES = (
    ChromaflowPreferences,
    ChromaflowReference,
    ChromaflowSettings,
    CHROMAFLOW_OT_colorize_strip,
    CHROMAFLOW_OT_deflicker_strip,
    CHROMAFLOW_OT_deepfake_strip,
    CHROMAFLOW_OT_sync_markers,
    CHROMAFLOW_PT_panel,
)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    bpy.types.Scene.chromaflow = PointerProperty(type=ChromaflowSettings)


def unregister() -> None:
    job = _ACTIVE.pop("job", None)
    if isinstance(job, _Job):
        job.run.cancel()
    del bpy.types.Scene.chromaflow
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
