"""NVENC in the PyAV host: the probe, format names (h264/hevc/av1) with software fallback, explicit NVENC errors.

Everything here runs real PyAV encodes on tiny clips. Without an NVIDIA driver the wheel's NVENC encoders fail to
open for real, which is the fallback path checked below; the ``gpu`` test checks the NVENC path itself.
"""

import logging
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from chromaflow.core.errors import DeviceError, UsageError
from chromaflow.core.metrics import psnr
from chromaflow.core.nets.base import build_base
from chromaflow.filters.pyav import transcode
from chromaflow.filters.pyav.encoders import EncodeOptions, EncoderChoice
from chromaflow.filters.pyav.hardware import HARDWARE_ENCODERS, hardware_encoders, probe_encoder
from chromaflow.plugins.cli.main import main

from support.pyav_synth import write_clip

NVIDIA_PRESENT = torch.cuda.is_available() or os.path.exists("/dev/nvidia0")
needs_no_nvidia = pytest.mark.skipif(NVIDIA_PRESENT, reason="an NVIDIA GPU/driver is present: NVENC may open")


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("media") / "clip.mkv"
    write_clip(path, width=64, height=48, frames=5, codec="ffv1")
    return path


def decode_planes(path: Path) -> tuple[str, list[np.ndarray]]:
    """The video codec name and every frame as one yuv420p array (Y on top of U and V)."""
    with av.open(str(path)) as c:
        name = c.streams.video[0].codec_context.name
        return name, [f.to_ndarray(format="yuv420p") for f in c.decode(video=0)]


@needs_no_nvidia
def test_probe_reports_nvenc_unusable_here() -> None:
    present = [name for name in HARDWARE_ENCODERS.values() if name in av.codecs_available]
    assert present, "the PyAV wheel lists NVENC encoders"
    for name in present:
        result = probe_encoder(name)
        assert not result.opens and result.reason, result
    rows = hardware_encoders()
    assert [r["encoder"] for r in rows] == present
    assert all(r["opens"] is False and r["fallback"] for r in rows)


def test_probe_opens_a_software_encoder_and_is_cached() -> None:
    first = probe_encoder("libx264", 64, 48, "yuv420p")
    assert first.opens and first.reason == ""
    assert probe_encoder("libx264", 64, 48, "yuv420p") is first, "one probe per encoder/size/format/process"
    bad = probe_encoder("libx264", 64, 48, "yuv420p", (("preset", "no-such-preset"),))
    assert not bad.opens and bad.reason, "a refused option makes the probe fail with FFmpeg's reason"


@needs_no_nvidia
@pytest.mark.parametrize(
    ("fmt", "codec", "opts"),
    [
        ("h264", "libx264", {"crf": "18", "preset": "medium"}),
        ("hevc", "libx265", {"crf": "23", "preset": "medium"}),
    ],
)
def test_format_names_fall_back_to_software(fmt: str, codec: str, opts: dict[str, str]) -> None:
    choice = EncodeOptions(fmt).choose(".mkv", False)
    assert (choice.codec, choice.automatic) == (codec, True)
    assert HARDWARE_ENCODERS[fmt] in choice.note and "does not open" in choice.note
    assert EncodeOptions(fmt).resolve(".mkv", False) == (codec, opts, None)


@needs_no_nvidia
def test_av1_falls_back_to_a_software_av1_encoder() -> None:
    codec, _, _ = EncodeOptions("av1").resolve(".mkv", False)
    assert codec in ("libsvtav1", "libaom-av1", "librav1e")


@needs_no_nvidia
def test_container_default_is_exactly_libx264_as_before(clip: Path, tmp_path: Path) -> None:
    """The default (.mp4 -> h264 -> libx264 here) writes the same bytes as --codec libx264 --crf 18 --preset medium."""
    default = transcode(clip, tmp_path / "default.mp4")
    named = transcode(clip, tmp_path / "named.mp4", codec="libx264")
    transcode(clip, tmp_path / "spelled.mp4", codec="libx264", crf=18, preset="medium")
    other = transcode(clip, tmp_path / "other.mp4", codec="libx264", crf=30)
    assert default.codec == named.codec == "libx264"
    data = (tmp_path / "default.mp4").read_bytes()
    assert data == (tmp_path / "named.mp4").read_bytes() == (tmp_path / "spelled.mp4").read_bytes()
    assert data != (tmp_path / "other.mp4").read_bytes() and other.codec == "libx264"


@needs_no_nvidia
def test_codec_h264_writes_decodable_h264_and_logs_the_choice(
    clip: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    out = tmp_path / "out.mp4"
    with caplog.at_level(logging.INFO, logger="chromaflow.encode"):
        report = transcode(clip, out, codec="h264")
    assert report.codec == "libx264" and report.frames_out == 5
    lines = [r.getMessage() for r in caplog.records if r.name == "chromaflow.encode"]
    assert len(lines) == 1, lines
    assert "libx264" in lines[0] and "h264_nvenc does not open" in lines[0]
    codec, frames = decode_planes(out)
    _, source = decode_planes(clip)
    assert codec == "h264" and len(frames) == 5
    assert min(psnr(a, b) for a, b in zip(frames, source, strict=True)) > 35


@needs_no_nvidia
@pytest.mark.parametrize("codec", ["h264_nvenc", "hevc_nvenc"])
def test_explicit_nvenc_fails_clearly_and_leaves_no_file(clip: Path, tmp_path: Path, codec: str) -> None:
    with pytest.raises(DeviceError, match="cannot be used on this machine") as info:
        transcode(clip, tmp_path / "out.mp4", codec=codec)
    message = str(info.value)
    fmt = codec.split("_")[0]
    assert codec in message and f"--codec {fmt}" in message, message
    assert list(tmp_path.iterdir()) == [], "neither a partial nor a final file"


@needs_no_nvidia
def test_cli_explicit_nvenc_exits_5_without_output(
    clip: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    torch.manual_seed(0)
    model = tmp_path / "tiny.pt"
    torch.save({"arch": "base", "state_dict": build_base().state_dict()}, model)
    out = tmp_path / "out.mp4"
    code = main(
        ["colorize", str(clip), str(out), "--model", str(model), "--size", "32", "--codec", "h264_nvenc"]
    )
    err = capsys.readouterr().err
    assert code == 5, err
    assert "h264_nvenc" in err and "--codec h264" in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.pt"]


def test_nvenc_quality_and_preset_mapping() -> None:
    """--crf becomes NVENC's cq in VBR, x264 preset names become p1..p7 (and back for libx264)."""
    nvenc = EncoderChoice("h264_nvenc", "h264_nvenc", automatic=False)
    assert EncodeOptions().options_for(nvenc, ".mp4", False) == (
        "h264_nvenc",
        {"preset": "p4", "rc": "vbr", "cq": "18", "b": "0"},
        None,
    )
    _, opts, rate = EncodeOptions(crf=21.5, preset="slow").options_for(nvenc, ".mp4", False)
    assert opts == {"preset": "p5", "rc": "vbr", "cq": "21.5", "b": "0"} and rate is None
    _, opts, rate = EncodeOptions(bitrate="4M", preset="veryfast").options_for(nvenc, ".mp4", False)
    assert opts == {"preset": "p1", "rc": "vbr"} and rate == 4_000_000
    hevc = EncoderChoice("hevc", "hevc_nvenc", automatic=True)
    assert EncodeOptions().options_for(hevc, ".mkv", False)[1]["cq"] == "23"
    with pytest.raises(UsageError, match="1 to 51"):
        EncodeOptions(crf=0).options_for(nvenc, ".mp4", False)
    codec, opts, _ = EncodeOptions(preset="p6").resolve(".mp4", False)
    assert opts["preset"] == ("p6" if codec == "h264_nvenc" else "slower"), "p-names map back for libx264"


@pytest.mark.gpu
def test_nvenc_encodes_and_decodes_back_faithfully(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA device")
    probe = probe_encoder("h264_nvenc")
    if not probe.opens and "NVENC engine" in probe.reason:
        pytest.skip(f"this GPU has no NVENC: {probe.reason}")
    assert probe.opens, probe.reason
    src = tmp_path / "src.mkv"
    write_clip(src, width=320, height=240, frames=10, codec="ffv1")
    out = tmp_path / "nvenc.mp4"
    report = transcode(src, out, codec="h264_nvenc")
    assert report.codec == "h264_nvenc" and report.frames_out == 10
    auto = transcode(src, tmp_path / "auto.mp4", codec="h264")
    assert auto.codec == "h264_nvenc", "the format name picks NVENC when it opens"
    codec, frames = decode_planes(out)
    _, source = decode_planes(src)
    assert codec == "h264" and len(frames) == 10
    values = [psnr(a, b) for a, b in zip(frames, source, strict=True)]
    print(f"h264_nvenc 320x240 PSNR per frame (dB): min {min(values):.2f}, mean {np.mean(values):.2f}")
    assert min(values) > 35
