"""Type-check chromaflow as it is installed and the host scripts as their applications load them (`make typecheck`).

Why a view: pyproject.toml maps core/, filters/, plugins/ and src/chromaflow under the import name ``chromaflow``
(``package-dir``), and the editable install resolves that with a setuptools import hook that mypy does not follow.
Given the folders themselves, mypy would call core/colorizer.py ``core.colorizer`` and could not find
``chromaflow.core.colorizer`` at all. So this script links a tree under build/mypy-view/ laid out as the wheel
installs it (one folder per package in ``packages``, each module a link to its source), runs mypy on that tree
and prints every message against the source file (``core/colorizer.py``, not the link). A first-party import that
does not exist is then an error like any other; third-party modules without types are silenced one by one in
pyproject.toml's ``[[tool.mypy.overrides]]``.

The host scripts run elsewhere: the Blender add-on and the OBS script run on their application's own Python
(Blender 3.4 bundles 3.10) with the standard library and ``bpy``/``obspython`` only, each with the shared CLI client
copied beside it. They get a second view (``hosts/``) with that layout and a second mypy run for Python 3.10 that
sees no installed package, so neither ``chromaflow`` nor torch or numpy is importable there.

Usage: ``python tools/typecheck.py [--root DIR] [-- MYPY-ARGS...]``; exit 0 when clean, 1 on type errors, 2 when
mypy or this script cannot run.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
VIEW = Path("build") / "mypy-view"
PACKAGE_VIEW = "package"
HOST_VIEW = "hosts"
HOST_PYTHON = "3.10"
CLI_CLIENT = "plugins/cli_client/chromaflow_cli_client.py"
# Folder inside the hosts view -> globs (from the root) of the modules found there at run time; this mirrors the
# host packaging (the add-on zip and the OBS script folder each carry their own copy of the CLI client).
HOST_LAYOUT: dict[str, tuple[str, ...]] = {
    "chromaflow_vse": ("plugins/blender/chromaflow_vse/*.py", CLI_CLIENT),
    ".": ("plugins/obs/*.py", CLI_CLIENT),
}
TYPED_FILES = ("*.py", "*.pyi", "py.typed")
LOCATION = re.compile(r"^(?P<path>[^:\s]+\.pyi?)(?P<rest>:.*)$")
CHECKED = re.compile(r"\(checked (\d+) source files?\)|no issues found in (\d+) source files?")


@dataclass(frozen=True)
class Run:
    """One mypy invocation: the view folder it checks, for which Python (None: the config's), and whether the
    installed packages are hidden from it (the hosts' Python has the standard library only)."""

    name: str
    folder: Path
    python: str | None
    stdlib_only: bool


def package_sources(root: Path) -> dict[str, Path]:
    """Each package named in pyproject's ``packages`` -> its source folder, by setuptools' ``package-dir`` rule."""
    config = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    package_dir: dict[str, str] = config.get("package-dir", {})
    sources: dict[str, Path] = {}
    for package in config["packages"]:
        parts = package.split(".")
        for cut in range(len(parts), -1, -1):
            prefix = ".".join(parts[:cut])
            if prefix in package_dir:
                sources[package] = root / package_dir[prefix] / Path(*parts[cut:])
                break
        else:
            sources[package] = root / Path(*parts)
    return sources


def wanted_links(root: Path) -> dict[Path, Path]:
    """Every link of the view (relative to the view folder) -> the source file it points at."""
    links: dict[Path, Path] = {}
    for package, source in package_sources(root).items():
        if not (source / "__init__.py").is_file():
            raise SystemExit(
                f"typecheck: package {package} has no {source / '__init__.py'}; fix pyproject.toml"
            )
        folder = Path(PACKAGE_VIEW, *package.split("."))
        for pattern in TYPED_FILES:
            for path in source.glob(pattern):
                links[folder / path.name] = path
    for place, patterns in HOST_LAYOUT.items():
        for pattern in patterns:
            for path in root.glob(pattern):
                links[Path(HOST_VIEW, place, path.name)] = path
    return links


def sync_view(view: Path, links: dict[Path, Path]) -> None:
    """Make ``view`` hold exactly ``links``, leaving links already right untouched (mypy's cache keys on paths)."""
    for path in sorted(view.rglob("*"), reverse=True) if view.exists() else ():
        rel = path.relative_to(view)
        if path.is_symlink() or path.is_file():
            if path.is_symlink() and links.get(rel) == Path(path.readlink()):
                continue
            path.unlink()
        elif path.is_dir() and not any(path.iterdir()):
            path.rmdir()
    for rel, source in links.items():
        link = view / rel
        if not link.is_symlink():
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source)


def run_mypy(root: Path, run: Run, sources: dict[str, str], extra: list[str]) -> tuple[int, list[str], int]:
    """Run mypy on one view folder; returns its exit status, its messages (source paths) and the files checked."""
    command = [sys.executable, "-m", "mypy", "--config-file", str(root / "pyproject.toml"), *extra]
    if run.python:
        command += ["--python-version", run.python]
    if run.stdlib_only:
        command.append("--no-site-packages")
    command.append(str(run.folder.relative_to(root)))
    proc = subprocess.run(command, cwd=root, capture_output=True, text=True)
    messages: list[str] = []
    checked = 0
    for line in (proc.stdout + proc.stderr).splitlines():
        summary = CHECKED.search(line)
        if summary and (line.startswith(("Found ", "Success: "))):
            checked = int(summary.group(1) or summary.group(2))
            continue
        match = LOCATION.match(line)
        if match:
            line = sources.get(match["path"], match["path"]) + match["rest"]
        messages.append(line)
    return proc.returncode, messages, checked


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=REPO, help="the repository to check (default: this one)")
    parser.add_argument("mypy_args", nargs="*", help="passed to mypy after `--` (e.g. -- --cache-dir DIR)")
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    links = wanted_links(root)
    view = root / VIEW
    sync_view(view, links)
    sources = {
        str((VIEW / rel).as_posix()): str(src.relative_to(root).as_posix()) for rel, src in links.items()
    }
    runs = [
        Run("package", view / PACKAGE_VIEW, None, stdlib_only=False),
        Run("hosts", view / HOST_VIEW, HOST_PYTHON, stdlib_only=True),
    ]
    status, seen, counts = 0, set[str](), []
    for run in runs:
        if not run.folder.is_dir():
            continue
        code, messages, checked = run_mypy(root, run, sources, args.mypy_args)
        if code not in (0, 1):
            print("\n".join(messages), file=sys.stderr)
            print(f"typecheck: mypy could not check the {run.name} (exit {code})", file=sys.stderr)
            return 2
        status = max(status, code)
        for line in messages:
            if line not in seen:  # the CLI client is checked in both hosts' places
                seen.add(line)
                print(line)
        counts.append(
            f"{run.name}: {_count(checked, 'file')}" + (f" as Python {run.python}" if run.python else "")
        )
    errors = [line for line in seen if ": error: " in line]
    files = {line.split(":", 1)[0] for line in errors}
    verdict = f"{_count(len(errors), 'error')} in {_count(len(files), 'file')}" if errors else "no errors"
    print(f"typecheck: {verdict} ({'; '.join(counts)})")
    return 1 if status or errors else 0


if __name__ == "__main__":
    sys.exit(main())
