"""tools/fetch_training_data.py: per-file licences from DEP-5 files and GCompris READMEs, Qt resource bundles, the
high-dpi counterparts, the drawing list, and a whole run on locally built Debian packages (no network: ``unpack``
only calls apt-get for a package whose .deb is not already in the work folder)."""

import json
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))

import fetch_training_data as ftd  # noqa: E402
from qt_rcc import iter_rcc  # noqa: E402

LAND = "usr/share/games/endless-sky/images/land"
LAND_2X = "usr/share/games/endless-sky/plugins/endless-sky-high-dpi/images/land"
MUSIC = "gcompris/src/activities/explore_world_music/resource/music"

# The shape of endless-sky's copyright file: a catch-all, then ever narrower stanzas; the last match wins.
ENDLESS_SKY_DEP5 = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: endless-sky

Files: *
Copyright: Michael Zahniser <mzahniser@gmail.com>
License: GPL-3+

Files: images/*
Copyright: Michael Zahniser <mzahniser@gmail.com>
License: CC-BY-SA-4.0

Files: images/land/*
Copyright: Various
License: public-domain
 Taken from morgue-file.com, a collection of photographs that have been donated
 and placed in the public domain. (Exceptions noted below.)

Files: images/land/*-sfiera*
Copyright: Chris Pickel (sfiera.net)
License: CC-BY-SA-4.0

Files:
 images/land/badlands0*
 images/land/beach2*
Copyright: Various
License: public-domain
 Taken from unsplash.com, a collection of photographs that have been donated and
 placed in the public domain.

Files: images/land/nc*
Copyright: Someone
License: CC-BY-NC-4.0

License: GPL-3+
 This program is free software; you can redistribute it and/or modify
 it under the terms of the GNU General Public License.
"""

SCRATCH_DEP5 = """\
Format: http://dep.debian.net/deps/dep5/
Upstream-Name: scratch

Files: *
Copyright: Copyright (c) 2011 Massachusetts Institute of Technology
License: GPL-2

Files: Help/* Media/* Projects
Copyright: Copyright (c) 2011 Massachusetts Institute of Technology
License: CC-BY-SA-3.0

Files: debian/*
Copyright: Copyright (C) 2011-2013, Miriam Ruiz <miriam@debian.org>
License: MIT
"""

# A GCompris resource README (explore_world_music's format): one stanza per file, "Files:" last.
MUSIC_README = """\
Copyright: Kenneth Ritchards
License: Public Domain
Source: https://commons.wikimedia.org/wiki/File:Bata_drums.jpg
Files:
africa.webp

Copyright: Tom Harpel
License: CC-BY 2.0
Source: https://commons.wikimedia.org/wiki/File:Onalaska-Practice6.jpg
Files:
america.webp

Copyright: A. Painter
License: CC-BY-NC 2.0
Files:
japan.webp
"""


# ---------------------------------------------------------------------------------------------- helpers


def photo(height: int, width: int, seed: int) -> np.ndarray:
    """A photo-like BGR image: smooth random colour fields plus sensor-like noise (passes the photo filters)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (4, 8, 3), dtype=np.uint8)
    smooth = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    return np.clip(smooth + rng.normal(0, 6, smooth.shape), 0, 255).astype(np.uint8)


def flat_drawing(height: int, width: int) -> np.ndarray:
    """Three flat colours: what the cartoon test drops."""
    img = np.full((height, width, 3), (40, 160, 230), np.uint8)
    img[height // 2 :] = (30, 120, 40)
    img[: height // 4, : width // 3] = (250, 250, 250)
    return img


def encoded(img: np.ndarray, ext: str = ".jpg") -> bytes:
    ok, buf = cv2.imencode(ext, img, [cv2.IMWRITE_JPEG_QUALITY, 95] if ext == ".jpg" else [])
    assert ok
    return buf.tobytes()


def build_rcc(files: dict[str, bytes], compress: frozenset[str] = frozenset()) -> bytes:
    """A version-3 Qt resource bundle as ``rcc -binary`` lays it out: header, data, names, then the tree with
    each directory's children in consecutive nodes (breadth first); paths in ``compress`` are stored zlib'd."""
    tree: dict = {}
    for path, data in files.items():
        *folders, leaf = path.split("/")
        node = tree
        for folder in folders:
            node = node.setdefault(folder, {})
        node[leaf] = data
    names, name_offsets = bytearray(), {}
    data, nodes = bytearray(), []

    def name_offset(name: str) -> int:
        if name not in name_offsets:
            name_offsets[name] = len(names)
            utf16 = name.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(utf16) // 2, zlib.crc32(utf16)) + utf16)
        return name_offsets[name]

    queue: list[tuple[str, str, dict | bytes]] = [("", "", tree)]
    while queue:
        path, name, item = queue.pop(0)
        name_off = name_offset(name) if name else 0
        if isinstance(item, dict):
            first = len(nodes) + len(queue) + 1
            nodes.append(struct.pack(">IHIIQ", name_off, 2, len(item), first, 0))
            queue.extend((f"{path}/{k}".lstrip("/"), k, v) for k, v in sorted(item.items()))
        else:
            flags, payload = 0, item
            if path in compress:
                flags, payload = 1, struct.pack(">I", len(item)) + zlib.compress(item)
            nodes.append(struct.pack(">IHHHIQ", name_off, flags, 0, 0, len(data), 0))
            data.extend(struct.pack(">I", len(payload)) + payload)
    header_size = 24
    data_off, names_off = header_size, header_size + len(data)
    tree_off = names_off + len(names)
    header = b"qres" + struct.pack(">IIIII", 3, tree_off, data_off, names_off, 0)
    return header + bytes(data) + bytes(names) + b"".join(nodes)


def build_deb(debs: Path, package: str, version: str, files: dict[str, bytes]) -> None:
    """A real .deb (dpkg-deb --build) holding ``files``, where ``unpack`` looks for downloaded packages."""
    root = debs.parent / "src" / package
    for rel, content in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(content)
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: all\nMaintainer: Test <t@example.org>\n"
        "Description: test package\n"
    )
    debs.mkdir(parents=True, exist_ok=True)
    out = debs / f"{package}_{version}_all.deb"
    subprocess.run(
        ["dpkg-deb", "--root-owner-group", "--build", str(root), str(out)], check=True, capture_output=True
    )


# ---------------------------------------------------------------------------------------------- licences


def test_endless_sky_licences_follow_the_last_matching_stanza_for_both_sizes() -> None:
    stanzas = ftd.parse_dep5(ENDLESS_SKY_DEP5)
    for folder, suffix in ((LAND, ""), (LAND_2X, "@2x")):
        licence, holder = ftd.licence_for(stanzas, f"{folder}/sea0{suffix}.jpg", "")
        assert licence == "public-domain" and holder.startswith("Various; Taken from morgue-file.com")
        assert "unsplash" not in holder and "Exceptions" not in holder, (
            "only the first sentence of the origin"
        )
        licence, holder = ftd.licence_for(stanzas, f"{folder}/badlands0{suffix}.jpg", "")
        assert (licence, holder) == (
            "public-domain",
            "Various; Taken from unsplash.com, a collection of photographs "
            "that have been donated and placed in the public domain.",
        )
        assert ftd.licence_for(stanzas, f"{folder}/sea10-sfiera{suffix}.jpg", "") == (
            "CC-BY-SA-4.0",
            "Chris Pickel (sfiera.net)",
        )
        licence, _ = ftd.licence_for(stanzas, f"{folder}/nc1{suffix}.jpg", "")
        assert licence == "CC-BY-NC-4.0" and not ftd.ALLOWED_LICENCES.match(licence)
    assert ftd.licence_for(stanzas, "usr/share/games/endless-sky/images/ship/x.png", "")[0] == "CC-BY-SA-4.0"
    assert ftd.licence_for(stanzas, "usr/games/endless-sky", "")[0] == "GPL-3+"


def test_scratch_media_is_cc_by_sa_while_the_rest_is_gpl() -> None:
    stanzas = ftd.parse_dep5(SCRATCH_DEP5)
    licence, holder = ftd.licence_for(stanzas, "usr/share/scratch/Media/Backgrounds/Nature/lake.jpg", "")
    assert licence == "CC-BY-SA-3.0" and ftd.ALLOWED_LICENCES.match(licence)
    assert "Massachusetts Institute of Technology" in holder
    assert ftd.licence_for(stanzas, "usr/share/scratch/Scratch.image", "")[0] == "GPL-2"


# ---------------------------------------------------------------------------------------------- Qt bundles


def test_rcc_bundle_round_trip_and_its_readme_licences() -> None:
    files = {
        f"{MUSIC}/README": MUSIC_README.encode(),
        f"{MUSIC}/africa.webp": b"A" * 300,
        f"{MUSIC}/america.webp": b"B" * 50,
        "gcompris/src/activities/explore_world_music/ActivityInfo.qml": b"import QtQuick 2.12\n",
    }
    blob = build_rcc(files, compress=frozenset({f"{MUSIC}/README", f"{MUSIC}/africa.webp"}))
    assert dict(iter_rcc(blob)) == files
    readmes = ftd.rcc_readmes(blob)
    assert set(readmes) == {MUSIC}
    assert ftd.readme_licence(readmes, f"{MUSIC}/africa.webp") == (
        "Public-Domain",
        "Kenneth Ritchards (https://commons.wikimedia.org/wiki/File:Bata_drums.jpg)",
    )
    assert ftd.readme_licence(readmes, f"{MUSIC}/america.webp")[0] == "CC-BY-2.0"
    assert ftd.readme_licence(readmes, f"{MUSIC}/unlisted.webp") == ("", "")


def test_the_world_music_bundle_is_a_source() -> None:
    gcompris = next(s for s in ftd.SOURCES if s.package == "gcompris-qt-data")
    assert "usr/share/gcompris-qt/rcc/explore_world_music.rcc" in gcompris.globs


# ---------------------------------------------------------------------------------------------- dedup


def test_copies_are_one_picture_but_a_shared_hash_alone_is_not() -> None:
    rng = np.random.default_rng(0)
    x = np.tile(np.linspace(0, 160, 400, dtype=np.float32), (300, 1))
    y = np.tile(np.linspace(160, 0, 300, dtype=np.float32)[:, None], (1, 400))
    noise = rng.normal(0, 2, (300, 400))

    def bgr(grey: np.ndarray) -> np.ndarray:
        return cv2.cvtColor(np.clip(grey + 40, 0, 255).astype(np.uint8), cv2.COLOR_GRAY2BGR)

    ramp, tilted = bgr(x + noise), bgr(0.5 * x + y + noise)  # both brighten to the right on every row

    def signature(img: np.ndarray) -> tuple[int, np.ndarray]:
        return ftd.dhash(img), ftd.grey_layout(img)

    assert ftd.dhash(ramp) == ftd.dhash(tilted), "the difference hash cannot tell these apart"
    assert not ftd.same_picture(signature(ramp), signature(tilted))
    copy = cv2.imdecode(np.frombuffer(encoded(cv2.resize(ramp, (200, 150))), np.uint8), cv2.IMREAD_COLOR)
    assert ftd.same_picture(signature(ramp), signature(copy))


# ---------------------------------------------------------------------------------------------- a whole run


@pytest.mark.skipif(shutil.which("dpkg-deb") is None, reason="dpkg-deb builds the test packages")
def test_run_on_local_packages_prefers_high_dpi_drops_drawings_non_free_and_duplicates(
    tmp_path: Path,
) -> None:
    debs = tmp_path / "work" / "debs"
    cc = {"usr/share/doc/{}/copyright": ENDLESS_SKY_DEP5.encode()}
    beach = photo(200, 400, seed=2)
    build_deb(
        debs,
        "endless-sky-data",
        "0.9.8-1.2",
        {k.format("endless-sky-data"): v for k, v in cc.items()}
        | {
            f"{LAND}/sea0.jpg": encoded(photo(200, 400, seed=1)),
            f"{LAND}/beach2.jpg": encoded(beach),
            f"{LAND}/city2.jpg": encoded(flat_drawing(200, 400)),
            f"{LAND}/nc1.jpg": encoded(photo(200, 400, seed=3)),
        },
    )
    build_deb(
        debs,
        "endless-sky-high-dpi",
        "0.9.8-1",
        {k.format("endless-sky-high-dpi"): v for k, v in cc.items()}
        | {f"{LAND_2X}/sea0@2x.jpg": encoded(photo(400, 800, seed=1))},  # beach2 has no larger copy
    )
    build_deb(
        debs,
        "scratch",
        "1.4.0.6~dfsg1-6.1",
        {
            "usr/share/doc/scratch/copyright": SCRATCH_DEP5.encode(),
            # The same picture as endless-sky's beach2 at a higher resolution: it replaces that one.
            "usr/share/scratch/Media/Backgrounds/Nature/beach-malibu.jpg": encoded(
                cv2.resize(beach, (800, 400), interpolation=cv2.INTER_CUBIC)
            ),
            "usr/share/scratch/Media/Backgrounds/Indoors/room1.jpg": encoded(photo(300, 400, seed=4)),
            "usr/share/scratch/Media/Backgrounds/Nature/stars.gif": b"GIF89a",
            "usr/share/scratch/Media/Backgrounds/Nature/scratchthumbs.db": b"\0" * 16,
        },
    )
    rcc = build_rcc(
        {
            f"{MUSIC}/README": MUSIC_README.encode(),
            f"{MUSIC}/africa.webp": encoded(photo(300, 400, seed=5), ".webp"),
            f"{MUSIC}/japan.webp": encoded(photo(300, 400, seed=6), ".webp"),
        },
        compress=frozenset({f"{MUSIC}/README"}),
    )
    build_deb(
        debs,
        "gcompris-qt-data",
        "3.1-2",
        {
            "usr/share/doc/gcompris-qt-data/copyright": b"Files: *\nCopyright: GCompris team\nLicense: GPL-3+\n",
            "usr/share/gcompris-qt/rcc/explore_world_music.rcc": rcc,
        },
    )

    out = tmp_path / "out"
    sources = ["endless-sky-data", "scratch", "gcompris-qt-data"]
    argv = ["--out", str(out), "--work", str(tmp_path / "work"), "--short-side", "150", "--min-side", "150"]
    assert ftd.main(argv + [a for s in sources for a in ("--source", s)]) == 0

    lines = (out / "attribution.tsv").read_text().splitlines()
    rows = {r.split("\t")[3].rsplit("/", 1)[-1]: r.split("\t") for r in lines[1:]}
    assert set(rows) == {"sea0@2x.jpg", "beach-malibu.jpg", "africa.webp"}
    _, source, version, original, licence, holder = rows["sea0@2x.jpg"]
    assert (source, version, original) == ("endless-sky-high-dpi", "0.9.8-1", f"{LAND_2X}/sea0@2x.jpg")
    assert licence == "public-domain" and "morgue-file.com" in holder
    assert (rows["beach-malibu.jpg"][1], rows["beach-malibu.jpg"][4]) == ("scratch", "CC-BY-SA-3.0")
    africa = rows["africa.webp"]
    assert africa[3] == f"usr/share/gcompris-qt/rcc/explore_world_music.rcc:{MUSIC}/africa.webp"
    assert (africa[1], africa[4]) == ("gcompris-qt-data", "Public-Domain")
    for row in rows.values():
        img = cv2.imread(str(out / "images" / row[0]))
        assert img is not None and min(img.shape[:2]) == 150, "every kept image is scaled, replacements too"

    summary = json.loads((out / "summary.json").read_text())
    assert summary == {
        "endless-sky-data": {"kept": 0, "cartoon": 1, "licence:CC-BY-NC-4.0": 1, "duplicate": 1},
        "endless-sky-high-dpi": {"kept": 1},
        "scratch": {"kept": 1, "drawing": 1},
        "gcompris-qt-data": {"kept": 1, "licence:CC-BY-NC-2.0": 1},
    }
