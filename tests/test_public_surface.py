"""Restructuring keeps what users build on: README import paths, every CLI flag, host signatures and defaults.

The pinned surface (``tests/support/public_surface.json``) was read from the code before the round-2 restructuring. New
flags and parameters may be added; none pinned may disappear or change its default.
"""

import importlib
import json
from pathlib import Path

import pytest

from support.public_surface import current_surface

PINNED = json.loads((Path(__file__).parent / "support" / "public_surface.json").read_text())


@pytest.fixture(scope="module")
def now() -> dict:
    return current_surface()


def _importable(loaded: object, module: str, name: str) -> bool:
    """``from module import name`` works: an attribute, or a submodule."""
    if hasattr(loaded, name):
        return True
    try:
        importlib.import_module(f"{module}.{name}")
    except ModuleNotFoundError:
        return False
    return True


@pytest.mark.parametrize("module", sorted(PINNED["imports"]))
def test_readme_import_paths_still_import(module: str) -> None:
    loaded = importlib.import_module(module)
    missing = [name for name in PINNED["imports"][module] if not _importable(loaded, module, name)]
    assert not missing, f"{module} lost {missing}"


@pytest.mark.parametrize("verb", sorted(PINNED["cli"]))
def test_cli_flags_kept(now: dict, verb: str) -> None:
    assert verb in now["cli"], f"verb {verb} is gone"
    lost = sorted(set(PINNED["cli"][verb]) - set(now["cli"][verb]))
    assert not lost, f"chromaflow {verb} lost {lost}"


@pytest.mark.parametrize("name", sorted(PINNED["signatures"]))
def test_host_signatures_and_defaults_kept(now: dict, name: str) -> None:
    pinned, current = PINNED["signatures"][name], now["signatures"][name]
    changed = {p: (d, current.get(p, "<gone>")) for p, d in pinned.items() if current.get(p) != d}
    assert not changed, f"{name}: parameter -> (pinned default, now): {changed}"
