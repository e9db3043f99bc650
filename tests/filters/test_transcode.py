"""transcode(): streams, timestamps, colour tags, containers, image sequences, y4m, and every fault case."""

import io
import os
import threading
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from chromaflow.core.colorizer import Colorizer
from chromaflow.core.errors import InputError, OutputError, UsageError
from chromaflow.core.nets.base import BaseColorNet
from chromaflow.filters.pyav import ColorizeNode, FilterNode, FrameNode, transcode
from chromaflow.filters.pyav.frames import plane_view

from support.pyav_synth import write_clip


@pytest.fixture(scope="module")
def colorizer() -> Colorizer:
    torch.manual_seed(0)
    return Colorizer(BaseColorNet(width=8).eval(), device="cpu", size=32)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 frames of VFR H.264 with AAC audio and SRT subtitles, BT.709 limited range tags."""
    path = tmp_path_factory.mktemp("media") / "clip.mkv"
    pts = [i * 40 + (i % 3) * 7 for i in range(12)]
    write_clip(
        path, frames=12, audio=True, subtitles=True, pts=pts, time_base=Fraction(1, 1000),
        colorspace=1, color_range=1, color_primaries=1, color_trc=1,
    )  # fmt: skip
    return path


def decode_all(path: Path | io.BytesIO, **kw: object) -> list[av.VideoFrame]:
    with av.open(path if isinstance(path, io.BytesIO) else str(path), **kw) as c:  # type: ignore[arg-type]
        return list(c.decode(video=0))


def packets(path: Path, kind: str) -> list[bytes]:
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        return [bytes(p) for p in c.demux(streams) if p.size]


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "partial" in p.name)


def test_streams_copied_timestamps_and_tags_kept(clip: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.mkv"
    report = transcode(clip, out, [FilterNode("hflip")])
    assert report.frames_out == 12 and report.copied_streams == ["#1 audio (aac)", "#2 subtitle (srt)"]
    assert packets(out, "audio") == packets(clip, "audio"), "audio is copied, not re-encoded"
    assert packets(out, "subtitle") == packets(clip, "subtitle")
    times_in = [round(float(f.time), 3) for f in decode_all(clip)]
    times_out = [round(float(f.time), 3) for f in decode_all(out)]
    assert times_out == times_in and len(set(np.diff(times_in).round(3))) > 1, "VFR stays VFR"
    with av.open(str(out)) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.color_primaries, ctx.color_trc, ctx.colorspace, ctx.color_range) == (1, 1, 1, 1)
    assert leftovers(tmp_path) == []


def test_mp4_drops_what_it_cannot_hold(clip: Path, tmp_path: Path) -> None:
    report = transcode(clip, tmp_path / "out.mp4")
    assert report.copied_streams == ["#1 audio (aac)"]
    assert report.dropped_streams and "srt" in report.dropped_streams[0]
    assert report.codec == "libx264"


def test_full_range_601_tags_kept(tmp_path: Path) -> None:
    src = tmp_path / "full.mkv"
    write_clip(src, frames=3, colorspace=5, color_range=2, color_primaries=6, color_trc=6)
    out = tmp_path / "full_out.mkv"
    transcode(src, out)
    with av.open(str(out)) as c:
        ctx = c.streams.video[0].codec_context
        assert (ctx.colorspace, ctx.color_range, ctx.color_primaries, ctx.color_trc) == (5, 2, 6, 6)


def test_ten_bit_luma_bit_exact_through_colorize(colorizer: Colorizer, tmp_path: Path) -> None:
    src = tmp_path / "ten.mkv"
    write_clip(src, frames=4, codec="ffv1", pix_fmt="yuv420p10le")
    out = tmp_path / "ten_out.mkv"
    report = transcode(src, out, [ColorizeNode(colorizer, smooth=0)], codec="ffv1")
    assert report.pix_fmt == "yuv420p10le"
    for a, b in zip(decode_all(src), decode_all(out), strict=True):
        assert b.format.name == "yuv420p10le"
        assert np.array_equal(plane_view(a, 0), plane_view(b, 0))


def test_ten_bit_h264(tmp_path: Path) -> None:
    src = tmp_path / "ten.mkv"
    write_clip(src, frames=3, pix_fmt="yuv420p10le")
    report = transcode(src, tmp_path / "ten.mp4")
    assert report.pix_fmt == "yuv420p10le"
    assert decode_all(tmp_path / "ten.mp4")[0].format.name == "yuv420p10le"


def test_odd_size(colorizer: Colorizer, tmp_path: Path) -> None:
    src = tmp_path / "odd.mkv"
    write_clip(src, width=853, height=479, frames=2, codec="ffv1")
    report = transcode(src, tmp_path / "odd.mp4", [ColorizeNode(colorizer, smooth=0)])
    assert (report.width, report.height) == (853, 479)
    assert report.pix_fmt == "yuv444p", "x264 refuses odd 4:2:0 sizes, so 4:4:4 is chosen"
    frames = decode_all(tmp_path / "odd.mp4")
    assert len(frames) == 2 and (frames[0].width, frames[0].height) == (853, 479)


def test_image_sequences_in_and_out(clip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "frames"
    folder.mkdir()
    report = transcode(clip, folder / "%04d.png")
    names = sorted(os.listdir(folder))
    assert report.codec == "png" and names[0] == "0001.png" and len(names) == 12
    back = tmp_path / "back.mkv"
    report = transcode(folder / "%04d.png", back, framerate="30")
    assert report.frames_out == 12
    with av.open(str(back)) as c:
        assert c.streams.video[0].average_rate == 30


def test_y4m_in_and_out_through_file_objects(clip: Path) -> None:
    sink = io.BytesIO()
    transcode(clip, "-", stdout=sink)
    data = sink.getvalue()
    assert data.startswith(b"YUV4MPEG2 W64 H48 F25:1")
    again = io.BytesIO()
    report = transcode("-", "-", [FilterNode("negate")], stdin=io.BytesIO(data), stdout=again)
    assert report.frames_out == 12
    frames = decode_all(io.BytesIO(again.getvalue()), format="yuv4mpegpipe")  # type: ignore[arg-type]
    assert len(frames) == 12


def test_webm_defaults_to_vp9(tmp_path: Path) -> None:
    src = tmp_path / "s.mkv"
    write_clip(src, frames=2)
    assert transcode(src, tmp_path / "o.webm").codec == "libvpx-vp9"


def test_encoder_options(clip: Path, tmp_path: Path) -> None:
    report = transcode(clip, tmp_path / "o.mkv", codec="ffv1", pix_fmt="yuv444p")
    assert (report.codec, report.pix_fmt) == ("ffv1", "yuv444p")
    with pytest.raises(UsageError, match="either --crf or --bitrate"):
        transcode(clip, tmp_path / "x.mp4", crf=20, bitrate="1M")
    with pytest.raises(UsageError, match="not available"):
        transcode(clip, tmp_path / "x.mp4", codec="nosuchcodec")
    with pytest.raises(UsageError, match="does not take"):
        transcode(clip, tmp_path / "x.mp4", pix_fmt="rgb48be")
    assert leftovers(tmp_path) == [] and not (tmp_path / "x.mp4").exists()


def test_stages_run_in_parallel_threads(clip: Path, tmp_path: Path) -> None:
    seen: set[str] = set()

    class Spy(FrameNode):
        def _accept(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
            seen.update(t.name for t in threading.enumerate())
            return [frame]

    transcode(clip, tmp_path / "o.mkv", [Spy()])
    assert {"chromaflow-decode", "chromaflow-encode"} <= seen


# --------------------------------------------------------------------------------------------- faults


def test_missing_unreadable_and_garbage_input(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        transcode(tmp_path / "nope.mp4", tmp_path / "o.mp4")
    with pytest.raises(InputError, match="is a folder"):
        transcode(tmp_path, tmp_path / "o.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    with pytest.raises(InputError, match="cannot open"):
        transcode(garbage, tmp_path / "o.mp4")
    assert not (tmp_path / "o.mp4").exists()


def test_no_video_stream(tmp_path: Path) -> None:
    audio_only = tmp_path / "a.mka"
    with av.open(str(audio_only), "w") as out:
        stream = out.add_stream("aac", rate=48000)
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 1024), np.float32), format="flt", layout="mono")
        frame.sample_rate = 48000
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    with pytest.raises(InputError, match="no video stream"):
        transcode(audio_only, tmp_path / "o.mp4")


def test_zero_frames(tmp_path: Path) -> None:
    empty = tmp_path / "empty.y4m"
    empty.write_bytes(b"YUV4MPEG2 W64 H48 F25:1 Ip A1:1 C420jpeg\n")
    with pytest.raises(InputError, match="no video frames"):
        transcode(empty, tmp_path / "o.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.y4m"]


def test_truncated_input(tmp_path: Path) -> None:
    src = tmp_path / "long.mkv"
    write_clip(src, frames=40, audio=True)
    data = src.read_bytes()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    report = transcode(cut, tmp_path / "o.mkv")
    assert 0 < report.frames_out < 30 and report.expected_frames in (40, 41)
    assert "ends after" in report.warnings[0]
    with pytest.raises(InputError, match="ends after"):
        transcode(cut, tmp_path / "strict.mkv", strict=True)
    assert not (tmp_path / "strict.mkv").exists() and leftovers(tmp_path) == []


def test_corrupt_packets_skipped_or_strict(tmp_path: Path) -> None:
    src = tmp_path / "long.mkv"
    write_clip(src, frames=40, audio=True)
    data = bytearray(src.read_bytes())
    for off in range(len(data) // 3, len(data) // 3 + 2000, 7):
        data[off] ^= 0x5A
    bad = tmp_path / "bad.mkv"
    bad.write_bytes(bytes(data))
    report = transcode(bad, tmp_path / "o.mkv")
    assert report.warnings, "the damage is reported"
    assert len(decode_all(tmp_path / "o.mkv")) == report.frames_out
    with pytest.raises(InputError, match=r"bad\.mkv"):
        transcode(bad, tmp_path / "strict.mkv", strict=True)
    assert not (tmp_path / "strict.mkv").exists() and leftovers(tmp_path) == []


def test_output_folder_missing_and_same_path(clip: Path, tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="does not exist"):
        transcode(clip, tmp_path / "missing" / "o.mp4")
    before = clip.read_bytes()
    with pytest.raises(OutputError, match="is the input"):
        transcode(clip, clip)
    assert clip.read_bytes() == before
    with pytest.raises(OutputError, match="is the input"):
        transcode(clip, clip.parent / "." / clip.name)


@pytest.mark.parametrize("error", [KeyboardInterrupt, InputError])
def test_interrupted_or_failed_run_leaves_nothing(
    clip: Path, tmp_path: Path, error: type[BaseException]
) -> None:
    class Boom(FrameNode):
        def _accept(self, frame: av.VideoFrame) -> list[av.VideoFrame]:
            if self.frames_in == 6:
                raise error("stop here")
            return [frame]

    for target in (tmp_path / "o.mp4", tmp_path / "%03d.png"):
        with pytest.raises(error):
            transcode(clip, target, [Boom()])
        assert sorted(p.name for p in tmp_path.iterdir()) == [], f"{target.name}: nothing left behind"
