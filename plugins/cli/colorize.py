"""`chromaflow colorize`: colorize video."""

import argparse

from chromaflow.plugins.cli.pending import register_pending


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    register_pending(sub, "colorize", "colorize video")
