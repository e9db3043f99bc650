"""Verbs whose engine is not built yet: they exist so the verb structure is stable, and say so when run."""

import argparse

from chromaflow.core.errors import UsageError


def register_pending(
    sub: "argparse._SubParsersAction[argparse.ArgumentParser]", name: str, what: str
) -> None:
    parser = sub.add_parser(name, help=f"{what} (not available in this version yet)")
    parser.add_argument("rest", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)

    def run(args: argparse.Namespace) -> int:
        raise UsageError(f"'chromaflow {name}' ({what}) is not available in this version yet")

    parser.set_defaults(func=run)
