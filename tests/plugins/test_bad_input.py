"""Bad or unusual input gets the project's own error (or a correct result), and valid input is never refused.

Each test here reproduces a defect of issue 16 with real files: tiny and thin videos (optical flow), absurd hint
radii, image headers that claim gigapixels, variable-frame-rate MKV/WebM, y4m headers and streams cut mid-frame,
reference keyframes that are folders or lie past the end, gray video stored as 4:2:0, and ``--arch`` on colorize.
"""

import io
import json
import struct
import subprocess
import sys
import zlib
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch

from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.hints import Hint, hint_tensors, parse_hint
from chromaflow.core.nets.base import build_base
from chromaflow.core.nets.zhang import SIGGRAPH17
from chromaflow.core.transfer import load_references
from chromaflow.filters.pyav import transcode
from chromaflow.filters.pyav.frames import plane_view
from chromaflow.plugins.cli.main import main

from support.pyav_synth import write_clip

CLI = [sys.executable, "-m", "chromaflow"]


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The `base` architecture with seeded random weights, its architecture recorded in the file."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    torch.save({"arch": "base", "state_dict": build_base(width=8).state_dict()}, path)
    return str(path)


def frame_count(path: Path) -> tuple[int, int, int]:
    """(frames, width, height) of a video file's first video stream, decoded."""
    with av.open(str(path)) as c:
        frames = list(c.decode(video=0))
    return len(frames), frames[0].width, frames[0].height


def partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "partial" in p.name or p.name.startswith("."))


# ------------------------------------------------------------------------------- tiny and thin frames


def test_flow_works_for_every_frame_size_and_preset() -> None:
    """DIS refuses sides under 12 px and crashes (segfault) on thin frames such as 64x8 or 100x12; in a child
    process, so a crash fails this test instead of ending the run."""
    code = """
import numpy as np
from chromaflow.core.flow import compute_flow, dis_flow, to_flow_luma
rng = np.random.default_rng(0)
for preset in ("ultrafast", "fast", "medium", "fine"):
    for h, w in [(1, 1), (2, 2), (6, 64), (64, 6), (8, 64), (12, 100), (100, 12), (11, 11), (17, 139), (30, 1000)]:
        a = rng.integers(0, 255, (h, w), dtype=np.uint8)
        b = np.roll(a, 1, axis=1)
        flow = compute_flow(a, b, preset) if preset != "fine" else dis_flow("fine", b, a, np.zeros((h, w, 2), np.float32))
        assert flow.shape == (h, w, 2) and flow.dtype == np.float32 and np.isfinite(flow).all(), (preset, h, w)
print("all sizes ok")
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert "all sizes ok" in done.stdout


def test_tiny_and_thin_videos_colorize_and_deflicker(tiny_model: str, tmp_path: Path) -> None:
    """2x2 and 64x6 videos go through colorize (model, keyframe reference) and deflicker with a correct result
    instead of an OpenCV traceback or a crash (child process, so a crash fails the test)."""
    runs = []
    for w, h in ((2, 2), (64, 6)):
        src = tmp_path / f"in{w}x{h}.mkv"
        write_clip(src, width=w, height=h, frames=6, codec="ffv1", pix_fmt="yuv444p")
        key = tmp_path / f"key{w}x{h}.png"
        assert cv2.imwrite(str(key), np.full((h, w, 3), (40, 90, 200), np.uint8))
        runs += [
            ["colorize", str(src), str(tmp_path / f"c{w}x{h}.mkv"), "--model", tiny_model, "--size", "32",
             "--device", "cpu"],
            ["colorize", str(src), str(tmp_path / f"r{w}x{h}.mkv"), "--model", "none", "--ref", f"0={key}"],
            ["deflicker", str(src), str(tmp_path / f"d{w}x{h}.mkv")],
        ]  # fmt: skip
    code = (
        "import json, sys\nfrom chromaflow.plugins.cli.main import main\n"
        f"print(json.dumps([main(a) for a in {runs!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-3000:]}"
    assert json.loads(done.stdout.strip().splitlines()[-1]) == [0] * len(runs), done.stderr[-3000:]
    for w, h in ((2, 2), (64, 6)):
        for prefix in "crd":
            assert frame_count(tmp_path / f"{prefix}{w}x{h}.mkv") == (6, w, h)


# ---------------------------------------------------------------------------------------------- hints


@pytest.mark.parametrize(
    "text", ["10,10,#ff0000,1e300", "10,10,#ff0000,1e7", "1e300,10,#ff0000", "-1,2,#ff0000"]
)
def test_absurd_hints_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="hint"):
        parse_hint(text)


def test_a_huge_radius_from_the_api_covers_the_image_without_overflow() -> None:
    _ab, mask = hint_tensors([Hint(3, 4, (255, 0, 0), radius=1e300)], (16, 16), 8)
    assert bool(mask.bool().all())


def test_cli_hint_with_overflowing_radius_exits_2(tiny_model: str, tmp_path: Path) -> None:
    src = tmp_path / "g.png"
    assert cv2.imwrite(str(src), np.full((16, 16), 128, np.uint8))
    code = main(["image", str(src), str(tmp_path / "o.png"), "--model", tiny_model, "--hint",
                 "10,10,#ff0000,1e300", "--size", "32", "--device", "cpu"])  # fmt: skip
    assert code == UsageError.exit_code and not (tmp_path / "o.png").exists()


# ------------------------------------------------------------------------------------ image sizes


def png_header_only(path: Path, width: int, height: int) -> None:
    """A PNG whose IHDR claims ``width`` x ``height`` (8-bit gray), with a tiny IDAT and IEND."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))
        + chunk(b"IEND", b"")
    )


@pytest.mark.parametrize("side", [100_000, 20_000])
def test_image_whose_header_claims_too_many_pixels_exits_3(
    side: int, tiny_model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "huge.png"
    png_header_only(src, side, side)
    code = main(["image", str(src), str(tmp_path / "o.png"), "--model", tiny_model, "--size", "32", "--device",
                 "cpu"])  # fmt: skip
    err = capsys.readouterr().err
    assert code == InputError.exit_code, err
    assert "--max-pixels" in err and "Traceback" not in err
    assert not (tmp_path / "o.png").exists()


def test_a_header_past_opencvs_own_limit_is_an_input_error(
    tiny_model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """With the cap raised, OpenCV's own limit (CV_IO_MAX_IMAGE_PIXELS) refuses the file: still exit 3."""
    src = tmp_path / "huge.png"
    png_header_only(src, 100_000, 100_000)
    code = main(["image", str(src), str(tmp_path / "o.png"), "--model", tiny_model, "--max-pixels", "1e12"])
    err = capsys.readouterr().err
    assert code == InputError.exit_code and "cannot read" in err and "Traceback" not in err, err


def test_max_pixels_option_caps_and_allows(
    tiny_model: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "g.png"
    assert cv2.imwrite(str(src), np.full((40, 50), 100, np.uint8))
    args = [
        "image",
        str(src),
        str(tmp_path / "o.png"),
        "--model",
        tiny_model,
        "--size",
        "32",
        "--device",
        "cpu",
    ]
    assert main([*args, "--max-pixels", "1999"]) == InputError.exit_code
    assert "2000 pixels" in capsys.readouterr().err
    assert main([*args, "--max-pixels", "2000"]) == 0
    assert cv2.imread(str(tmp_path / "o.png")).shape == (40, 50, 3)
    with pytest.raises(SystemExit) as bad:
        main([*args, "--max-pixels", "0"])
    assert bad.value.code == UsageError.exit_code


@pytest.mark.parametrize("ext", [".png", ".jpg", ".bmp", ".tif", ".webp", ".ppm", ".pgm"])
@pytest.mark.parametrize("channels", [1, 3])
def test_image_header_size_matches_the_decoded_size(ext: str, channels: int, tmp_path: Path) -> None:
    if (ext, channels) in ((".ppm", 1), (".pgm", 3)):
        pytest.skip("PPM is colour and PGM gray by definition")
    path = tmp_path / f"x{ext}"
    image = np.random.default_rng(0).integers(
        0, 255, (37, 53, channels)[: 2 if channels == 1 else 3], np.uint8
    )
    assert cv2.imwrite(str(path), image)
    from chromaflow.core.image_header import image_size  # new in issue 16

    assert image_size(path) == (53, 37)


def test_image_header_of_garbage_is_unknown(tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 4)
    from chromaflow.core.image_header import image_size  # new in issue 16

    assert image_size(junk) is None


# ----------------------------------------------------------------------------------- --arch on colorize


def test_colorize_takes_arch_for_a_plain_state_dict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    plain = tmp_path / "plain.pt"
    torch.save(SIGGRAPH17(width=4).state_dict(), plain)
    src = tmp_path / "in.mkv"
    write_clip(src, frames=3, gray=True)
    args = ["colorize", str(src), str(tmp_path / "o.mkv"), "--model", str(plain), "--size", "32",
            "--device", "cpu", "--no-smooth"]  # fmt: skip
    assert main(args) == UsageError.exit_code
    assert "--arch" in capsys.readouterr().err
    assert main([*args, "--arch", "siggraph17"]) == 0
    assert frame_count(tmp_path / "o.mkv")[0] == 3


# --------------------------------------------------------------------------- variable frame rate


def vfr_pts() -> list[int]:
    """30 frames in bursts of five at 25 fps with 0.6 s pauses (milliseconds): the nominal rate says 114."""
    pts, t = [], 0
    for i in range(30):
        pts.append(t)
        t += 40 if i % 5 else 600
    return pts


@pytest.mark.parametrize(("suffix", "codec"), [(".mkv", "libx264"), (".webm", "libvpx-vp9")])
def test_variable_frame_rate_files_are_not_called_damaged(suffix: str, codec: str, tmp_path: Path) -> None:
    src = tmp_path / f"vfr{suffix}"
    write_clip(src, frames=30, pts=vfr_pts(), time_base=Fraction(1, 1000), codec=codec)
    report = transcode(src, tmp_path / f"o{suffix}", strict=True)
    assert report.frames_out == 30 and report.warnings == []
    assert frame_count(tmp_path / f"o{suffix}")[0] == 30


def test_a_cut_file_is_still_damaged(tmp_path: Path) -> None:
    src = tmp_path / "vfr.mkv"
    write_clip(src, frames=30, pts=vfr_pts(), time_base=Fraction(1, 1000))
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(src.read_bytes()[: src.stat().st_size // 2])
    report = transcode(cut, tmp_path / "o.mkv")
    assert any("ends after" in w for w in report.warnings)
    with pytest.raises(InputError, match="ends after"):
        transcode(cut, tmp_path / "strict.mkv", strict=True)
    assert not (tmp_path / "strict.mkv").exists()


# --------------------------------------------------------------------------------------------- y4m


def y4m_clip(frames: int = 4, width: int = 16, height: int = 8, pix_fmt: str = "yuv420p") -> bytes:
    sink = io.BytesIO()
    with av.open(sink, "w", format="yuv4mpegpipe", container_options={"strict": "-1"}) as out:
        stream = out.add_stream("wrapped_avframe", rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for i in range(frames):
            frame = av.VideoFrame(width, height, pix_fmt)
            for p in range(len(frame.planes)):
                plane_view(frame, p)[:] = 60 + 10 * i + 20 * p
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return sink.getvalue()


@pytest.mark.parametrize("header", [b"W99999 H9999", b"W99999 H99999", b"W0 H48", b"Wabc H48"])
def test_y4m_header_with_absurd_size_is_a_clear_input_error(header: bytes, tmp_path: Path) -> None:
    data = b"YUV4MPEG2 " + header + b" F25:1 Ip A1:1 C420jpeg\nFRAME\n" + bytes(4096)
    src = tmp_path / "big.y4m"
    src.write_bytes(data)
    for source in (src, io.BytesIO(data)):
        with pytest.raises(InputError, match="y4m header") as err:
            transcode(source, tmp_path / "o.mkv")
        assert "busy" not in str(err.value)
    assert not (tmp_path / "o.mkv").exists()


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuv444p", "yuv422p10le", "gray"])
def test_y4m_cut_mid_frame_warns_and_strict_refuses(pix_fmt: str, tmp_path: Path) -> None:
    data = y4m_clip(frames=4, width=15, height=7, pix_fmt=pix_fmt)  # odd sizes: subsampled planes round up
    cut = data[: len(data) - 50]  # the last frame loses 50 of its bytes
    src = tmp_path / "cut.y4m"
    src.write_bytes(cut)
    for source in (lambda: src, lambda: io.BytesIO(cut)):
        report = transcode(source(), tmp_path / "o.mkv")
        assert report.frames_out == 3
        assert any("ends inside frame 3" in w for w in report.warnings), report.warnings
        with pytest.raises(InputError, match="ends inside frame 3"):
            transcode(source(), tmp_path / "strict.mkv", strict=True)
        assert not (tmp_path / "strict.mkv").exists()
    whole = transcode(io.BytesIO(data), tmp_path / "whole.mkv", strict=True)
    assert whole.frames_out == 4 and whole.warnings == []


def test_y4m_cut_mid_frame_on_stdin_warns_on_stderr(tmp_path: Path) -> None:
    data = y4m_clip(frames=4)
    done = subprocess.run(
        [*CLI, "deflicker", "-", str(tmp_path / "o.mkv")], input=data[:-50], capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()
    assert b"ends inside frame 3" in done.stderr
    done = subprocess.run(
        [*CLI, "deflicker", "-", str(tmp_path / "s.mkv"), "--strict"], input=data[:-50], capture_output=True,
        timeout=300,
    )  # fmt: skip
    assert done.returncode == InputError.exit_code and b"ends inside frame 3" in done.stderr
    assert not (tmp_path / "s.mkv").exists()


# ---------------------------------------------------------------------------------- reference frames


def test_reference_that_is_a_folder_says_so(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a folder") as err:
        load_references([f"0={tmp_path}"])
    assert "does not exist" not in str(err.value)


def test_reference_past_the_end_is_refused_before_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    key = tmp_path / "key.png"
    assert cv2.imwrite(str(key), np.full((48, 64, 3), (40, 90, 200), np.uint8))
    for name in ("in.mp4", "in.y4m"):
        src = tmp_path / name
        write_clip(src, frames=6, codec="wrapped_avframe" if name.endswith(".y4m") else "libx264")
        code = main(["colorize", str(src), str(tmp_path / "o.mkv"), "--model", "none", "--ref", f"0={key}",
                     "--ref", f"6={key}", "--progress", "json"])  # fmt: skip
        err = capsys.readouterr().err
        assert code == UsageError.exit_code, err
        assert "has 6 frames" in err and '"frames"' not in err, "refused before the first frame"
        assert not (tmp_path / "o.mkv").exists()


# ------------------------------------------------------------------------------ gray stored as 4:2:0


def gray_420(path: Path, frames: int = 8, black_first: int = 0, colour: bool = False) -> None:
    """FFV1 yuv420p frames of textured gray (Cb = Cr = 128), the first ``black_first`` frames black; ``colour``
    tints the textured frames."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        yy, xx = np.mgrid[0:48, 0:64]
        for n in range(frames):
            frame = av.VideoFrame(64, 48, "yuv420p")
            dark = n < black_first
            plane_view(frame, 0)[:] = 16 if dark else (100 + 60 * np.sin((xx + n) / 5.0) * np.cos(yy / 4.0))
            plane_view(frame, 1)[:] = 128 if dark or not colour else 150
            plane_view(frame, 2)[:] = 128 if dark or not colour else 110
            frame.pts, frame.time_base = n, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def test_deflicker_refuses_gray_content_stored_as_420(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    src = tmp_path / "gray.mkv"
    gray_420(src)
    code = main(["deflicker", str(src), str(tmp_path / "o.mkv")])
    err = capsys.readouterr().err
    assert code == InputError.exit_code and "colorize" in err and "gray" in err, err
    assert not (tmp_path / "o.mkv").exists()


def test_deflicker_accepts_colour_that_fades_in_from_black(tmp_path: Path) -> None:
    src = tmp_path / "fade.mkv"
    gray_420(src, frames=10, black_first=6, colour=True)
    assert main(["deflicker", str(src), str(tmp_path / "o.mkv")]) == 0
    assert frame_count(tmp_path / "o.mkv")[0] == 10


def test_gray_content_check_in_random_access_and_its_rule() -> None:
    """VapourSynth's random access (Deflicker) refuses the same gray clips as the stream; a gray opening that
    turns to colour within the radius is accepted, one that stays gray longer is not."""
    from chromaflow.core.deflicker import Deflicker, DeflickerStream

    yy, xx = np.mgrid[0:48, 0:64].astype(np.float32)

    def lab(n: int, colour: bool) -> tuple[np.ndarray, np.ndarray]:
        l_star = 50 + 20 * np.sin((xx + n) / 5.0) * np.cos(yy / 4.0)
        ab = np.zeros((2, 48, 64), np.float32)
        if colour:
            ab[0], ab[1] = 12.0, -8.0
        return l_star.astype(np.float32), ab

    with pytest.raises(InputError, match="colorize"):
        Deflicker(8, lambda k: lab(k, False), radius=2).ab(5)
    assert Deflicker(8, lambda k: lab(k, k >= 2), radius=2).ab(5).shape == (2, 48, 64)
    for first_colour, refused in ((2, False), (3, True)):
        stream = DeflickerStream(radius=2)
        try:
            for k in range(6):
                stream.push(*lab(k, k >= first_colour))
            stream.flush()
            outcome = False
        except InputError:
            outcome = True
        assert outcome == refused, first_colour
