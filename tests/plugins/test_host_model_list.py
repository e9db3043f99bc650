"""The Blender add-on and the OBS script offer every colour model of the registry.

They cannot import the registry (no torch in Blender's or OBS's Python), so the shared CLI client carries a copy,
written by tools/host_models.py; this checks the copy is current and that the OBS Model list shows all of it (the
Blender field's suggestions are the same list; the headless Blender tests register the field in Blender 3.4 and 5).
"""

import importlib.util
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace

import pytest

from chromaflow.core import registry

REPO = Path(__file__).resolve().parents[2]


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


packager = _load("chromaflow_package_hosts", REPO / "tools" / "package_hosts.py")
host_models = _load("chromaflow_host_models", REPO / "tools" / "host_models.py")


def _colour_models() -> list[str]:
    return [n for n in registry.names() if registry.get_spec(n).kind == "colorizer"]


def test_the_clients_list_is_the_registrys_colour_models() -> None:
    assert host_models.main(["--check"]) == 0, "run `python tools/host_models.py` after changing the registry"
    client = _load("chromaflow_cli_client_models", packager.CLIENT)
    assert [name for name, _side, _text in client.COLOUR_MODELS] == _colour_models()
    sides = {name: side for name, side, _text in client.COLOUR_MODELS}
    assert all(sides[n] == registry.get_spec(n).input_size for n in sides)


def test_the_check_notices_a_stale_list(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    copy = tmp_path / packager.CLIENT.name
    copy.write_text(packager.CLIENT.read_text().replace('"base",\n', '"base-old",\n', 1))
    monkeypatch.setattr(host_models, "CLIENT", copy)
    assert host_models.main(["--check"]) == 1
    assert host_models.main([]) == 0 and host_models.main(["--check"]) == 0
    assert copy.read_text() == packager.CLIENT.read_text()


def test_the_obs_model_list_offers_every_colour_model(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = packager.build_obs(tmp_path / "dist")
    for name in ("chromaflow_obs_logic", "chromaflow_cli_client"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the script adds its folder
    lists: dict[str, SimpleNamespace] = {}
    obs = ModuleType("obspython")  # a stand-in for OBS's module: only what script_properties calls
    obs.OBS_COMBO_TYPE_EDITABLE, obs.OBS_COMBO_TYPE_LIST, obs.OBS_COMBO_FORMAT_STRING = 0, 1, 3
    obs.OBS_TEXT_DEFAULT, obs.OBS_PATH_FILE, obs.OBS_PATH_DIRECTORY = 0, 0, 2
    obs.obs_properties_create = lambda: {}
    obs.obs_properties_add_list = lambda props, name, label, kind, fmt: lists.setdefault(
        name, SimpleNamespace(kind=kind, items=[])
    )
    obs.obs_property_list_add_string = lambda prop, label, value: prop.items.append(value)
    for kind in ("text", "bool", "path"):
        setattr(obs, f"obs_properties_add_{kind}", lambda *a: None)
    monkeypatch.setitem(sys.modules, "obspython", obs)
    script = _load("chromaflow_obs_script_models", folder / "chromaflow_obs.py")
    script.script_properties()
    assert lists["model"].items == _colour_models()
    assert lists["model"].kind == obs.OBS_COMBO_TYPE_EDITABLE, "a mix A+B or a file can still be typed"
