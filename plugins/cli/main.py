"""Entry point of the ``chromaflow`` console script.

Exit codes: 0 success; 1 unexpected internal error; 2 bad option or usage; 3 bad or unreadable input;
4 model or weights problem; 5 device problem; 6 output cannot be written; 130 interrupted (Ctrl-C).
"""

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from chromaflow import __version__
from chromaflow.core.errors import ChromaflowError

# Each verb lives in its own module of this package and exposes register(subparsers).
VERB_MODULES = ("info", "image", "colorize", "deflicker", "deepfake", "models", "train", "bench")

EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="chromaflow",
        description="Colorize grayscale images and video, carry keyframe colours through shots, "
        "and score faces for manipulation.",
    )
    parser.add_argument("--version", action="version", version=f"chromaflow {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log details to stderr")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    sub.required = True
    for name in VERB_MODULES:
        importlib.import_module(f"chromaflow.plugins.cli.{name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="chromaflow: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return int(args.func(args) or 0)
    except ChromaflowError as err:
        print(f"chromaflow: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("chromaflow: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader of our stdout went away (e.g. `| head`); nothing more to say.
        return EXIT_INTERNAL


if __name__ == "__main__":
    raise SystemExit(main())
