"""`chromaflow studio [PATHS...]`: the local web page for hints, keyframes, projects, renders and deepfake scans.

Safe by default: it answers on 127.0.0.1 only; another ``--host`` needs a ``--token`` (the page's URL carries it) and
prints a warning, because anyone who can reach the port could then read the files under PATHS.
"""

import argparse
import secrets
import sys
import threading
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING

from chromaflow.core.errors import UsageError
from chromaflow.plugins.studio.guard import is_loopback

if TYPE_CHECKING:
    from chromaflow.plugins.studio.app import StudioConfig

DEFAULT_PORT = 8765
DEFAULT_HOST = "127.0.0.1"
DEFAULT_MAX_UPLOAD_MIB = 2048  # the web stack is imported only when the studio starts


def config_of(args: argparse.Namespace) -> "StudioConfig":
    """The studio's configuration; a non-loopback host without a token is refused."""
    from chromaflow.plugins.studio.app import StudioConfig

    if not is_loopback(args.host) and not args.token:
        raise UsageError(
            f"--host {args.host} makes the studio reachable from other machines; give --token T as well "
            f"(for example --token {secrets.token_urlsafe(16)})"
        )
    if args.max_upload < 1:
        raise UsageError(f"--max-upload must be at least 1 MiB, got {args.max_upload}")
    return StudioConfig(
        paths=[Path(p) for p in args.paths],
        workdir=Path(args.workdir),
        token=args.token or None,
        max_upload=args.max_upload << 20,
        device=args.device,
    )


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from chromaflow.plugins.studio.app import build_app

    config = config_of(args)
    app = build_app(config)
    shown = "localhost" if is_loopback(args.host) else args.host
    url = f"http://{shown}:{args.port}/" + (f"?token={config.token}" if config.token else "")
    if not is_loopback(args.host):
        print(
            f"chromaflow: warning: the studio listens on {args.host}: any machine that can reach port {args.port} "
            "and knows the token can read the files under PATHS and run renders",
            file=sys.stderr,
        )
    print(f"chromaflow studio: {url}", file=sys.stderr, flush=True)
    if args.open:
        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", access_log=False)
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser(
        "studio",
        help="a local web page: place colour hints and keyframes, preview, save a project, render, scan",
        description="Serve the chromaflow studio: open a video or image from PATHS (files or folders; or upload "
        "one), place colour hints and keyframes on its frames, see the colour at once, save a project that "
        "`chromaflow colorize --project` and every host render the same way, render and scan for deepfakes.",
    )
    parser.add_argument(
        "paths", nargs="*", metavar="PATHS", help="video or image files, or folders holding them"
    )
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    parser.add_argument(
        "--host",
        default=DEFAULT_HOST,
        help=f"address to listen on (default {DEFAULT_HOST}: this machine only; others need --token)",
    )
    parser.add_argument(
        "--token", help="a secret the page's URL must carry (required with a non-loopback --host)"
    )
    parser.add_argument("--open", action="store_true", help="open the page in the default browser")
    parser.add_argument(
        "--workdir",
        default="chromaflow-studio",
        metavar="DIR",
        help="where uploads, projects (with their keyframe images) and renders go (default ./chromaflow-studio)",
    )
    parser.add_argument(
        "--max-upload",
        type=int,
        default=DEFAULT_MAX_UPLOAD_MIB,
        metavar="MIB",
        help=f"largest upload in MiB (default {DEFAULT_MAX_UPLOAD_MIB})",
    )
    parser.add_argument(
        "--device", help="where previews run: auto, cpu, cuda or cuda:N (renders follow it too)"
    )
    parser.set_defaults(func=run)
