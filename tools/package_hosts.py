"""Build what users install in their host applications: the Blender add-on zip and the OBS script folder.

Both hosts run chromaflow through one CLI client, ``plugins/cli_client/chromaflow_cli_client.py``. This tool copies
it, byte for byte, beside each host's own modules, which import it as a sibling. No copy of it is committed: this
tool is the one place the hosts get it from, so the two cannot drift apart.

- ``chromaflow_vse-<version>.zip``: one zip for Blender 3.x (Preferences > Add-ons > Install, reads ``bl_info``) and
  4.2+ (Get Extensions > Install from Disk, reads ``blender_manifest.toml``); the files sit in a ``chromaflow_vse/``
  folder inside the archive, which both accept.
- ``chromaflow-obs/``: the folder to load ``chromaflow_obs.py`` from in OBS's Tools > Scripts.

Usage: ``python tools/package_hosts.py [--out DIR]`` -> prints the zip's and the folder's paths on stdout.
"""

import argparse
import ast
import shutil
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CLIENT = REPO / "plugins" / "cli_client" / "chromaflow_cli_client.py"
ADDON = REPO / "plugins" / "blender" / "chromaflow_vse"
OBS = REPO / "plugins" / "obs"
OBS_FOLDER = "chromaflow-obs"


def _with_client(folder: Path, files: dict[str, Path]) -> dict[str, Path]:
    """``files`` plus the client; a copy of the client committed into ``folder`` is refused (it could drift)."""
    if (folder / CLIENT.name).exists():
        raise SystemExit(
            f"{folder / CLIENT.name} is a copy of {CLIENT}; delete it, this tool adds the client"
        )
    return {**files, CLIENT.name: CLIENT}


def addon_files() -> dict[str, Path]:
    """Name inside the add-on folder -> source file: the add-on's modules, its manifest and the client."""
    files = {p.name: p for p in sorted(ADDON.glob("*.py"))}
    files["blender_manifest.toml"] = ADDON / "blender_manifest.toml"
    return _with_client(ADDON, files)


def obs_files() -> dict[str, Path]:
    """Name inside the OBS folder -> source file: the script, its logic and the client."""
    return _with_client(OBS, {p.name: p for p in sorted(OBS.glob("*.py"))})


def bl_info_version(init: Path) -> tuple[int, ...]:
    """``bl_info["version"]`` read without importing the add-on (it needs bpy)."""
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "bl_info" for t in node.targets):
            info = ast.literal_eval(node.value)
            return tuple(info["version"])
    raise SystemExit(f"{init} has no bl_info")


def build_addon(out_dir: Path) -> Path:
    """Write ``chromaflow_vse-<version>.zip`` into ``out_dir`` (atomically) and return its path."""
    manifest = tomllib.loads((ADDON / "blender_manifest.toml").read_text(encoding="utf-8"))
    version = manifest["version"]
    if ".".join(map(str, bl_info_version(ADDON / "__init__.py"))) != version:
        raise SystemExit(f"bl_info version and blender_manifest.toml version ({version}) differ; align them")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{manifest['id']}-{version}.zip"
    partial = target.with_name(f".{target.name}.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, source in addon_files().items():
            archive.write(source, f"{manifest['id']}/{name}")
    partial.replace(target)
    return target


def build_obs(out_dir: Path) -> Path:
    """Write the ``chromaflow-obs`` folder into ``out_dir`` (replacing an older one whole) and return its path."""
    target = out_dir / OBS_FOLDER
    partial = out_dir / f".{OBS_FOLDER}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for name, source in obs_files().items():
        shutil.copyfile(source, partial / name)
    shutil.rmtree(target, ignore_errors=True)
    partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="folder for both (default: dist/)")
    args = parser.parse_args(argv)
    print(build_addon(args.out))
    print(build_obs(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
