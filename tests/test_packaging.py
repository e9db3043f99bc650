"""A non-editable install carries every subpackage, module and data file under the import name chromaflow."""

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TOP_FOLDERS = {"core": "chromaflow.core", "filters": "chromaflow.filters", "plugins": "chromaflow.plugins"}


def _source_packages() -> set[str]:
    """Import packages under the top folders: folders reached through an unbroken chain of ``__init__.py``.

    Folders outside that chain (the Blender add-on, the OBS script) are shipped as files, not imported.
    """
    found = {"chromaflow"}
    for folder, name in TOP_FOLDERS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(REPO / folder)
            chain = [REPO / folder / Path(*rel.parts[:i]) for i in range(len(rel.parts))]
            if all((d / "__init__.py").is_file() for d in chain):
                found.add(".".join([name, *rel.parts]) if rel.parts else name)
    return found


def test_pyproject_lists_every_subpackage() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    assert listed == _source_packages(), "add new subpackages to [tool.setuptools] packages in pyproject.toml"


@pytest.mark.slow
def test_non_editable_install_imports_from_the_install(tmp_path: Path) -> None:
    target = tmp_path / "site"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
         "--target", str(target), str(REPO)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    modules = sorted(
        ".".join(p.relative_to(target).with_suffix("").parts).removesuffix(".__init__")
        for p in (target / "chromaflow").rglob("*.py")
        if p.stem != "__main__"  # importing it would run the CLI
    )
    expected = {
        f"{name}.{p.stem}" if p.stem != "__init__" else name
        for folder, name in TOP_FOLDERS.items()
        for p in (REPO / folder).glob("*.py")
    }
    assert expected <= set(modules)
    check = (
        "import importlib, sys; root = sys.argv[1]\n"
        "for m in sys.argv[2:]:\n"
        "    mod = importlib.import_module(m)\n"
        "    assert mod.__file__.startswith(root), (m, mod.__file__)\n"
    )
    # Host modules import their host library; importing them all also proves those are installed.
    result = subprocess.run(
        [sys.executable, "-c", check, str(target), *modules],
        capture_output=True, text=True, cwd=tmp_path, env={"PYTHONPATH": str(target), "PATH": ""},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    for data in (target / "chromaflow" / "core").glob("weights/*"):
        assert data.stat().st_size > 0
