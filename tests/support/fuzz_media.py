"""Seeded bad (and awkward but valid) media for the fuzz tests in ``tests/test_fuzz.py``.

Everything here is data: a :class:`Medium` is a set of files (name -> bytes, plus empty folders) and the IN argument
a command gets. Damaged media are byte-level edits of small valid clips and images written with PyAV and OpenCV,
so the corpus is the same on every run of the same seed and costs well under a second to build. Categories:

- ``truncated``: valid files cut at seeded offsets; ``corrupted``: seeded byte ranges overwritten;
- ``header``: files that are not what their name or header says (empty, text, random bytes, broken y4m headers);
- ``dimensions``: absurd or tiny sizes (y4m/PNG/JPEG/BMP headers claiming huge pictures, videos under 12 px);
- ``pixfmt``: one small clip per pixel format PyAV can write (and images in every format of the PNG, TIFF and BMP
  encoders); ``vfr``: variable frame rate; ``empty``: containers with no frames; ``audio``: audio only;
- ``sequence``: image sequences with a missing, damaged, resized or re-typed frame.
"""

import functools
import io
import random
import struct
import tempfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np

from support.pyav_synth import synth_rgb, write_clip

W, H, FRAMES = 64, 48, 6
SEED = 16  # issue 16
VFR_PTS_MS = (0, 40, 80, 200, 240, 400, 440, 1000)  # milliseconds: gaps of 40, 120 and 560 ms


@dataclass(frozen=True)
class Medium:
    """Files to write into a fresh folder (``files``: relative name -> bytes; ``folders``: empty folders to make)
    and the IN argument naming them (relative to that folder)."""

    arg: str
    files: dict[str, bytes]
    folders: tuple[str, ...] = ()
    frames: int | None = None  # frames a correct reader gets (None: unknown, e.g. damaged)
    size: tuple[int, int] | None = (W, H)  # width, height of every frame a correct reader gets
    times: tuple[float, ...] | None = None  # frame times in seconds, where they matter (VFR)
    cut_mid_frame: bool = False  # a y4m stream ending inside a frame: a run that succeeds must warn

    def write(self, folder: Path) -> str:
        for name in self.folders:
            (folder / name).mkdir(parents=True, exist_ok=True)
        for name, data in self.files.items():
            path = folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)
        return str(folder / self.arg)


@dataclass(frozen=True)
class Recipe:
    """A named, lazily built medium of a category and the exit codes a correct command may answer with (exit 0
    also means: the result is complete and correct)."""

    name: str
    category: str
    build: Callable[[], Medium] = field(compare=False)
    exit_codes: frozenset[int] = frozenset({0, 3})


BAD_INPUT = frozenset({3})
OK = frozenset({0})
OK_OR_BAD = frozenset({0, 3})


# ------------------------------------------------------------------------------------------------ valid bases


def _clip_bytes(ext: str, **options: object) -> bytes:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"clip.{ext}"
        write_clip(path, **options)  # type: ignore[arg-type]
        return path.read_bytes()


# name -> (extension, write_clip options): the valid clips the damaged ones are made from
BASES: dict[str, tuple[str, dict[str, object]]] = {
    "mkv-ffv1": ("mkv", {"codec": "ffv1"}),
    "mp4-h264-aac": ("mp4", {"codec": "libx264", "audio": True}),
    "webm-vp9": ("webm", {"codec": "libvpx-vp9"}),
    "y4m": ("y4m", {"codec": "wrapped_avframe"}),
    "avi-mjpeg": ("avi", {"codec": "mjpeg", "pix_fmt": "yuvj420p"}),
}


@functools.cache
def base_clip(name: str) -> bytes:
    ext, options = BASES[name]
    return _clip_bytes(ext, width=W, height=H, frames=FRAMES, seed=SEED, **options)


def frame_bgr(index: int = 0, width: int = W, height: int = H) -> np.ndarray:
    return np.ascontiguousarray(synth_rgb(width, height, index, SEED)[:, :, ::-1])


def encode_image(ext: str, image: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(ext, image)
    assert ok, ext
    return buf.tobytes()


@functools.cache
def base_image(ext: str) -> bytes:
    return encode_image(ext, frame_bgr())


# ------------------------------------------------------------------------------------------------ byte edits


def truncation_offsets(size: int, count: int, salt: str) -> list[int]:
    """``count`` distinct cut points in ``1 .. size - 1``: a few fixed ones inside any header, the rest seeded."""
    rng = random.Random(f"{SEED}-cut-{salt}")
    fixed = [o for o in (1, 12, 100) if o < size]
    points = set(fixed)
    while len(points) < min(count, size - 1):
        points.add(rng.randrange(1, size))
    return sorted(points)[:count]


FILLS = ("zeros", "ones", "random", "flip")


def corruptions(size: int, count: int, salt: str) -> list[tuple[int, int, str]]:
    """``count`` seeded (start, length, fill) edits; the first always hits the first 64 bytes (the header)."""
    rng = random.Random(f"{SEED}-corrupt-{salt}")
    out = []
    for k in range(count):
        start = rng.randrange(0, min(64, size)) if k == 0 else rng.randrange(0, size)
        length = rng.choice((1, 4, 16, 64, 256))
        out.append((start, min(length, size - start), FILLS[k % len(FILLS)]))
    return out


def corrupt(data: bytes, start: int, length: int, fill: str, salt: str) -> bytes:
    out = bytearray(data)
    rng = random.Random(f"{SEED}-fill-{salt}-{start}")
    for i in range(start, start + length):
        if fill == "zeros":
            out[i] = 0
        elif fill == "ones":
            out[i] = 0xFF
        elif fill == "random":
            out[i] = rng.randrange(256)
        else:
            out[i] ^= 0x5A
    return bytes(out)


# ------------------------------------------------------------------------------------------------ headers


def y4m_stream(
    header: str, frames: int = 2, frame_bytes: int | None = None, marker: bytes = b"FRAME\n"
) -> bytes:
    """A y4m stream: ``header`` (after ``YUV4MPEG2 ``) and ``frames`` frames of ``frame_bytes`` mid-gray bytes
    (default: what a W64 H48 4:2:0 frame holds)."""
    size = W * H * 3 // 2 if frame_bytes is None else frame_bytes
    return f"YUV4MPEG2 {header}\n".encode() + (marker + bytes([128]) * size) * frames


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def png_claiming(width: int, height: int, rows: int = 2) -> bytes:
    """A PNG whose IHDR claims ``width`` x ``height`` (8-bit gray) but whose data holds ``rows`` short rows."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    data = zlib.compress(b"".join(b"\0" + bytes(16) for _ in range(rows)))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", data)
        + _png_chunk(b"IEND", b"")
    )


def jpeg_claiming(width: int, height: int) -> bytes:
    """A small real JPEG with its frame header (SOF0) rewritten to claim ``width`` x ``height``."""
    data = bytearray(base_image(".jpg"))
    sof = data.find(b"\xff\xc0")
    assert sof > 0
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def bmp_claiming(width: int, height: int) -> bytes:
    """A 24-bit BMP header claiming ``width`` x ``height`` followed by a few bytes of pixels."""
    pixels = bytes(64)
    header = struct.pack("<2sIHHI", b"BM", 54 + len(pixels), 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, len(pixels), 2835, 2835, 0, 0)
    return header + info + pixels


# ------------------------------------------------------------------------------------------------ formats


def _frame(pix_fmt: str, index: int, width: int = W, height: int = H) -> av.VideoFrame:
    rgb = av.VideoFrame.from_ndarray(synth_rgb(width, height, index, SEED), format="rgb24")
    return rgb.reformat(format=pix_fmt)


def _encode(buf: io.BytesIO, container: str, codec: str, pix_fmt: str, frames: int) -> None:
    with av.open(buf, "w", format=container) as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, pix_fmt
        for i in range(frames):
            frame = _frame(pix_fmt, i)
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def _decodes_as(data: bytes, pix_fmt: str, frames: int) -> bool:
    try:
        with av.open(io.BytesIO(data)) as c:
            got = list(c.decode(video=0))
    except (av.error.FFmpegError, IndexError, ValueError):
        return False
    return len(got) == frames and all(f.format.name == pix_fmt for f in got)


def _encoders_by_format() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name in sorted(av.codecs_available):
        try:
            codec = av.Codec(name, "w")
        except (av.error.FFmpegError, ValueError):
            continue
        if codec.type != "video" or not codec.video_formats:
            continue
        for fmt in codec.video_formats:
            found.setdefault(fmt.name, []).append(name)
    return found


PIXFMT_FRAMES = 3


@functools.cache
def pixel_format_clips() -> dict[str, tuple[str, bytes]]:
    """Every pixel format some PyAV encoder takes, as a 3-frame 64x48 clip that decodes back in that format:
    ``{pix_fmt: (extension, bytes)}``. Raw video in NUT first; else the format's own encoders in Matroska.
    Formats that swscale cannot produce or no container carries back are left out (hardware formats, Bayer)."""
    clips: dict[str, tuple[str, bytes]] = {}
    for pix_fmt, encoders in _encoders_by_format().items():
        attempts = [("nut", "rawvideo")] + [("matroska", e) for e in encoders if e != "rawvideo"]
        for container, codec in attempts:
            buf = io.BytesIO()
            try:
                _encode(buf, container, codec, pix_fmt, PIXFMT_FRAMES)
            except (av.error.FFmpegError, ValueError, TypeError):
                continue
            if _decodes_as(buf.getvalue(), pix_fmt, PIXFMT_FRAMES):
                clips[pix_fmt] = ("nut" if container == "nut" else "mkv", buf.getvalue())
                break
    return dict(sorted(clips.items()))


# image encoders PyAV has, and the file extension their output is read under
IMAGE_ENCODERS = {"png": ".png", "tiff": ".tif", "bmp": ".bmp"}


@functools.cache
def image_format_files() -> dict[str, bytes]:
    """One 64x48 still per (image encoder, pixel format) PyAV can write: ``{"png-rgb48be.png": bytes, ...}``."""
    files: dict[str, bytes] = {}
    for codec, ext in IMAGE_ENCODERS.items():
        for fmt in av.Codec(codec, "w").video_formats or ():
            try:
                ctx = av.CodecContext.create(codec, "w")
                ctx.width, ctx.height, ctx.pix_fmt = W, H, fmt.name
                ctx.time_base = Fraction(1, 25)
                frame = _frame(fmt.name, 0)
                packets = [*ctx.encode(frame), *ctx.encode(None)]
            except (av.error.FFmpegError, ValueError):
                continue  # e.g. pal8: swscale does not quantise to a palette
            if packets:
                files[f"{codec}-{fmt.name}{ext}"] = b"".join(bytes(p) for p in packets)
    return files


# ------------------------------------------------------------------------------------------------ special clips


def sized_clip(width: int, height: int, pix_fmt: str = "yuv444p") -> bytes:
    return _clip_bytes(
        "mkv", width=width, height=height, frames=FRAMES, codec="ffv1", pix_fmt=pix_fmt, seed=SEED
    )


def vfr_clip(ext: str, codec: str) -> bytes:
    return _clip_bytes(
        ext,
        width=W,
        height=H,
        frames=len(VFR_PTS_MS),
        codec=codec,
        pts=VFR_PTS_MS,
        time_base=Fraction(1, 1000),
    )


def empty_container(fmt: str, codec: str) -> bytes:
    """A container with one video stream and no frames (header only)."""
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        out.start_encoding()
    return buf.getvalue()


def audio_only(fmt: str, codec: str, rate: int = 48000) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        layout = "stereo" if codec == "libopus" else "mono"
        channels = 2 if layout == "stereo" else 1
        sample_format = stream.codec_context.format.name
        for k in range(8):
            t = np.arange(1024) + 1024 * k
            tone = (0.2 * np.sin(2 * np.pi * 440 * t / rate)).astype(np.float32)
            frame = av.AudioFrame.from_ndarray(np.tile(tone, (channels, 1)), format="fltp", layout=layout)
            frame.sample_rate, frame.pts, frame.time_base = rate, 1024 * k, Fraction(1, rate)
            if sample_format != "fltp":
                frame = av.AudioResampler(format=sample_format, layout=layout, rate=rate).resample(frame)[0]
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return buf.getvalue()


def sequence(ext: str = ".png", count: int = FRAMES) -> dict[str, bytes]:
    return {f"seq/{i:03d}{ext}": encode_image(ext, frame_bgr(i)) for i in range(count)}


# ------------------------------------------------------------------------------------------------ the corpus


def _single(name: str, data: bytes, **facts: object) -> Callable[[], Medium]:
    return lambda: Medium(name, {name: data}, **facts)  # type: ignore[arg-type]


def _lazy(name: str, make: Callable[[], bytes], **facts: object) -> Callable[[], Medium]:
    return lambda: Medium(name, {name: make()}, **facts)  # type: ignore[arg-type]


def _truncated_base(base: str, offset: int) -> Medium:
    ext, _ = BASES[base]
    data = base_clip(base)[:offset]
    cut_mid = ext == "y4m" and _y4m_cut_mid_frame(base_clip(base), offset)
    return Medium(f"in.{ext}", {f"in.{ext}": data}, frames=None, cut_mid_frame=cut_mid)


def _y4m_cut_mid_frame(data: bytes, offset: int) -> bool:
    """True when ``offset`` falls inside a frame's pixels (after its FRAME line), not between frames."""
    header_end = data.index(b"\n") + 1
    frame = len(b"FRAME\n") + W * H * 3 // 2
    inside = (offset - header_end) % frame
    return offset > header_end and inside > len(b"FRAME\n")


def _corrupted_base(base: str, start: int, length: int, fill: str) -> Medium:
    ext, _ = BASES[base]
    data = corrupt(base_clip(base), start, length, fill, base)
    return Medium(f"in.{ext}", {f"in.{ext}": data}, frames=None)


def video_recipes(truncations: int = 6, corruptions_per_base: int = 5) -> list[Recipe]:
    """Inputs for the video verbs (colorize, deflicker, deepfake) and the PyAV/VapourSynth hosts."""
    out: list[Recipe] = []
    for base in BASES:
        size = len(base_clip(base))
        for offset in truncation_offsets(size, truncations, base):
            out.append(
                Recipe(f"{base}-cut{offset}", "truncated", functools.partial(_truncated_base, base, offset))
            )
        for start, length, fill in corruptions(size, corruptions_per_base, base):
            out.append(
                Recipe(
                    f"{base}-{fill}{length}@{start}",
                    "corrupted",
                    functools.partial(_corrupted_base, base, start, length, fill),
                )
            )
    ok = dict(frames=FRAMES)
    header: list[tuple[str, Callable[[], Medium], frozenset[int]]] = [
        ("empty-file", _single("in.mp4", b""), BAD_INPUT),
        ("text-file", _single("in.mkv", b"this is not a video\n"), BAD_INPUT),
        ("random-bytes", _single("in.mp4", random.Random(SEED).randbytes(4096)), BAD_INPUT),
        ("zero-bytes", _single("in.mkv", bytes(4096)), BAD_INPUT),
        ("png-named-mp4", _lazy("in.mp4", lambda: base_image(".png")), OK_OR_BAD),
        ("mp4-named-mkv", _lazy("in.mkv", lambda: base_clip("mp4-h264-aac"), **ok), OK),
        ("folder-named-mp4", lambda: Medium("in.mp4", {}, folders=("in.mp4",)), BAD_INPUT),
        (
            "y4m-bad-magic",
            _single("in.y4m", b"YUV4MPEG3" + y4m_stream("W64 H48 F25:1 C420jpeg")[9:]),
            BAD_INPUT,
        ),
        ("y4m-no-width", _single("in.y4m", y4m_stream("H48 F25:1 C420jpeg")), BAD_INPUT),
        ("y4m-W99999-H99999", _single("in.y4m", y4m_stream("W99999 H99999 F25:1 C420jpeg", 1)), BAD_INPUT),
        ("y4m-W0-H0", _single("in.y4m", y4m_stream("W0 H0 F25:1 C420jpeg")), BAD_INPUT),
        ("y4m-W-64", _single("in.y4m", y4m_stream("W-64 H48 F25:1 C420jpeg")), BAD_INPUT),
        ("y4m-C999", _single("in.y4m", y4m_stream("W64 H48 F25:1 C999")), BAD_INPUT),
        ("y4m-F0:0", _single("in.y4m", y4m_stream("W64 H48 F0:0 C420jpeg")), OK_OR_BAD),
        ("y4m-F25:0", _single("in.y4m", y4m_stream("W64 H48 F25:0 C420jpeg")), OK_OR_BAD),
        (
            "y4m-W4096-H4096-short",
            _single("in.y4m", y4m_stream("W4096 H4096 F25:1 C420jpeg", 1, 10)),
            BAD_INPUT,
        ),
        (
            "y4m-FRAMX",
            _single("in.y4m", y4m_stream("W64 H48 F25:1 C420jpeg", 2, marker=b"FRAMX\n")),
            OK_OR_BAD,
        ),
        ("y4m-interlaced", _single("in.y4m", y4m_stream("W64 H48 F25:1 Ib C420jpeg")), OK_OR_BAD),
        (
            "y4m-X-param",
            _single("in.y4m", y4m_stream("W64 H48 F25:1 C420jpeg XCOLORRANGE=FULL", 2), frames=2),
            OK,
        ),
    ]
    out += [Recipe(name, "header", make, exit_codes=codes) for name, make, codes in header]
    for width, height in ((8, 8), (11, 48), (64, 11), (4, 4), (2, 2), (1, 1), (12, 12), (33, 25), (2000, 4)):
        out.append(
            Recipe(
                f"video-{width}x{height}",
                "dimensions",
                _lazy(
                    "in.mkv",
                    functools.partial(sized_clip, width, height),
                    frames=FRAMES,
                    size=(width, height),
                ),
            )
        )
    out.append(
        Recipe(
            "seq-png-claims-100000x100000",
            "dimensions",
            _sequence_with({0: png_claiming(100000, 100000)}, 1),
            exit_codes=BAD_INPUT,
        )
    )
    for ext, codec in (("mkv", "ffv1"), ("webm", "libvpx-vp9"), ("mp4", "libx264")):
        times = tuple(ms / 1000 for ms in VFR_PTS_MS)
        make = _lazy(
            f"in.{ext}", functools.partial(vfr_clip, ext, codec), frames=len(VFR_PTS_MS), times=times
        )
        out.append(Recipe(f"vfr-{ext}", "vfr", make, exit_codes=OK))
    for fmt, codec, ext in (
        ("matroska", "ffv1", "mkv"),
        ("mp4", "libx264", "mp4"),
        ("webm", "libvpx-vp9", "webm"),
        ("nut", "rawvideo", "nut"),
    ):
        out.append(
            Recipe(
                f"no-frames-{ext}",
                "empty",
                _lazy(f"in.{ext}", functools.partial(empty_container, fmt, codec)),
                exit_codes=BAD_INPUT,
            )
        )
    out.append(
        Recipe(
            "no-frames-y4m",
            "empty",
            _single("in.y4m", y4m_stream("W64 H48 F25:1 C420jpeg", 0)),
            exit_codes=BAD_INPUT,
        )
    )
    out.append(
        Recipe(
            "no-frames-sequence",
            "empty",
            lambda: Medium("seq/%03d.png", {}, folders=("seq",)),
            exit_codes=BAD_INPUT,
        )
    )
    for fmt, codec, ext in (
        ("matroska", "aac", "mka"),
        ("mp4", "aac", "m4a"),
        ("wav", "pcm_s16le", "wav"),
        ("ogg", "libopus", "ogg"),
        ("flac", "flac", "flac"),
    ):
        out.append(
            Recipe(
                f"audio-only-{ext}",
                "audio",
                _lazy(f"in.{ext}", functools.partial(audio_only, fmt, codec)),
                exit_codes=BAD_INPUT,
            )
        )
    out += sequence_recipes()
    return out


def _sequence_with(
    changes: dict[int, bytes | None], count: int = FRAMES, ext: str = ".png"
) -> Callable[[], Medium]:
    """An image sequence ``seq/%03d<ext>`` with frames replaced (bytes) or removed (None)."""

    def make() -> Medium:
        files = sequence(ext, count)
        for index, data in changes.items():
            name = f"seq/{index:03d}{ext}"
            if data is None:
                del files[name]
            else:
                files[name] = data
        return Medium(f"seq/%03d{ext}", files, frames=count if not changes else None)

    return make


def sequence_recipes() -> list[Recipe]:
    png = lambda i: encode_image(".png", frame_bgr(i))  # noqa: E731
    gray = lambda i: encode_image(".png", cv2.cvtColor(frame_bgr(i), cv2.COLOR_BGR2GRAY))  # noqa: E731
    deep = lambda i: encode_image(".png", frame_bgr(i).astype(np.uint16) * 257)  # noqa: E731
    small = encode_image(".png", frame_bgr(2, W // 2, H // 2))
    jpg = encode_image(".jpg", frame_bgr(2))
    return [
        Recipe("seq-valid", "sequence", _sequence_with({}), exit_codes=OK),
        Recipe("seq-missing-middle", "sequence", _sequence_with({3: None})),
        Recipe("seq-missing-first", "sequence", _sequence_with({0: None})),
        Recipe("seq-truncated-middle", "sequence", lambda: _sequence_with({2: png(2)[: len(png(2)) // 2]})()),
        Recipe("seq-empty-frame", "sequence", _sequence_with({2: b""})),
        Recipe("seq-text-frame", "sequence", _sequence_with({2: b"not an image\n"})),
        Recipe("seq-smaller-frame", "sequence", _sequence_with({2: small})),
        Recipe("seq-gray-frame", "sequence", lambda: _sequence_with({2: gray(2)})()),
        Recipe("seq-16bit-frame", "sequence", lambda: _sequence_with({2: deep(2)})()),
        Recipe("seq-huge-header-frame", "sequence", _sequence_with({2: png_claiming(100000, 100000)})),
        Recipe(
            "seq-jpeg-corrupt-middle",
            "sequence",
            lambda: _sequence_with({2: corrupt(jpg, len(jpg) // 2, 64, "random", "seq")}, ext=".jpg")(),
        ),
    ]


def _image_medium(name: str, data: bytes, size: tuple[int, int] | None = (W, H)) -> Callable[[], Medium]:
    return lambda: Medium(name, {name: data}, frames=1, size=size)


def image_recipes(truncations: int = 6, corruptions_per_image: int = 5) -> list[Recipe]:
    """Inputs for ``chromaflow image``: damaged and absurd stills, every PyAV image pixel format, a folder with one
    damaged file."""
    out: list[Recipe] = []
    for ext in (".png", ".jpg"):
        data = base_image(ext)
        for offset in truncation_offsets(len(data), truncations, ext):
            out.append(
                Recipe(f"img{ext}-cut{offset}", "truncated", _image_medium(f"in{ext}", data[:offset], None))
            )
        for start, length, fill in corruptions(len(data), corruptions_per_image, ext):
            edited = corrupt(data, start, length, fill, ext)
            out.append(
                Recipe(
                    f"img{ext}-{fill}{length}@{start}", "corrupted", _image_medium(f"in{ext}", edited, None)
                )
            )
    for name, data in (
        ("img-empty", b""),
        ("img-text", b"not an image\n"),
        ("img-jpeg-named-png", base_image(".jpg")),
    ):
        codes = OK if name == "img-jpeg-named-png" else BAD_INPUT
        out.append(Recipe(name, "header", _image_medium("in.png", data), exit_codes=codes))
    for name, make in (
        ("png-claims-100000x100000", lambda: png_claiming(100000, 100000)),
        ("png-claims-0x0", lambda: png_claiming(0, 0)),
        ("png-claims-2147483647x1", lambda: png_claiming(2**31 - 1, 1)),
        ("jpeg-claims-65500x65500", lambda: jpeg_claiming(65500, 65500)),
        ("bmp-claims-100000x100000", lambda: bmp_claiming(100000, 100000)),
    ):
        ext = ".bmp" if name.startswith("bmp") else ".jpg" if name.startswith("jpeg") else ".png"
        out.append(
            Recipe(name, "dimensions", lambda n=f"in{ext}", m=make: Medium(n, {n: m()}), exit_codes=BAD_INPUT)
        )
    for name, data in image_format_files().items():
        out.append(
            Recipe(
                f"img-{Path(name).stem}",
                "pixfmt",
                _image_medium(f"in{Path(name).suffix}", data),
                exit_codes=OK_OR_BAD,  # a format OpenCV does not read may be refused, with exit 3
            )
        )
    for ext, image in (
        (".png", frame_bgr().astype(np.uint16) * 257),
        (".png", np.dstack([frame_bgr(), np.full((H, W), 200, np.uint8)])),
        (".tif", frame_bgr().astype(np.float32) / 255),
        (".jpg", cv2.cvtColor(frame_bgr(), cv2.COLOR_BGR2GRAY)),
        (".webp", frame_bgr()),
    ):
        kind = f"{image.dtype}x{image.shape[2] if image.ndim == 3 else 1}"
        out.append(
            Recipe(
                f"img-opencv-{kind}{ext}",
                "pixfmt",
                _image_medium(f"in{ext}", encode_image(ext, image)),
                exit_codes=OK,  # OpenCV wrote it, so OpenCV reads it
            )
        )
    damaged = base_image(".png")[:200]
    folder = {f"in/{i}.png": encode_image(".png", frame_bgr(i)) for i in range(3)} | {"in/1.png": damaged}
    out.append(Recipe("folder-one-damaged", "truncated", lambda: Medium("in", folder, frames=None)))
    return out


def pixel_format_recipes() -> list[Recipe]:
    """One clip per pixel format of :func:`pixel_format_clips`: processed correctly (exit 0) or refused (exit 3)."""

    def make(fmt: str) -> Medium:
        ext, data = pixel_format_clips()[fmt]
        return Medium(f"in.{ext}", {f"in.{ext}": data}, frames=PIXFMT_FRAMES)

    return [Recipe(f"pixfmt-{fmt}", "pixfmt", functools.partial(make, fmt)) for fmt in pixel_format_clips()]


def video_frame(pix_fmt: str, index: int, width: int = W, height: int = H) -> av.VideoFrame:
    """Frame ``index`` of the synthetic clip in ``pix_fmt`` (time base 1/25)."""
    frame = _frame(pix_fmt, index, width, height)
    frame.pts, frame.time_base = index, Fraction(1, 25)
    return frame


@functools.cache
def frame_formats() -> list[str]:
    """Every pixel format some PyAV encoder takes that swscale can produce (no container needed: for the nodes)."""
    names = []
    for fmt in sorted(_encoders_by_format()):
        try:
            _frame(fmt, 0, 8, 8)
        except (av.error.FFmpegError, ValueError):
            continue
        names.append(fmt)
    return names
