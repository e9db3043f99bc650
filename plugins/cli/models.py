"""`chromaflow models`: list, download, import and verify model weights."""

import argparse

from chromaflow.plugins.cli.pending import register_pending


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    register_pending(sub, "models", "list, download, import and verify model weights")
