"""``benchmarks/transfer.py --scoring papers``: the papers' protocol as its docstring states it (centre crop to
832x480, gray from the 8-bit BT.601 Y', every frame scored with the method's own output, float PSNR)."""

from types import ModuleType

import numpy as np
import pytest

from support.scripts import load_benchmark


@pytest.fixture(scope="module")
def transfer() -> ModuleType:
    return load_benchmark("transfer")


def _clip(frames: int = 4) -> list[np.ndarray]:
    """A colour gradient sliding right by 3 px a frame, 854x480, with a red column at x = 5 (cropped away)."""
    x = np.arange(854)[None, :]
    y = np.arange(480)[:, None]
    out = []
    for t in range(frames):
        rgb = np.stack(
            [(x + 3 * t) % 256 + 0 * y, (y + x // 4) % 256, np.full((480, 854), 90) + 0 * x], axis=-1
        ).astype(np.uint8)
        rgb[:, 5] = (255, 0, 0)
        out.append(rgb)
    return out


def test_crop_and_gray_from_luma(transfer: ModuleType) -> None:
    frames = _clip()
    seq = transfer.PapersSequence("synthetic", frames)
    assert seq.gt_u8[0].shape == (480, 832, 3)
    assert np.array_equal(seq.gt_u8[0], frames[0][:, 11:843]), "the centre 832 columns"
    assert not (seq.gt_u8[0] == (255, 0, 0)).all(axis=-1).any(), "the column at x = 5 is cropped away"
    r, g, b = (frames[1][:, 11:843, c].astype(np.float64) for c in range(3))
    luma = 0.299 * r + 0.587 * g + 0.114 * b
    assert np.abs(seq.gray[1] - luma).max() <= 0.5 + 1e-9, "8-bit Y', rounded"


def test_float_psnr(transfer: ModuleType) -> None:
    gt = np.full((4, 4, 3), 0.5)
    assert transfer.float_psnr(gt, gt) == 100.0
    assert transfer.float_psnr(gt + 0.1, gt) == pytest.approx(20.0)
    assert transfer.float_psnr(gt + 0.9, gt) == pytest.approx(10 * np.log10(1 / 0.25)), "outputs clipped to 1"


def test_every_frame_scored_with_the_methods_own_output(transfer: ModuleType) -> None:
    seq = transfer.PapersSequence("synthetic", _clip())
    gray = transfer.papers_outputs(seq, [0], "gray")
    chain = transfer.papers_outputs(seq, [0], "flow_chain")
    assert len(chain) == len(seq.gt) and chain[0].shape == (480, 832, 3)
    # the keyframe is scored with the method's own output: the reference's colour on the gray input's L*, not a
    # copy of the ground truth
    assert transfer.float_psnr(chain[0], seq.gt[0]) < 100.0
    pairs = zip(chain, gray, seq.gt, strict=True)
    assert all(transfer.float_psnr(c, g) > transfer.float_psnr(y, g) for c, y, g in pairs)
