"""`chromaflow models`: list, download, import and verify model weights."""

import argparse
import json
from typing import Any

from chromaflow.core import registry
from chromaflow.core.errors import ModelError, UsageError


def _size(path_exists: bool, nbytes: int) -> str:
    return f"{nbytes / 2**20:.1f} MiB" if path_exists else "-"


def run_list(args: argparse.Namespace) -> int:
    rows: list[dict[str, Any]] = []  # one JSON object per model
    for name in registry.names():
        spec = registry.get_spec(name)
        path = registry.cached_path(name)
        present = path.is_file()
        rows.append(
            {
                "name": name,
                "kind": spec.kind,
                "present": present,
                "bytes": path.stat().st_size if present else None,
                "licence": spec.licence,
                "path": str(path),
                "input_size": spec.input_size,
                "sha256": spec.sha256,
                "url": spec.url,
            }
        )
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':<18} {'kind':<10} {'present':<8} {'size':>10}  licence")
    for row in rows:
        size = _size(row["present"], row["bytes"] or 0)
        print(
            f"{row['name']:<18} {row['kind']:<10} {'yes' if row['present'] else 'no':<8} {size:>10}  {row['licence']}"
        )
    return 0


def run_download(args: argparse.Namespace) -> int:
    if args.url and len(args.names) > 1:
        raise UsageError("--url names one file: download one model at a time with it")
    for name in args.names:
        path = registry.download(name, url=args.url)
        print(path)
    return 0


def run_import(args: argparse.Namespace) -> int:
    print(registry.import_file(args.name, args.path))
    return 0


def run_verify(args: argparse.Namespace) -> int:
    names = [args.name] if args.name else [n for n in registry.names() if registry.is_present(n)]
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
        "list", help="the registered models, whether their weights are present, size, licence"
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON on stdout")
    p.set_defaults(func=run_list)

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
