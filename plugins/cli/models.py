"""`chromaflow models`: list, download, import and verify model weights."""

import argparse
import json
from typing import Any

from chromaflow.core import registry
from chromaflow.core.errors import ModelError, UsageError


def _size(path_exists: bool, nbytes: int) -> str:
    return f"{nbytes / 2**20:.1f} MiB" if path_exists else "-"


def _row(name: str) -> dict[str, Any]:
    """What `models list --json` and `models info --json` report of one model."""
    spec = registry.get_spec(name)
    path = registry.cached_path(spec.name)
    present = path.is_file()
    return {
        "name": spec.name,
        "kind": spec.kind,
        "arch": spec.arch,
        "present": present,
        "bytes": path.stat().st_size if present else None,
        "licence": spec.licence,
        "path": str(path),
        "input_size": spec.input_size,
        "sha256": spec.sha256,
        "url": spec.url,
        "description": spec.description,
    }


def run_list(args: argparse.Namespace) -> int:
    rows = [_row(name) for name in registry.names()]  # one JSON object per model
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    # the columns scripts have read stay first (name, kind, present); side and arch came later
    print(f"{'name':<21} {'kind':<10} {'present':<8} {'side':>5} {'arch':<16} {'size':>10}  licence")
    for row in rows:
        size = _size(row["present"], row["bytes"] or 0)
        side = row["input_size"] if row["kind"] != "anchors" else "-"
        print(
            f"{row['name']:<21} {row['kind']:<10} {'yes' if row['present'] else 'no':<8} {side!s:>5} "
            f"{row['arch']:<16} {size:>10}  {row['licence']}"
        )
    return 0


def run_info(args: argparse.Namespace) -> int:
    row = _row(args.name)
    spec = registry.get_spec(args.name)
    row["inputs"] = spec.builder.inputs
    if args.json:
        print(json.dumps(row, indent=2))
        return 0
    row["present"] = "yes" if row["present"] else "no (chromaflow models download " + spec.name + ")"
    for key, value in row.items():
        print(f"{key + ':':<13} {'-' if value is None else value}")
    return 0


def run_download(args: argparse.Namespace) -> int:
    if args.url and len(args.names) > 1:
        raise UsageError("--url names one file: download one model at a time with it")
    for name in [m for n in args.names for m in registry.members(n)]:  # an ensemble: its members
        path = registry.download(name, url=args.url)
        print(path)
    return 0


def run_import(args: argparse.Namespace) -> int:
    for name in registry.members(args.name):  # a detector of several nets: each from the same wheel or folder
        print(registry.import_file(name, args.path))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    names = (
        list(registry.members(args.name))
        if args.name
        else [n for n in registry.names() if registry.is_present(n)]
    )
    bad = []
    for name in names:
        result = registry.verify(name)
        state = "ok" if result.ok else ("absent" if not result.present else "MISMATCH")
        print(f"{result.name:<18} {state:<8} {result.path}")
        if not result.ok:
            bad.append(result.name)
    if bad:
        raise ModelError(
            f"model(s) {', '.join(bad)} failed verification; run `chromaflow models download NAME` "
            "or `chromaflow models import NAME PATH` to replace them"
        )
    return 0


def register(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    parser = sub.add_parser("models", help="list, download, import and verify model weights")
    verbs = parser.add_subparsers(dest="models_verb", metavar="ACTION")
    verbs.required = True

    p = verbs.add_parser(
        "list", help="the registered models: kind, architecture, input side, weights present, size, licence"
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON on stdout")
    p.set_defaults(func=run_list)

    p = verbs.add_parser(
        "info", help="everything about one model: architecture, input side, file, checksum, URL, licence"
    )
    p.add_argument("name", metavar="NAME", help="model name, see `chromaflow models list`")
    p.add_argument("--json", action="store_true", help="print it as JSON on stdout")
    p.set_defaults(func=run_info)

    p = verbs.add_parser("download", help="download weights from their official URL (SHA-256 checked)")
    p.add_argument("names", nargs="+", metavar="NAME", help="model name(s), see `chromaflow models list`")
    p.add_argument("--url", help="download from this URL instead (a mirror); the checksum is still enforced")
    p.set_defaults(func=run_download)

    p = verbs.add_parser("import", help="copy a local weights file into the model cache (SHA-256 checked)")
    p.add_argument("name", metavar="NAME")
    p.add_argument("path", metavar="PATH")
    p.set_defaults(func=run_import)

    p = verbs.add_parser("verify", help="re-check the SHA-256 of present weights (or of one model)")
    p.add_argument("name", nargs="?", metavar="NAME")
    p.set_defaults(func=run_verify)
