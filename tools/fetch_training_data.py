#!/usr/bin/env python3
"""Download, extract, filter, deduplicate and scale freely licensed photographs for training ``base``.

Sources: Debian packages (``apt-get download`` + ``dpkg -x``, nothing is installed) and scikit-image's sample
images. Each file's licence is looked up in its package's machine-readable copyright file (DEP-5: the last
``Files:`` stanza that matches wins); files under licences outside ``ALLOWED_LICENCES`` are skipped.
Output (under ``--out``, default ``~/.cache/chromaflow/training-data``)::

    images/<source>__<name>.jpg   shorter side --short-side px (default 320), JPEG quality 92
    attribution.tsv               file, source package, version, original path, licence, copyright holder
    training-data.tar             the two above in one archive (with --archive)

Never point this at ../shared: that data is for evaluation only.
Usage: ``python tools/fetch_training_data.py [--out DIR] [--short-side N] [--archive]``.
"""

import argparse
import fnmatch
import hashlib
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
class Source:
    """One Debian package and where its photographs are (globs relative to the unpacked root)."""

    package: str
    globs: tuple[str, ...]
    kind: str = "file"  # "file": image files; "rcc": Qt resource bundles; "edj": EET containers with JPEGs
    default_licence: str = ""  # used when the copyright file names no licence for a file


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


# ---------------------------------------------------------------------------------------------- licences


def parse_dep5(text: str) -> list[tuple[list[str], str, str]]:
    """Stanzas of a DEP-5 copyright file (or a GCompris resource README, which uses the same fields) as
    ``(file patterns, licence short name, copyright holder)``. Continuation lines extend the previous field."""
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


def candidates_from(source: Source, work: Path) -> Iterator[Candidate]:
    root, version = unpack(source.package, work)
    copyright_file = root / "usr/share/doc" / source.package / "copyright"
    stanzas = parse_dep5(copyright_file.read_text(errors="replace")) if copyright_file.exists() else []
    for pattern in source.globs:
        for file in sorted(root.glob(pattern)):
            if not file.is_file():
                continue
            rel = str(file.relative_to(root))
            if source.kind == "rcc":
                entries = dict(iter_rcc(file.read_bytes()))
                readmes = {
                    p.rsplit("/", 1)[0]: parse_dep5(d.decode("utf-8", "replace"))
                    for p, d in entries.items()
                    if p.endswith("/README")
                }
                items = ((f"{rel}:{p}", p, d) for p, d in entries.items() if p.endswith(".webp"))
            elif source.kind == "edj":
                items = ((f"{rel}#{i}", rel, d) for i, d in enumerate(jpegs_in(file.read_bytes())))
            elif file.suffix.lower() in IMAGE_SUFFIXES:
                items = iter([(rel, rel, file.read_bytes())])
            else:
                continue
            for name, licence_path, data in items:
                img = decode(data)
                if img is None:
                    continue
                licence, holder = licence_for(stanzas, licence_path, source.default_licence)
                if source.kind == "rcc":  # a README in the photo's folder or above names its own licence
                    folder = licence_path
                    while "/" in folder:
                        folder = folder.rsplit("/", 1)[0]
                        if folder in readmes:
                            own = licence_for(readmes[folder], licence_path[len(folder) + 1 :], "")
                            if own[0]:
                                licence, holder = own
                                break
                yield Candidate(source.package, version, name, licence, holder, img)


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path.home() / ".cache/chromaflow/training-data")
    parser.add_argument("--work", type=Path, default=None, help="download/unpack folder (default OUT/_work)")
    parser.add_argument("--short-side", type=int, default=320)
    parser.add_argument("--min-side", type=int, default=200)
    parser.add_argument("--archive", action="store_true", help="also write OUT/training-data.tar")
    args = parser.parse_args(argv)
    if "shared" in args.out.resolve().parts:
        parser.error("refusing to write into a 'shared' folder: that data is for evaluation only")
    work = args.work or args.out / "_work"
    images_dir = args.out / "images"
    images_dir.mkdir(parents=True, exist_ok=True)

    kept: list[tuple[Candidate, int]] = []
    skipped: dict[str, int] = {}

    def consider(cand: Candidate) -> None:
        reason = looks_like_photo(cand.image, args.min_side)
        if not reason and not ALLOWED_LICENCES.match(cand.licence):
            reason = f"licence:{cand.licence or 'unknown'}"
        if reason:
            skipped[reason] = skipped.get(reason, 0) + 1
            return
        h = dhash(cand.image)
        for i, (other, oh) in enumerate(kept):
            if bin(h ^ oh).count("1") <= 6:
                skipped["duplicate"] = skipped.get("duplicate", 0) + 1
                if min(cand.image.shape[:2]) > min(other.image.shape[:2]):
                    kept[i] = (cand, h)
                return
        cand.image = scale(cand.image, args.short_side)
        kept.append((cand, h))

    for source in SOURCES:
        before = len(kept)
        try:
            for cand in candidates_from(source, work):
                consider(cand)
        except (subprocess.CalledProcessError, OSError) as err:
            print(f"{source.package}: skipped ({err})", file=sys.stderr)
            continue
        print(f"{source.package}: {len(kept) - before} images", file=sys.stderr)
    before = len(kept)
    for cand in skimage_candidates():
        consider(cand)
    print(f"scikit-image: {len(kept) - before} images", file=sys.stderr)

    for old in images_dir.glob("*.jpg"):
        old.unlink()
    rows = ["file\tsource\tversion\toriginal\tlicence\tcopyright"]
    for cand, _ in kept:
        name = safe_name(cand)
        ok, buf = cv2.imencode(".jpg", cand.image, [cv2.IMWRITE_JPEG_QUALITY, 92])
        if not ok:
            continue
        (images_dir / name).write_bytes(buf.tobytes())
        rows.append("\t".join((name, cand.source, cand.version, cand.path, cand.licence, cand.holder)))
    attribution = args.out / "attribution.tsv"
    attribution.write_text("\n".join(rows) + "\n")
    if args.archive:
        tmp = args.out / "training-data.tar.part"
        with tarfile.open(tmp, "w") as tar:
            tar.add(attribution, arcname="attribution.tsv")
            tar.add(images_dir, arcname="images")
        tmp.rename(args.out / "training-data.tar")
    print(f"kept {len(kept)} images in {images_dir}; skipped {skipped}", file=sys.stderr)
    print(str(args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
