"""One operator run from start to new strip: read the panel, build the command, run the CLI, place the result.

The run itself (process, progress, private output folder, cancel) is the shared client's :class:`CliRun`; this module
turns Blender's state into its arguments and its result back into a strip.
"""

import os
import sys
from collections.abc import Callable
from pathlib import Path

import bpy

from . import commands, placement, properties, strips
from .chromaflow_cli_client import ClientError, CliRun, cli_prefix

ACTIVE: dict[str, "Job"] = {}  # the run in progress, if any (one at a time), under the key "job"

Argv = Callable[[str | None, str | None], list[str]]  # (video out, scores out) -> the command


def _choice(value: str) -> str:
    """An enum value for the CLI ('' = let the CLI choose)."""
    return "" if value == "DEFAULT" else value


class Job:
    """Everything one operator run needs between its start and the new strip; starting it starts the CLI."""

    def __init__(self, context: bpy.types.Context, mode: str) -> None:
        strip = strips.active_movie(context)
        if strip is None:
            raise ClientError("select a movie strip first (make it the active strip)")
        settings = context.scene.chromaflow
        prefs = properties.preferences(context)
        configured = bpy.path.abspath(prefs.cli_path) if prefs and prefs.cli_path else ""
        prefix = cli_prefix(configured, properties.SETTING)
        source = bpy.path.abspath(strip.filepath)
        if not os.path.isfile(source):
            raise ClientError(f"the strip's movie {source} does not exist; relink it first")
        folder = bpy.path.abspath(settings.output_dir) if settings.output_dir else ""
        self.mode = mode
        self.scene = context.scene
        self.strip_name = strip.name
        self.geometry = strips.geometry(strip)
        self.notes: list[str] = []
        argv = self._command(context, prefix, prefs.device if prefs else "", source)
        wants_video = mode != "deepfake" or settings.overlay
        self.video = commands.output_path(source, mode, folder) if wants_video else None
        scores = commands.output_path(source, mode, folder, ext=".jsonl") if mode == "deepfake" else None
        video = self.video

        def argv_for(work: Path) -> list[str]:
            return argv(
                str(work / video.name) if video else None, str(work / scores.name) if scores else None
            )

        finals = [p for p in (video, scores) if p is not None]
        self.run = CliRun(
            argv_for, finals, expected_frames=self.geometry.frame_duration, setting=properties.SETTING
        )
        print("chromaflow:", " ".join(self.run.argv), file=sys.stderr)

    def _command(self, context: bpy.types.Context, prefix: list[str], device: str, source: str) -> Argv:
        """The verb's command, from the panel's settings; colorize also reads its keyframes from the markers."""
        settings = context.scene.chromaflow
        if self.mode == "colorize":
            refs, self.notes = placement.references_from_markers(
                strips.markers(context),
                {r.marker: r.image for r in settings.references if r.image},
                self.geometry,
                resolve=bpy.path.abspath,
            )
            colorize = commands.ColorizeOptions(
                model=settings.model,
                smooth=settings.smooth if settings.use_smooth else 0,
                references=refs,
                device=device,
                project=bpy.path.abspath(settings.project) if settings.project else "",
            )
            return lambda video, _: commands.colorize_command(prefix, source, str(video), colorize)
        if self.mode == "deflicker":
            deflicker = commands.DeflickerOptions(
                radius=settings.deflicker_radius, strength=settings.deflicker_strength
            )
            return lambda video, _: commands.deflicker_command(prefix, source, str(video), deflicker)
        deepfake = commands.DeepfakeOptions(
            detector=_choice(settings.detector),
            classifier=_choice(settings.classifier),
            overlay=settings.overlay,
            device=device,
        )
        return lambda video, scores: commands.deepfake_command(prefix, source, video, scores, deepfake)

    def place(self) -> bpy.types.bpy_struct | None:
        """Add the result video as a new movie strip above the source; ``None`` when there is no video."""
        if self.video is None:
            return None
        editor = self.scene.sequence_editor
        source = strips.all_strips(editor).get(self.strip_name)
        if source is None:
            raise ClientError(f"the source strip '{self.strip_name}' is gone; the result is at {self.video}")
        geometry = strips.geometry(source)
        holder = strips.container(editor, source)
        occupied = [
            (s.channel, int(s.frame_final_start), int(s.frame_final_end)) for s in holder if s != source
        ]
        channel = placement.choose_channel(geometry, occupied)
        new = holder.new_movie(
            name=f"{source.name}.{commands.SUFFIXES[self.mode]}",
            filepath=str(self.video),
            channel=channel,
            frame_start=geometry.frame_start,
        )
        plan = placement.plan_placement(geometry, occupied, result_frames=int(new.frame_duration))
        new.frame_offset_start = plan.frame_offset_start
        new.frame_offset_end = plan.frame_offset_end
        if new.channel != plan.channel:
            new.channel = plan.channel
        strips.copy_look(source, new)
        return new

    def done_message(self, new: bpy.types.bpy_struct | None) -> str:
        """What the run did, for the panel and the report: the new strip, the verdict, the settings used."""
        summary = self.run.summary
        video = summary.get("video")
        score = video.get("score") if isinstance(video, dict) else None
        parts = [f"chromaflow {self.mode}: done"]
        if new is not None:
            parts.append(f"new strip '{new.name}' on channel {new.channel}")
        if isinstance(score, (int, float)):
            parts.append(f"{'FAKE' if score >= 0.5 else 'REAL'} (video score {score:.3f})")
        elif self.mode == "deepfake":
            parts.append("no face found")
        if self.mode == "deflicker" and isinstance(summary.get("radius"), int):
            parts.append(f"radius {summary['radius']}, strength {summary.get('strength')}")
        parts.extend(self.notes)
        return "; ".join(parts)
