"""The operators users run: Colorize, Deflicker and Deepfake Scan Strip, and Keyframes from Markers.

A run operator is blocking from scripts and ``blender -b`` (``execute``) and modal in the UI (``invoke``): a timer
polls the CLI for progress, Esc cancels it and deletes what it wrote.
"""

import sys
from typing import TYPE_CHECKING

import bpy

from . import placement, strips
from .chromaflow_cli_client import ClientError, Progress
from .job import ACTIVE, Job


def redraw(context: bpy.types.Context) -> None:
    screen = context.screen
    for area in screen.areas if screen else ():
        if area.type == "SEQUENCE_EDITOR":
            area.tag_redraw()


class _RunStrip:
    """Shared body of the run operators: blocking ``execute``, modal ``invoke`` with a timer and Esc."""

    mode = "colorize"
    _job = None  # the Job of a modal run
    _timer = None

    if TYPE_CHECKING:  # given by bpy.types.Operator, the other base of each operator class

        def report(self, type: set[str], message: str) -> None: ...

    @classmethod
    def poll(cls, context: bpy.types.Context) -> bool:
        return strips.active_movie(context) is not None and "job" not in ACTIVE

    def _start(self, context: bpy.types.Context) -> Job | None:
        try:
            job = Job(context, self.mode)
        except ClientError as err:
            self.report({"ERROR"}, str(err))
            return None
        context.scene.chromaflow.status = f"chromaflow {self.mode}: starting"
        context.scene.chromaflow.progress = 0.0
        return job

    def _complete(self, job: Job) -> set[str]:
        settings = job.scene.chromaflow
        try:
            job.run.finish()
            new = job.place()
        except ClientError as err:
            settings.status = f"chromaflow {self.mode}: failed: {err}"
            self.report({"ERROR"}, str(err))
            return {"CANCELLED"}
        settings.progress = 1.0
        settings.status = job.done_message(new)
        self.report({"INFO"}, settings.status)
        return {"FINISHED"}

    def execute(self, context: bpy.types.Context) -> set[str]:
        """Blocking run (scripts, ``blender -b``): progress goes to stderr."""
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}

        def show(p: Progress) -> None:
            print(f"chromaflow {self.mode}: {p.describe()}", file=sys.stderr, flush=True)

        try:
            job.run.wait(show)
        except KeyboardInterrupt:
            job.run.cancel()
            self.report({"WARNING"}, "chromaflow run cancelled; nothing was written")
            return {"CANCELLED"}
        return self._complete(job)

    def invoke(self, context: bpy.types.Context, event: bpy.types.Event) -> set[str]:
        if bpy.app.background:
            return self.execute(context)
        job = self._start(context)
        if job is None:
            return {"CANCELLED"}
        self._job = job
        ACTIVE["job"] = job
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
        ACTIVE.pop("job", None)
        redraw(context)

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
        redraw(context)
        if not finished:
            return {"RUNNING_MODAL"}
        self._stop_ui(context)
        return self._complete(job)


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
        return strips.active_movie(context) is not None

    def execute(self, context: bpy.types.Context) -> set[str]:
        geometry = strips.geometry(strips.active_movie(context))
        refs = context.scene.chromaflow.references
        inside = [
            name
            for name, frame in strips.markers(context)
            if geometry.final_start <= frame < geometry.final_end
        ]
        known = {r.marker for r in refs}
        for name in inside:
            if name not in known:
                item = refs.add()
                item.marker = name
                item.image = name if placement.looks_like_image(name) else ""
        self.report({"INFO"}, f"{len(inside)} marker(s) over the strip")
        return {"FINISHED"}


CLASSES = (
    CHROMAFLOW_OT_colorize_strip,
    CHROMAFLOW_OT_deflicker_strip,
    CHROMAFLOW_OT_deepfake_strip,
    CHROMAFLOW_OT_sync_markers,
)
