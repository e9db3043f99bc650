#!/usr/bin/env python3
"""Download, extract, filter, deduplicate and scale freely licensed photographs for training ``base``.

Sources: Debian packages (``apt-get download`` + ``dpkg -x``, nothing is installed) and scikit-image's sample
images. Each file's licence is looked up in its package's machine-readable copyright file (DEP-5: the last
``Files:`` stanza that matches wins); files under licences outside ``ALLOWED_LICENCES`` are skipped. Where another
package ships the same photo at a higher resolution (``endless-sky-high-dpi``), that copy is taken instead.
Output (under ``--out``, default ``~/.cache/chromaflow/training-data``)::

    images/<source>__<name>.jpg   shorter side --short-side px (default 320), JPEG quality 92
    attribution.tsv               file, source package, version, original path, licence, copyright holder
    summary.json                  per source: images kept, and dropped by each filter (and as duplicates)
    training-data.tar             images and attribution.tsv in one archive (with --archive)

Never point this at ../shared: that data is for evaluation only.
Usage: ``python tools/fetch_training_data.py [--out DIR] [--short-side N] [--archive] [--source PACKAGE ...]``.
"""

import argparse
import fnmatch
import hashlib
import json
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from qt_rcc import iter_rcc

# Licences we accept for training weights that are shipped under the project's licence (no NC / ND).
ALLOWED_LICENCES = re.compile(
    r"^(public[- ]domain|cc0.*|cc-by-[0-9.]+|cc-by-sa-[0-9.]+|bsd.*|expat|mit.*|apache-2\.0|isc.*|pd|"
    r"gpl-?v?[23]\+?|lgpl.*|gfdl.*|free-art)$",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Larger:
    """A package with some of a source's photos at a higher resolution: ``path`` names the counterpart of a file,
    with ``{stem}`` and ``{suffix}`` standing for that file's name parts. Files without one keep the original."""

    package: str
    path: str


@dataclass(frozen=True)
class Source:
    """One Debian package and where its photographs are (globs relative to the unpacked root)."""

    package: str
    globs: tuple[str, ...]
    kind: str = "file"  # "file": image files; "rcc": Qt resource bundles; "edj": EET containers with JPEGs
    default_licence: str = ""  # used when the copyright file names no licence for a file
    larger: Larger | None = None
    # File names (globs) of drawings saved as JPEG: their compression noise defeats the cartoon test.
    drawings: tuple[str, ...] = ()


SOURCES: tuple[Source, ...] = (
    Source(
        "gcompris-qt-data",
        tuple(
            f"usr/share/gcompris-qt/rcc/{n}.rcc"
            for n in (
                "erase",
                "explore_world_animals",
                "explore_farm_animals",
                "explore_monuments",
                "categorization",
                "explore_world_music",
            )
        ),
        "rcc",
    ),
    Source("kphotoalbum", ("usr/share/kphotoalbum/demo/*.jpg",), default_licence="GPL-2+"),
    Source("tuxpaint-data", ("usr/share/tuxpaint/templates/*.jpg",), default_licence="GPL-2+"),
    Source("enlightenment-data", ("usr/share/enlightenment/data/backgrounds/*.edj",), "edj", "BSD-2-clause"),
    Source("lomiri-wallpapers-16.04", ("usr/share/backgrounds/*.jpg",)),
    Source("lomiri-wallpapers-20.04", ("usr/share/backgrounds/*.jpg",)),
    Source("lxqt-themes", ("usr/share/lxqt/wallpapers/*",)),
    Source("palapeli-data", ("usr/share/palapeli/collection/*.jpg",)),
    Source(
        "plasma-workspace-wallpapers", ("usr/share/wallpapers/*/contents/images/*",), default_licence="GPL-2+"
    ),
    Source("mate-backgrounds", ("usr/share/backgrounds/**/*",)),
    Source("ukui-wallpapers", ("usr/share/backgrounds/**/*",)),
    Source("libjxl-testdata", ("usr/share/libjxl-testdata/jxl/flower/*.png", "**/wesaturate/500px/*.png")),
    # Endless Sky's landing scenes: photos, 720 x 360; the high-dpi package has each one at 1440 x 720 as NAME@2x.
    Source(
        "endless-sky-data",
        ("usr/share/games/endless-sky/images/land/*.jpg",),
        larger=Larger(
            "endless-sky-high-dpi",
            "usr/share/games/endless-sky/plugins/endless-sky-high-dpi/images/land/{stem}@2x{suffix}",
        ),
    ),
    # Scratch 1.4's stage backgrounds: photos, and a few drawings (its GIFs are palette drawings and are not read).
    Source(
        "scratch",
        tuple(
            f"usr/share/scratch/Media/Backgrounds/{d}/*" for d in ("Nature", "Outdoors", "Indoors", "Sports")
        ),
        drawings=(
            "basketball-court2.png",
            "chalkboard.jpg",
            "party-room.jpg",
            "room1.jpg",
            "room2.jpg",
            "school2.jpg",
            "spotlight-stage.jpg",
            "woods-and-bench.jpg",
        ),
    ),
)

# scikit-image samples and their licences, as their docstrings in skimage.data state them.
SKIMAGE_SAMPLES = {
    "astronaut": "public-domain",  # NASA
    "coffee": "CC0-1.0",  # Rachel Michetti
    "chelsea": "CC0-1.0",  # Stefan van der Walt
    "rocket": "public-domain",  # SpaceX
    "immunohistochemistry": "public-domain",  # "no known copyright restrictions"
    "retina": "CC0-1.0",  # Mikael Häggström
    "colorwheel": "BSD-3-Clause",  # synthetic, part of scikit-image
    "hubble_deep_field": "public-domain",  # NASA
}
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}


@dataclass
class Candidate:
    source: str
    version: str
    path: str
    licence: str
    holder: str
    image: np.ndarray  # BGR uint8
    drop: str = ""  # a reason to skip it known before looking at the pixels ("drawing")


# ---------------------------------------------------------------------------------------------- licences


def parse_dep5(text: str) -> list[tuple[list[str], str, str]]:
    """Stanzas of a DEP-5 copyright file (or a GCompris resource README, which uses the same fields) as
    ``(file patterns, licence short name, copyright holder)``. Continuation lines extend the previous field.
    A public-domain stanza's licence text says where the files came from ("Taken from unsplash.com ..."): its
    first sentence joins the holder, since "Copyright: Various" alone credits no one."""
    stanzas = []
    for block in re.split(r"\n\s*\n", text):
        first: dict[str, str] = {}
        rest: dict[str, list[str]] = {}
        key = ""
        for line in block.splitlines():
            match = re.match(r"^([A-Za-z-]+):\s*(.*)$", line)
            if match and line[:1] not in (" ", "\t"):
                key = match.group(1).lower()
                first[key] = match.group(2).strip()
                rest[key] = [match.group(2).strip()] if match.group(2).strip() else []
            elif key and line.strip():
                rest[key].append(line.strip())
        if "files" in first:
            # "CC-BY-SA 4.0" / "CC-BY-SA-4.0" and "Public Domain" / "public-domain" name the same licence.
            licence = re.sub(r"\s+", "-", first.get("license", "").strip())
            holder = " ".join(rest.get("copyright", []))[:160]
            if first.get("source"):
                holder += f" ({first['source']})"
            origin = " ".join(rest.get("license", [])[1:])
            if origin and re.fullmatch(r"public[- ]domain|pd", licence, re.IGNORECASE):
                first_sentence = re.split(r"(?<=[.;])\s", origin, maxsplit=1)[0]
                holder += f"; {first_sentence[:120]}"
            patterns = [p for item in rest["files"] for p in item.split()]
            stanzas.append((patterns, licence, holder))
    return stanzas


def licence_for(stanzas: list[tuple[list[str], str, str]], path: str, default: str) -> tuple[str, str]:
    """The licence and holder of ``path`` (last matching stanza wins, as DEP-5 says)."""
    found = (default, "")
    base = path.rsplit("/", 1)[-1]
    for patterns, licence, holder in stanzas:
        for pattern in patterns:
            tail = pattern.rsplit("/", 1)[-1]
            # Copyright files name source-tree paths; installed paths differ, so an exact file name also counts.
            by_name = not any(c in tail for c in "*?[") and tail == base
            if fnmatch.fnmatch(path, pattern) or fnmatch.fnmatch(path, "*/" + pattern) or by_name:
                found = (licence or default, holder)
    return found


# ---------------------------------------------------------------------------------------------- packages


def unpack(package: str, work: Path) -> tuple[Path, str]:
    """Download ``package`` with apt and unpack it under ``work``; returns (root, version)."""
    debs = work / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    found = sorted(debs.glob(f"{package}_*.deb"))
    if not found:
        result = subprocess.run(["apt-get", "download", package], cwd=debs, capture_output=True, text=True)
        if result.returncode != 0:
            subprocess.run(["apt-get", "update"], capture_output=True)
            subprocess.run(["apt-get", "download", package], cwd=debs, check=True, capture_output=True)
        found = sorted(debs.glob(f"{package}_*.deb"))
    deb = found[-1]
    version = deb.name.split("_")[1].replace("%3a", ":")
    root = work / "unpacked" / package
    if not root.is_dir():
        root.mkdir(parents=True)
        subprocess.run(["dpkg", "-x", str(deb), str(root)], check=True)
    return root, version


def jpegs_in(blob: bytes) -> Iterator[bytes]:
    """JPEG streams stored as-is inside a container: from each SOI marker to the next one."""
    starts = [m.start() for m in re.finditer(b"\xff\xd8\xff[\xdb\xe0\xe1\xee]", blob)]
    for i, start in enumerate(starts):
        end = starts[i + 1] if i + 1 < len(starts) else len(blob)
        yield blob[start:end]


def decode(data: bytes) -> np.ndarray | None:
    """Decode image bytes to BGR uint8; transparent pixels are composited onto grey."""
    img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if img is None:
        return None
    if img.dtype != np.uint8:
        img = (img / 257).astype(np.uint8) if img.dtype == np.uint16 else None
        if img is None:
            return None
    if img.ndim == 2:
        return cv2.cvtColor(img, cv2.COLOR_GRAY2BGR)
    if img.shape[2] == 4:
        alpha = img[..., 3:4].astype(np.float32) / 255
        if alpha.mean() < 0.9:  # cut-outs: the background would teach grey
            return None
        return (img[..., :3] * alpha + 128 * (1 - alpha)).astype(np.uint8)
    return img


def file_items(source: Source, root: Path, file: Path) -> Iterator[tuple[str, str, bytes]]:
    """``(name in the attribution list, path to look its licence up by, bytes)`` for each image in ``file``."""
    rel = str(file.relative_to(root))
    if source.kind == "rcc":
        for path, data in iter_rcc(file.read_bytes()):
            if path.endswith(".webp"):
                yield f"{rel}:{path}", path, data
    elif source.kind == "edj":
        for i, data in enumerate(jpegs_in(file.read_bytes())):
            yield f"{rel}#{i}", rel, data
    elif file.suffix.lower() in IMAGE_SUFFIXES:
        yield rel, rel, file.read_bytes()


def rcc_readmes(blob: bytes) -> dict[str, list[tuple[list[str], str, str]]]:
    """The stanzas of each README in a GCompris bundle, by folder: they name the licences of that folder's files."""
    return {
        p.rsplit("/", 1)[0]: parse_dep5(d.decode("utf-8", "replace"))
        for p, d in iter_rcc(blob)
        if p.endswith("/README")
    }


def readme_licence(readmes: dict[str, list[tuple[list[str], str, str]]], path: str) -> tuple[str, str]:
    """The licence a bundle's README gives ``path`` (the nearest folder's first), or ``("", "")``."""
    folder = path
    while "/" in folder:
        folder = folder.rsplit("/", 1)[0]
        if folder in readmes:
            own = licence_for(readmes[folder], path[len(folder) + 1 :], "")
            if own[0]:
                return own
    return "", ""


def copyright_stanzas(root: Path, package: str) -> list[tuple[list[str], str, str]]:
    copyright_file = root / "usr/share/doc" / package / "copyright"
    return parse_dep5(copyright_file.read_text(errors="replace")) if copyright_file.exists() else []


def larger_copy(source: Source, work: Path) -> tuple[Path, str, list[tuple[list[str], str, str]]] | None:
    """The unpacked root, version and copyright stanzas of ``source.larger``; None (with a note) if unavailable."""
    if source.larger is None:
        return None
    try:
        root, version = unpack(source.larger.package, work)
    except (subprocess.CalledProcessError, OSError) as err:
        print(
            f"{source.larger.package}: unavailable ({err}); using {source.package}'s own sizes",
            file=sys.stderr,
        )
        return None
    return root, version, copyright_stanzas(root, source.larger.package)


def candidates_from(source: Source, work: Path) -> Iterator[Candidate]:
    root, version = unpack(source.package, work)
    stanzas = copyright_stanzas(root, source.package)
    larger = larger_copy(source, work)
    for pattern in source.globs:
        for file in sorted(root.glob(pattern)):
            if not file.is_file():
                continue
            if larger is not None and source.larger is not None:
                big_root, big_version, big_stanzas = larger
                big = big_root / source.larger.path.format(stem=file.stem, suffix=file.suffix)
                big_img = decode(big.read_bytes()) if big.is_file() else None
                img = decode(file.read_bytes()) if big_img is not None else None
                if big_img is not None and (img is None or min(big_img.shape[:2]) > min(img.shape[:2])):
                    rel = str(big.relative_to(big_root))
                    licence, holder = licence_for(big_stanzas, rel, source.default_licence)
                    yield Candidate(source.larger.package, big_version, rel, licence, holder, big_img)
                    continue
            readmes = rcc_readmes(file.read_bytes()) if source.kind == "rcc" else {}
            for name, licence_path, data in file_items(source, root, file):
                img = decode(data)
                if img is None:
                    continue
                licence, holder = licence_for(stanzas, licence_path, source.default_licence)
                own = readme_licence(readmes, licence_path)  # a README in the photo's folder names its own
                if own[0]:
                    licence, holder = own
                drawing = any(fnmatch.fnmatch(file.name, glob) for glob in source.drawings)
                yield Candidate(
                    source.package, version, name, licence, holder, img, "drawing" if drawing else ""
                )


def skimage_candidates() -> Iterator[Candidate]:
    try:
        import skimage
        from skimage import data as skdata
    except ImportError:
        print("scikit-image is not installed: skipping its samples", file=sys.stderr)
        return
    for name, licence in SKIMAGE_SAMPLES.items():
        loader = getattr(skdata, name, None)
        if loader is None:
            continue
        try:
            rgb = np.asarray(loader())
        except Exception as err:  # a sample missing from this install
            print(f"skimage.data.{name}: {err}", file=sys.stderr)
            continue
        if rgb.ndim != 3 or rgb.shape[2] < 3 or rgb.dtype != np.uint8:
            continue
        bgr = cv2.cvtColor(np.ascontiguousarray(rgb[..., :3]), cv2.COLOR_RGB2BGR)
        yield Candidate(
            "scikit-image",
            skimage.__version__,
            f"skimage/data/{name}",
            licence,
            f"see the docstring of skimage.data.{name}",
            bgr,
        )


# ---------------------------------------------------------------------------------------------- filters


def colourfulness(bgr: np.ndarray) -> float:
    """Hasler & Süsstrunk (2003) colourfulness in 8-bit units."""
    b, g, r = (bgr[..., i].astype(np.float32) for i in range(3))
    rg, yb = r - g, 0.5 * (r + g) - b
    return float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean()))


def looks_like_photo(bgr: np.ndarray, min_side: int) -> str:
    """Empty string for a usable photograph, else the reason to skip it."""
    h, w = bgr.shape[:2]
    if min(h, w) < min_side:
        return "tiny"
    small = cv2.resize(bgr, (128, 128), interpolation=cv2.INTER_AREA)
    if colourfulness(small) < 12:
        return "low-colour"
    # Cartoons and drawings: few distinct colours cover most pixels.
    quant = (small // 16).reshape(-1, 3).astype(np.int32)
    codes = quant[:, 0] * 256 + quant[:, 1] * 16 + quant[:, 2]
    counts = np.sort(np.bincount(codes))[::-1]
    if counts[:8].sum() > 0.8 * codes.size or np.count_nonzero(counts) < 60:
        return "cartoon"
    return ""


def dhash(bgr: np.ndarray) -> int:
    """64-bit difference hash of the grey image: equal for rescaled copies of one picture."""
    gray = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (9, 8), interpolation=cv2.INTER_AREA)
    bits = (gray[:, 1:] > gray[:, :-1]).flatten()
    return int(sum(1 << i for i, bit in enumerate(bits) if bit))


def grey_layout(bgr: np.ndarray) -> np.ndarray:
    """The 16 x 16 grey thumbnail, zero mean and unit variance: its mean product with another is their correlation."""
    gray = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), (16, 16), interpolation=cv2.INTER_AREA)
    flat = gray.astype(np.float32).ravel()
    return (flat - flat.mean()) / (flat.std() + 1e-6)


def same_picture(a: tuple[int, np.ndarray], b: tuple[int, np.ndarray]) -> bool:
    """Copies of one picture (rescaled, recompressed, recoloured variants): close difference hashes AND closely
    correlated grey layouts. The hash alone is too loose for smooth images: seascapes and gradient wallpapers share
    hashes at a correlation of 0.5-0.8, where true copies measure 0.95-1.0."""
    return bin(a[0] ^ b[0]).count("1") <= 6 and float(np.mean(a[1] * b[1])) >= 0.9


def scale(bgr: np.ndarray, short_side: int) -> np.ndarray:
    h, w = bgr.shape[:2]
    factor = short_side / min(h, w)
    if factor >= 1:
        return bgr
    return cv2.resize(bgr, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)


def safe_name(candidate: Candidate) -> str:
    stem = re.sub(r"[^A-Za-z0-9]+", "_", candidate.path.rsplit("/", 1)[-1].rsplit(".", 1)[0]).strip("_")
    digest = hashlib.sha1(candidate.path.encode()).hexdigest()[:6]
    return f"{candidate.source}__{stem[:40]}_{digest}.jpg"


# ---------------------------------------------------------------------------------------------- main


@dataclass
class Kept:
    """A photo that passed the filters, with what the dedup compares later ones against."""

    candidate: Candidate  # its image already scaled to --short-side
    signature: tuple[int, np.ndarray]  # (dhash, grey_layout) of the original
    short_side: int  # before scaling: of two duplicates, the larger original stays


class Collector:
    """Filters, licence check and dedup, counting per source package what was kept and why the rest was not."""

    def __init__(self, min_side: int, short_side: int) -> None:
        self.min_side, self.short_side = min_side, short_side
        self.kept: list[Kept] = []
        self.dropped: dict[str, dict[str, int]] = {}

    def _drop(self, source: str, reason: str) -> None:
        counts = self.dropped.setdefault(source, {})
        counts[reason] = counts.get(reason, 0) + 1

    def consider(self, cand: Candidate) -> None:
        reason = cand.drop or looks_like_photo(cand.image, self.min_side)
        if not reason and not ALLOWED_LICENCES.match(cand.licence):
            reason = f"licence:{cand.licence or 'unknown'}"
        if reason:
            self._drop(cand.source, reason)
            return
        signature, short = (dhash(cand.image), grey_layout(cand.image)), min(cand.image.shape[:2])
        cand.image = scale(cand.image, self.short_side)
        for i, other in enumerate(self.kept):
            if same_picture(signature, other.signature):
                if short > other.short_side:
                    self._drop(other.candidate.source, "duplicate")
                    self.kept[i] = Kept(cand, signature, short)
                else:
                    self._drop(cand.source, "duplicate")
                return
        self.kept.append(Kept(cand, signature, short))

    def summary(self) -> dict[str, dict[str, int]]:
        """Per source package: ``kept`` and a count per reason for dropping."""
        table: dict[str, dict[str, int]] = {}
        for item in self.kept:
            row = table.setdefault(item.candidate.source, {"kept": 0})
            row["kept"] += 1
        for source, counts in self.dropped.items():
            table.setdefault(source, {"kept": 0}).update(counts)
        return table


def main(argv: list[str] | None = None) -> int:
    names = [s.package for s in SOURCES] + ["scikit-image"]
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache/chromaflow/training-data")
    parser.add_argument("--work", type=Path, default=None, help="download/unpack folder (default OUT/_work)")
    parser.add_argument("--short-side", type=int, default=320)
    parser.add_argument("--min-side", type=int, default=200)
    parser.add_argument("--archive", action="store_true", help="also write OUT/training-data.tar")
    parser.add_argument(
        "--source", action="append", choices=names, metavar="PACKAGE", help="only these sources (repeatable)"
    )
    args = parser.parse_args(argv)
    if "shared" in args.out.resolve().parts:
        parser.error("refusing to write into a 'shared' folder: that data is for evaluation only")
    chosen = set(args.source or names)
    work = args.work or args.out / "_work"
    images_dir = args.out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)

    collector = Collector(args.min_side, args.short_side)
    for source in SOURCES:
        if source.package not in chosen:
            continue
        try:
            for cand in candidates_from(source, work):
                collector.consider(cand)
        except (subprocess.CalledProcessError, OSError) as err:
            print(f"{source.package}: skipped ({err})", file=sys.stderr)
    if "scikit-image" in chosen:
        for cand in skimage_candidates():
            collector.consider(cand)
    summary = collector.summary()
    for package, row in summary.items():
        print(f"{package}: {row}", file=sys.stderr)

    for old in images_dir.glob("*.jpg"):
        old.unlink()
    rows = ["file\tsource\tversion\toriginal\tlicence\tcopyright"]
    for item in collector.kept:
        cand = item.candidate
        name = safe_name(cand)
        ok, buf = cv2.imencode(".jpg", cand.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            continue
        (images_dir / name).write_bytes(buf.tobytes())
        rows.append("\t".join((name, cand.source, cand.version, cand.path, cand.licence, cand.holder)))
    attribution = args.out / "attribution.tsv"
    attribution.write_text("\n".join(rows) + "\n")
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    if args.archive:
        tmp = args.out / "training-data.tar.part"
        with tarfile.open(tmp, "w") as tar:
            tar.add(attribution, arcname="attribution.tsv")
            tar.add(images_dir, arcname="images")
        tmp.rename(args.out / "training-data.tar")
    print(f"kept {len(rows) - 1} images in {images_dir}", file=sys.stderr)
    print(str(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
