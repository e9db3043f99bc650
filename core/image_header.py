"""An image file's width and height from its header, without decoding a pixel.

Decoding is where a hostile or damaged file costs memory: a PNG of a few bytes can claim 100000 x 100000 pixels,
and OpenCV allocates before it finds out. Reading the header first lets a caller refuse such a file with a clear
message. Handled: PNG, JPEG, BMP, TIFF (classic and BigTIFF; the first image), WebP (lossy, lossless, extended)
and the Netpbm family (PBM, PGM, PPM, PAM). Anything else, or a header that cannot be read, gives ``None``: the
caller then relies on the decoder's own limits.
"""

import struct
from pathlib import Path
from typing import BinaryIO

Size = tuple[int, int]  # (width, height)

_JPEG_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_JPEG_STANDALONE = {0x01, *range(0xD0, 0xDA)}
_MAX_JPEG_SEGMENTS = 10_000  # a header that never reaches its frame header is not worth reading further


def image_size(path: str | Path) -> Size | None:
    """``(width, height)`` from the header of the image file at ``path``, or ``None`` when unknown."""
    try:
        with open(path, "rb") as f:
            head = f.read(32)
            for sniff, reader in _READERS:
                if sniff(head):
                    f.seek(0)
                    size = reader(f)
                    return size if size is not None and size[0] > 0 and size[1] > 0 else None
    except (OSError, struct.error, ValueError):
        return None
    return None


def _exact(f: BinaryIO, n: int) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ValueError("the header ends early")
    return data


def _png(f: BinaryIO) -> Size | None:
    data = _exact(f, 24)
    if data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def _jpeg(f: BinaryIO) -> Size | None:
    f.seek(2)
    for _ in range(_MAX_JPEG_SEGMENTS):
        byte = _exact(f, 1)
        if byte != b"\xff":
            return None
        marker = _exact(f, 1)[0]
        while marker == 0xFF:  # fill bytes
            marker = _exact(f, 1)[0]
        if marker in _JPEG_STANDALONE:
            continue
        (length,) = struct.unpack(">H", _exact(f, 2))
        if length < 2:
            return None
        if marker in _JPEG_SOF:
            _precision, height, width = struct.unpack(">BHH", _exact(f, 5))
            return width, height
        f.seek(length - 2, 1)
    return None


def _bmp(f: BinaryIO) -> Size | None:
    data = _exact(f, 26)
    (dib,) = struct.unpack("<I", data[14:18])
    if dib == 12:  # BITMAPCOREHEADER
        width, height = struct.unpack("<HH", data[18:22])
        return width, height
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)  # a negative height means rows stored top-down


def _tiff(f: BinaryIO) -> Size | None:
    order = "<" if _exact(f, 2) == b"II" else ">"
    (version,) = struct.unpack(order + "H", _exact(f, 2))
    big = version == 43
    if big:
        _exact(f, 4)  # offset size (8) and padding
        (ifd,) = struct.unpack(order + "Q", _exact(f, 8))
        count_fmt, entry_size, value_at = "Q", 20, 12
    else:
        (ifd,) = struct.unpack(order + "I", _exact(f, 4))
        count_fmt, entry_size, value_at = "H", 12, 8
    f.seek(ifd)
    (count,) = struct.unpack(order + count_fmt, _exact(f, struct.calcsize(count_fmt)))
    found: dict[int, int] = {}
    for _ in range(min(count, 4096)):
        entry = _exact(f, entry_size)
        tag, kind = struct.unpack(order + "HH", entry[:4])
        if tag in (256, 257):  # ImageWidth, ImageLength: SHORT or LONG (LONG8 in BigTIFF)
            fmt = {3: "H", 4: "I", 16: "Q"}.get(kind)
            if fmt is None:
                return None
            (found[tag],) = struct.unpack_from(order + fmt, entry, value_at)
    if 256 in found and 257 in found:
        return found[256], found[257]
    return None


def _webp(f: BinaryIO) -> Size | None:
    data = _exact(f, 30)
    kind = data[12:16]
    if kind == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if kind == b"VP8L":
        if data[20] != 0x2F:
            return None
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if kind == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    return None


def _netpbm(f: BinaryIO) -> Size | None:
    head = f.read(4096)
    magic = head[:2]
    lines = [line.split(b"#", 1)[0] for line in head[2:].split(b"\n")]
    if magic == b"P7":  # PAM: WIDTH and HEIGHT lines
        fields = dict(line.split(None, 1) for line in lines if len(line.split(None, 1)) == 2)
        return int(fields[b"WIDTH"]), int(fields[b"HEIGHT"])
    tokens = b" ".join(lines).split()
    if len(tokens) < 2:
        return None
    return int(tokens[0]), int(tokens[1])


_READERS = (
    (lambda h: h.startswith(b"\x89PNG\r\n\x1a\n"), _png),
    (lambda h: h.startswith(b"\xff\xd8"), _jpeg),
    (lambda h: h.startswith(b"BM"), _bmp),
    (lambda h: h[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"), _tiff),
    (lambda h: h.startswith(b"RIFF") and h[8:12] == b"WEBP", _webp),
    (lambda h: len(h) > 2 and h[0:1] == b"P" and h[1:2] in b"1234567" and h[2:3].isspace(), _netpbm),
)
