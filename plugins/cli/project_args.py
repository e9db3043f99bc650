"""``chromaflow colorize --project FILE``: the studio's project file in place of the colour flags.

A project (:mod:`chromaflow.core.project`) carries the model, its size, hints, keyframes, transfer and smoothing;
the CLI keeps the host's own choices (device, precision, batch, engine, encoding). A colour flag given with a
project is refused rather than one of the two silently preferred.
"""

import argparse
from pathlib import Path

from chromaflow.core.errors import UsageError
from chromaflow.core.options import ColorizeOptions
from chromaflow.core.project import Project, load_project
from chromaflow.core.scenecut import DEFAULT_THRESHOLD

# the flags a project replaces, with the value argparse gives when they are left out
_REPLACED = {
    "model": ColorizeOptions.model,
    "size": None,
    "render_factor": None,
    "mix": None,
    "mix_rule": None,
    "mix_softness": None,
    "arch": None,
    "hint": None,
    "hints_json": None,
    "ref": None,
    "transfer": ColorizeOptions.transfer,
    "smooth": ColorizeOptions.smooth,
    "no_smooth": False,
    "scene_cut": DEFAULT_THRESHOLD,
}


def add_project_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument(
        "--project",
        metavar="FILE",
        help="a chromaflow studio project (.json): its model, size, hints, keyframes, transfer and smoothing "
        "replace the colour flags (device, batch, engine and encoding flags still apply)",
    )


def project_of(args: argparse.Namespace) -> Project | None:
    """The run's project (read once), None without ``--project``; colour flags given with it are refused."""
    if not getattr(args, "project", None):
        return None
    given = [
        "--" + name.replace("_", "-")
        for name, default in _REPLACED.items()
        if getattr(args, name, default) != default
    ]
    if given:
        raise UsageError(
            f"--project sets the colour options itself; leave out {', '.join(given)} (edit them in the studio)"
        )
    # read once per run: the write check, the options and the nodes all ask
    loaded = getattr(args, "_project_loaded", None)
    if loaded is None:
        loaded = load_project(Path(args.project).expanduser())
        args._project_loaded = loaded
    return loaded


def project_options(args: argparse.Namespace, project: Project) -> ColorizeOptions:
    """The project's options with the host's device, precision, batch and engine."""
    return project.options(
        device=args.device, precision=args.precision, batch_size=args.batch, engine=args.engine
    )


def project_reads(args: argparse.Namespace) -> list[tuple[str, str | None]]:
    """What a project run reads: the project file and its reference images (for the write-safety check)."""
    if not getattr(args, "project", None):
        return []
    reads: list[tuple[str, str | None]] = [("the project file --project", args.project)]
    project = project_of(args)
    assert project is not None
    reads += [(f"the project's keyframe {n}", str(p)) for n, p in project.reference_paths().items()]
    return reads
