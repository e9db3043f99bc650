"""The add-on's CLI commands: the operators' options, the argv of each verb, where a result goes.

Plain Python (no ``bpy``), unit-tested without Blender; it runs on Blender's bundled Python (3.10 for Blender 3.4).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

SUFFIXES = {"colorize": "colorized", "deepfake": "deepfake", "deflicker": "deflickered"}
# the CLI's --classifier names (chromaflow.core.options.CLASSIFIERS; the add-on cannot import chromaflow, a test
# keeps the two equal): MesoNet's four, the DFDC winner's seven EfficientNet-B7 checkpoints and their ensemble
CLASSIFIERS = (
    "meso4-df", "meso4-f2f", "mesoinception-df", "mesoinception-f2f",
    *(f"effnet-b7-dfdc-{k}" for k in range(1, 8)), "effnet-b7-dfdc",
)  # fmt: skip


@dataclass
class ColorizeOptions:
    """Options of the ``Colorize strip`` operator, as the panel holds them."""

    model: str = "base"
    smooth: int | None = None  # temporal smoothing radius in frames; None: the CLI's default, 0: off
    references: list[tuple[int, str]] = field(default_factory=list)  # (frame index in the file, image path)
    device: str = ""  # "" = the CLI's default
    extra: list[str] = field(default_factory=list)
    project: str = ""  # a studio project file: its model, hints and keyframes replace the above


@dataclass
class DeepfakeOptions:
    """Options of the ``Deepfake scan strip`` operator."""

    detector: str = ""
    classifier: str = ""
    overlay: bool = True
    device: str = ""
    extra: list[str] = field(default_factory=list)


@dataclass
class DeflickerOptions:
    """Options of the ``Deflicker strip`` operator; ``None`` leaves a setting to the CLI's default."""

    radius: int | None = None  # frames on either side a frame's colour is smoothed with
    strength: float | None = None  # weight of the neighbouring frames; 0: no change
    extra: list[str] = field(default_factory=list)


def colorize_command(prefix: Sequence[str], source: str, output: str, opts: ColorizeOptions) -> list[str]:
    """``chromaflow colorize IN OUT ...`` for a movie file; ``--json`` so the summary can be read back."""
    argv = [*prefix, "colorize", source, output, "--json"]
    if opts.project:  # the studio's project carries the colour options; the CLI refuses them beside it
        argv += ["--project", opts.project]
        return argv + (["--device", opts.device] if opts.device else []) + list(opts.extra)
    if opts.model:
        argv += ["--model", opts.model]
    if opts.smooth is not None:
        argv += ["--no-smooth"] if opts.smooth <= 0 else ["--smooth", str(int(opts.smooth))]
    for index, image in sorted(opts.references):
        argv += ["--ref", f"{index}={image}"]
    if opts.device:
        argv += ["--device", opts.device]
    return argv + list(opts.extra)


def deepfake_command(
    prefix: Sequence[str], source: str, output: str | None, scores: str | None, opts: DeepfakeOptions
) -> list[str]:
    """``chromaflow deepfake IN [OUT] --scores F.jsonl ...``; no OUT when the overlay is off."""
    argv = [*prefix, "deepfake", source]
    if opts.overlay and output:
        argv.append(output)
    argv.append("--json")
    if scores:
        argv += ["--scores", scores]
    if opts.detector:
        argv += ["--detector", opts.detector]
    if opts.classifier:
        argv += ["--classifier", opts.classifier]
    if opts.device:
        argv += ["--device", opts.device]
    return argv + list(opts.extra)


def deflicker_command(prefix: Sequence[str], source: str, output: str, opts: DeflickerOptions) -> list[str]:
    """``chromaflow deflicker IN OUT ...`` for a movie already in colour; ``--json`` for the summary."""
    argv = [*prefix, "deflicker", source, output, "--json"]
    if opts.radius is not None:
        argv += ["--radius", str(int(opts.radius))]
    if opts.strength is not None:
        argv += ["--strength", f"{float(opts.strength):g}"]
    return argv + list(opts.extra)


def output_path(source: str, mode: str, folder: str = "", suffix: str = "", ext: str = ".mp4") -> Path:
    """Where a result goes: ``<folder or source folder>/<stem>.<suffix><ext>``, never an existing file."""
    src = Path(source)
    dest_dir = Path(folder) if folder else src.parent
    tag = suffix or SUFFIXES[mode]
    candidate = dest_dir / f"{src.stem}.{tag}{ext}"
    n = 1
    while candidate.exists() or candidate.resolve() == src.resolve():
        candidate = dest_dir / f"{src.stem}.{tag}-{n}{ext}"
        n += 1
    return candidate
