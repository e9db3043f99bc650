"""`chromaflow deepfake`: score faces for manipulation."""

import argparse

from chromaflow.plugins.cli.pending import register_pending


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    register_pending(sub, "deepfake", "score faces for manipulation")
