"""Write the colour-model list the Blender add-on and the OBS script offer (``COLOUR_MODELS`` in the shared CLI client).

The hosts run on their application's Python, without torch or chromaflow, so they cannot read the model registry;
this tool copies its colour models (name, input side, description) into ``plugins/cli_client/chromaflow_cli_client.py``
between the ``# host-models:start`` / ``# host-models:end`` markers. ``--check`` only compares (exit 1 when the list
is stale), which the test suite runs, so a model added to the registry cannot be missing from the hosts.

Usage: ``python tools/host_models.py [--check]``
"""

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLIENT = REPO / "plugins" / "cli_client" / "chromaflow_cli_client.py"
START, END = "# host-models:start\n", "# host-models:end\n"


def colour_models() -> list[tuple[str, int, str]]:
    """(name, input side, description) of every colour model in the registry, in its listing order."""
    from chromaflow.core import registry

    specs = (registry.get_spec(name) for name in registry.names())
    return [(s.name, s.input_size, s.description) for s in specs if s.kind == "colorizer"]


def render(models: list[tuple[str, int, str]]) -> str:
    """The list as Python source, one entry over several lines, as ``ruff format`` leaves it."""
    lines = ["COLOUR_MODELS: tuple[tuple[str, int, str], ...] = ("]
    for name, side, text in models:
        lines += [
            "    (",
            f"        {_quoted(name)},",
            f"        {side},",
            f"        {_quoted(text)},",
            "    ),",
        ]
    return "\n".join([*lines, ")"]) + "\n"


def _quoted(text: str) -> str:
    """A string literal in the formatter's preferred quotes (double, unless the text holds some)."""
    return repr(text) if '"' in text else json.dumps(text, ensure_ascii=False)


def splice(text: str, block: str) -> str:
    if START not in text or END not in text:
        raise SystemExit(f"{CLIENT} lacks the {START.strip()} / {END.strip()} markers")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{START}{block}{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the client's list is not current")
    args = parser.parse_args(argv)
    current = CLIENT.read_text(encoding="utf-8")
    wanted = splice(current, render(colour_models()))
    if args.check:
        if wanted != current:
            print("the hosts' colour-model list is stale: run `python tools/host_models.py`", file=sys.stderr)
            return 1
        return 0
    CLIENT.write_text(wanted, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
