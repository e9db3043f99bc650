"""A reader for Qt's binary resource bundles (``.rcc`` files, as written by ``rcc -binary``).

Layout (Qt's rcc format, versions 1-3; all integers big-endian):
header: magic ``qres``, u32 version, u32 tree offset, u32 data offset, u32 names offset, (v3+) u32 flags.
tree: one node per entry, 14 bytes (v1) or 22 bytes (v2+, an extra u64 modification time):
  u32 name offset, u16 flags (1 = zlib, 2 = directory, 4 = zstd), then
  directory: u32 child count, u32 index of the first child node; file: u16 territory, u16 language,
  u32 data offset.
names: u16 length in UTF-16 units, u32 hash, the name in UTF-16BE.
data: u32 length, then the bytes; zlib entries start with a u32 uncompressed length.
"""

import struct
import zlib
from collections.abc import Iterator

FLAG_ZLIB = 1
FLAG_DIRECTORY = 2
FLAG_ZSTD = 4


class RccError(ValueError):
    """The bytes are not a readable rcc bundle."""


def iter_rcc(blob: bytes) -> Iterator[tuple[str, bytes]]:
    """Yield ``(path, content)`` for every file in an rcc bundle (zstd-compressed entries are skipped)."""
    if blob[:4] != b"qres":
        raise RccError("not a Qt resource bundle (no 'qres' magic)")
    version, tree_off, data_off, names_off = struct.unpack_from(">IIII", blob, 4)
    if version not in (1, 2, 3):
        raise RccError(f"unsupported rcc version {version}")
    node_size = 14 if version == 1 else 22

    def name_at(offset: int) -> str:
        (length,) = struct.unpack_from(">H", blob, names_off + offset)
        start = names_off + offset + 6
        return blob[start : start + 2 * length].decode("utf-16-be")

    def walk(index: int, prefix: str) -> Iterator[tuple[str, bytes]]:
        base = tree_off + index * node_size
        name_off, flags = struct.unpack_from(">IH", blob, base)
        name = "" if index == 0 else name_at(name_off)
        path = f"{prefix}/{name}" if prefix else name
        if flags & FLAG_DIRECTORY:
            count, first = struct.unpack_from(">II", blob, base + 6)
            for child in range(first, first + count):
                yield from walk(child, path)
            return
        (offset,) = struct.unpack_from(">I", blob, base + 10)
        (size,) = struct.unpack_from(">I", blob, data_off + offset)
        payload = blob[data_off + offset + 4 : data_off + offset + 4 + size]
        if flags & FLAG_ZSTD:
            return
        if flags & FLAG_ZLIB:
            payload = zlib.decompress(payload[4:])
        yield path, payload

    yield from walk(0, "")
