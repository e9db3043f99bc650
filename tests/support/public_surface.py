"""What users build on and what a restructuring must keep: import paths, CLI flags, host signatures.

:func:`current_surface` reads it from the code; ``tests/support/public_surface.json`` holds the surface pinned before the
round-2 restructuring (regenerate with ``python -m support.public_surface > tests/support/public_surface.json`` from tests/ only when a
change to the public surface is deliberate and documented).
"""

import argparse
import importlib
import inspect
import json
import re
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
_FROM_IMPORT = re.compile(r"^from (chromaflow[\w.]*) import ([\w, ]+)$", re.MULTILINE)
HOST_CALLABLES = {
    "chromaflow.filters.vapoursynth": ["colorize", "transfer", "deepfake", "deflicker"],
    "chromaflow.filters.pyav": ["ColorizeNode", "DeepfakeNode", "DeflickerNode", "FilterNode", "transcode"],
    "chromaflow.core.colorizer": ["Colorizer", "colorize_bgr"],
}


def readme_imports() -> dict[str, list[str]]:
    """``from chromaflow... import a, b`` lines of the README and the shipped .vpy examples."""
    found: dict[str, set[str]] = {}
    texts = [
        REPO / "README.md",
        REPO / "examples" / "colorize.vpy",
        REPO / "plugins/ffmpeg/chromaflow_template.vpy",
    ]
    for path in texts:
        for module, names in _FROM_IMPORT.findall(path.read_text()):
            found.setdefault(module, set()).update(n.strip().split(" as ")[0] for n in names.split(","))
    return {m: sorted(n) for m, n in sorted(found.items())}


def _parameters(obj: Any) -> dict[str, str]:
    target = obj.__init__ if inspect.isclass(obj) else obj
    params = inspect.signature(target).parameters
    return {
        name: "<required>" if p.default is inspect.Parameter.empty else repr(p.default)
        for name, p in params.items()
        if name != "self" and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
    }


def host_signatures() -> dict[str, dict[str, str]]:
    out = {}
    for module_name, names in HOST_CALLABLES.items():
        module = importlib.import_module(module_name)
        for name in names:
            out[f"{module_name}.{name}"] = _parameters(getattr(module, name))
    return out


def cli_flags() -> dict[str, list[str]]:
    from chromaflow.plugins.cli.main import build_parser

    parser = build_parser()
    verbs = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    out = {}
    for verb, sub in verbs.choices.items():
        flags: list[str] = []
        for action in sub._actions:
            flags.extend(action.option_strings or [f"<{action.dest}>"])
            if isinstance(action, argparse._SubParsersAction):  # `chromaflow batch colorize ...`
                for inner, inner_sub in action.choices.items():
                    out[f"{verb} {inner}"] = sorted(
                        f for a in inner_sub._actions for f in (a.option_strings or [f"<{a.dest}>"])
                    )
        out[verb] = sorted(flags)
    return out


def current_surface() -> dict[str, Any]:
    return {"imports": readme_imports(), "signatures": host_signatures(), "cli": cli_flags()}


if __name__ == "__main__":
    print(json.dumps(current_surface(), indent=1, sort_keys=True))
