"""Build the installable zip of the Blender add-on (``plugins/blender/chromaflow_vse``).

One zip serves both Blender 3.x (Preferences > Add-ons > Install, reads ``bl_info``) and Blender 4.2+
(Preferences > Get Extensions > Install from Disk, reads ``blender_manifest.toml``): the files sit in a
``chromaflow_vse/`` folder inside the archive, which both accept.

Usage: ``python tools/package_blender_addon.py [--out DIR]`` -> prints the zip's path on stdout.
"""

import argparse
import ast
import sys
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ADDON = REPO / "plugins" / "blender" / "chromaflow_vse"
FILES = ("__init__.py", "logic.py", "blender_manifest.toml")


def bl_info_version(init: Path) -> tuple[int, ...]:
    """``bl_info["version"]`` read without importing the add-on (it needs bpy)."""
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "bl_info" for t in node.targets):
            info = ast.literal_eval(node.value)
            return tuple(info["version"])
    raise SystemExit(f"{init} has no bl_info")


def build(out_dir: Path) -> Path:
    """Write ``chromaflow_vse-<version>.zip`` into ``out_dir`` (atomically) and return its path."""
    manifest = tomllib.loads((ADDON / "blender_manifest.toml").read_text(encoding="utf-8"))
    version = manifest["version"]
    if ".".join(map(str, bl_info_version(ADDON / "__init__.py"))) != version:
        raise SystemExit(f"bl_info version and blender_manifest.toml version ({version}) differ; align them")
    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / f"{manifest['id']}-{version}.zip"
    partial = target.with_name(f".{target.name}.partial")
    with zipfile.ZipFile(partial, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in FILES:
            archive.write(ADDON / name, f"{manifest['id']}/{name}")
    partial.replace(target)
    return target


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=REPO / "dist", help="folder for the zip (default: dist/)")
    args = parser.parse_args(argv)
    print(build(args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
