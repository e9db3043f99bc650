"""The layer rules of DESIGN.md: arrows point down only, and core imports no host library."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
HOST_LIBRARIES = {"vapoursynth", "av", "bpy", "obspython"}


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


@pytest.mark.parametrize("path", sorted((REPO / "core").rglob("*.py")), ids=lambda p: p.name)
def test_core_imports_no_host_and_no_upper_layer(path: Path) -> None:
    for name in _imports(path):
        assert name.split(".")[0] not in HOST_LIBRARIES, f"{path} imports {name}"
        assert not name.startswith(("chromaflow.filters", "chromaflow.plugins")), f"{path} imports {name}"


@pytest.mark.parametrize("path", sorted((REPO / "filters").rglob("*.py")), ids=lambda p: p.name)
def test_filters_import_no_plugins(path: Path) -> None:
    assert not any(n.startswith("chromaflow.plugins") for n in _imports(path)), path


@pytest.mark.parametrize("folder", ["blender", "obs"])
def test_blender_and_obs_never_import_the_engine(folder: str) -> None:
    for path in (REPO / "plugins" / folder).rglob("*.py"):
        for name in _imports(path):
            assert name.split(".")[0] not in {"torch", "chromaflow", "numba", "cv2"}, f"{path} imports {name}"
