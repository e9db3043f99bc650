"""`make typecheck` sees across modules: a wrong call from one chromaflow package into another is an error.

The check runs the project's own command (tools/typecheck.py with this repository's pyproject.toml, so its mypy
settings) on a small tree laid out like the repository: every package pyproject lists, a core function, callers in
filters/ and plugins/cli/, and a host script. Real mypy, no mocks; its cache lives in the test's temporary folder.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))

import typecheck  # noqa: E402

CORE = 'def scaled(frames: int) -> int:\n    """Twice ``frames``."""\n    return frames * 2\n'
WRONG_CALL = 'from chromaflow.core.units import scaled\n\n\ndef run() -> int:\n    return scaled("12")\n'
RIGHT_CALL = "from chromaflow.core.units import scaled\n\n\ndef run() -> int:\n    return scaled(12)\n"
MISSING = "from chromaflow.core.nowhere import scaled\n\n\ndef run() -> int:\n    return scaled(12)\n"
UNTYPED_THIRD_PARTY = "import h5py\n\n\ndef opener() -> object:\n    return h5py.File\n"
HOST_IMPORTS_PACKAGE = "import chromaflow\nimport numpy\n\nVERSION = chromaflow.__version__, numpy.pi\n"


def _repo_like(root: Path) -> None:
    """Copy pyproject.toml and create each package it lists (empty), as tools/typecheck.py will look for them."""
    shutil.copy(REPO / "pyproject.toml", root / "pyproject.toml")
    for source in typecheck.package_sources(root).values():
        source.mkdir(parents=True, exist_ok=True)
        (source / "__init__.py").write_text('"""A package."""\n')
    (root / "core" / "units.py").write_text(CORE)
    (root / "plugins" / "obs").mkdir(parents=True)


def _typecheck(root: Path) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(REPO / "tools" / "typecheck.py"), "--root", str(root)]
    cache = ["--", "--cache-dir", str(root / "mypy-cache")]
    return subprocess.run(command + cache, capture_output=True, text=True, timeout=300)


def test_cross_module_mistakes_are_errors_and_their_fixes_pass(tmp_path: Path) -> None:
    _repo_like(tmp_path)
    (tmp_path / "filters" / "caller.py").write_text(WRONG_CALL)
    (tmp_path / "plugins" / "cli" / "caller.py").write_text(MISSING)
    (tmp_path / "filters" / "storage.py").write_text(UNTYPED_THIRD_PARTY)
    (tmp_path / "plugins" / "obs" / "script.py").write_text(HOST_IMPORTS_PACKAGE)

    proc = _typecheck(tmp_path)
    out = proc.stdout
    assert proc.returncode == 1, out + proc.stderr
    assert (
        'filters/caller.py:5: error: Argument 1 to "scaled" has incompatible type "str"; expected "int"'
        in out
    ), "a wrong call from filters/ into core/ is reported against the source file"
    assert (
        'plugins/cli/caller.py:1: error: Cannot find implementation or library stub for module named "chromaflow.core.nowhere"'
        in out
    ), "a chromaflow.* import that does not exist is an error, not Any"
    assert (
        'plugins/obs/script.py:1: error: Cannot find implementation or library stub for module named "chromaflow"'
        in out
    ), "host scripts run on their application's Python, where chromaflow is not importable"
    assert (
        'plugins/obs/script.py:2: error: Cannot find implementation or library stub for module named "numpy"'
        in out
    ), "nor is any other installed package: the hosts have the standard library only"
    assert "storage.py" not in out, "third-party modules without types (h5py) stay silenced"
    assert "build/mypy-view" not in out, "messages name the source files, not the view's links"

    (tmp_path / "filters" / "caller.py").write_text(RIGHT_CALL)
    (tmp_path / "plugins" / "cli" / "caller.py").unlink()
    (tmp_path / "plugins" / "obs" / "script.py").write_text('"""A host script."""\n')
    proc = _typecheck(tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "typecheck: no errors" in proc.stdout
    assert not (
        tmp_path / "build" / "mypy-view" / "package" / "chromaflow" / "plugins" / "cli" / "caller.py"
    ).exists(), "a deleted module's link leaves the view"


def test_package_sources_follow_package_dir(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.setuptools]\n"
        'package-dir = { "chromaflow" = "src/chromaflow", "chromaflow.core" = "core" }\n'
        'packages = ["chromaflow", "chromaflow.core", "chromaflow.core.nets", "chromaflow.extra"]\n'
    )
    assert typecheck.package_sources(tmp_path) == {
        "chromaflow": tmp_path / "src" / "chromaflow",
        "chromaflow.core": tmp_path / "core",
        "chromaflow.core.nets": tmp_path / "core" / "nets",
        "chromaflow.extra": tmp_path / "src" / "chromaflow" / "extra",
    }


def test_make_lint_and_make_typecheck_run_it() -> None:
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    for target in ("typecheck", "lint"):
        proc = subprocess.run(["make", "-n", target], cwd=REPO, capture_output=True, text=True)
        assert "tools/typecheck.py" in proc.stdout, f"`make {target}` runs the type checker: {proc.stdout}"
