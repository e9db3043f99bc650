"""Which files the studio may read: the PATHS it was started with and its own work folder, nothing else.

The page names a file by a key ``ROOT/relative/path`` (ROOT: the index of one allowed root); the key is resolved and
must stay inside that root after symlinks are followed, so ``..``, absolute paths and links out are refused.
"""

from dataclasses import dataclass
from pathlib import Path

from chromaflow.core.errors import InputError, UsageError

VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".avi", ".webm", ".m4v", ".y4m", ".mpg", ".mpeg", ".ts")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
MEDIA_SUFFIXES = VIDEO_SUFFIXES + IMAGE_SUFFIXES
MAX_LISTED = 2000  # files listed per root (a PATH that is a huge folder still answers quickly)


class ForbiddenError(UsageError):
    """A path outside the studio's roots was asked for."""


@dataclass(frozen=True)
class Root:
    """One place files may come from: a folder, or a single file given on the command line."""

    path: Path
    single: bool  # a file given by itself: only that file is served

    def files(self) -> list[Path]:
        if self.single:
            return [self.path]
        found: list[Path] = []
        for p in sorted(self.path.rglob("*")):
            if p.suffix.lower() in MEDIA_SUFFIXES and p.is_file() and not p.name.startswith("."):
                found.append(p)
                if len(found) >= MAX_LISTED:
                    break
        return found


class Sandbox:
    """The roots (PATHS and the upload folder) and the one way from a key to a file."""

    def __init__(self, paths: list[Path], uploads: Path) -> None:
        self.roots: list[Root] = []
        for p in paths:
            real = p.expanduser().resolve()
            if not real.exists():
                raise InputError(f"{p} does not exist; give the studio existing files or folders")
            self.roots.append(Root(real, real.is_file()))
        uploads.mkdir(parents=True, exist_ok=True)
        self.uploads = uploads.resolve()
        self.roots.append(Root(self.uploads, False))

    @property
    def upload_root(self) -> int:
        return len(self.roots) - 1

    def key_of(self, path: Path) -> str:
        """The key of a file inside a root (the first root that holds it)."""
        real = path.resolve()
        for i, root in enumerate(self.roots):
            if root.single and real == root.path:
                return f"{i}/{real.name}"
            if not root.single and real.is_relative_to(root.path):
                return f"{i}/{real.relative_to(root.path).as_posix()}"
        raise ForbiddenError(f"{path} is outside the studio's folders")

    def resolve(self, key: str) -> Path:
        """The file a key names; :class:`ForbiddenError` for anything outside the roots, :class:`InputError` if gone."""
        head, _, rest = str(key).partition("/")
        if not head.isdigit() or int(head) >= len(self.roots) or not rest:
            raise ForbiddenError(f"no such source {key!r}: pick one from the list")
        root = self.roots[int(head)]
        if rest.startswith("/") or "\\" in rest or "\x00" in rest:
            raise ForbiddenError(f"source {key!r} is not a path inside the studio's folders")
        if root.single:
            if rest != root.path.name:
                raise ForbiddenError(f"source {key!r} is not one of the files the studio was given")
            return root.path
        real = (root.path / rest).resolve()
        if not real.is_relative_to(root.path):
            raise ForbiddenError(f"source {key!r} leads outside the studio's folders; refused")
        if not real.is_file():
            raise InputError(f"source {key!r} does not exist (any more)")
        return real

    def listing(self) -> list[dict[str, str]]:
        """Every media file of every root: ``{"key", "name", "kind"}``."""
        out = []
        for i, root in enumerate(self.roots):
            for p in root.files():
                rel = p.name if root.single else p.relative_to(root.path).as_posix()
                kind = "image" if p.suffix.lower() in IMAGE_SUFFIXES else "video"
                out.append(
                    {
                        "key": f"{i}/{rel}",
                        "name": rel if i < self.upload_root else f"uploads/{rel}",
                        "kind": kind,
                    }
                )
        return out
