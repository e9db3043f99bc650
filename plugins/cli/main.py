"""Entry point of the ``chromaflow`` console script.

Exit codes: 0 success; 1 unexpected internal error; 2 bad option or usage; 3 bad or unreadable input;
4 model or weights problem; 5 device problem; 6 output cannot be written (or would overwrite an input or another
output); 130 interrupted (Ctrl-C, SIGINT); 143 terminated (SIGTERM); 129 hung up (SIGHUP).

The stop-signal handlers go in before the verbs (and with them torch) are imported, so a signal during start-up
is a clean exit too; any signal leaves no partial file behind (:mod:`chromaflow.core.stopping`).
"""

import argparse
import importlib
import logging
import signal
import sys
from collections.abc import Sequence

from chromaflow import __version__
from chromaflow.core import stopping
from chromaflow.core.errors import ChromaflowError
from chromaflow.core.process_tuning import claim_process

# Each verb lives in its own module of this package and exposes register(subparsers).
VERB_MODULES = (
    "info",
    "image",
    "colorize",
    "deflicker",
    "deepfake",
    "models",
    "train",
    "bench",
    "batch",
    "studio",
)

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143
EXIT_HUNG_UP = 129
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
    if argv is None:  # the console script: the process is ours (chromaflow.core.process_tuning says why)
        claim_process()
    with stopping.handling_signals():
        try:
            return _run(argv)
        except ChromaflowError as err:
            print(f"chromaflow: error: {err}", file=sys.stderr)
            return err.exit_code
        except KeyboardInterrupt as err:
            stop = err if isinstance(err, stopping.Stopped) else stopping.Stopped(signal.SIGINT)
            print(f"chromaflow: {stop}", file=sys.stderr)
            return stop.exit_code
        except BrokenPipeError:
            # The reader of our stdout went away (e.g. `| head`); nothing more to say.
            return EXIT_INTERNAL


def _run(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="chromaflow: %(levelname)s: %(message)s",
        stream=sys.stderr,
    )
    code = int(args.func(args) or 0)
    late = stopping.held()
    if late is not None:  # arrived while the outputs were being renamed: they are complete, and we stop now
        print(f"chromaflow: {late} while the outputs were put in place; they are complete", file=sys.stderr)
        return late.exit_code
    return code


if __name__ == "__main__":
    raise SystemExit(main())
