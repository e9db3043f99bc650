"""MTCNN port against facenet-pytorch (the oracle, installed for the tests): the same random weights give the same
net outputs, and with the published weights our cascade finds the same faces, boxes and landmarks on DFDC frames.

The oracle runs as shipped on today's torch and NumPy (its ``detect`` returns object arrays; nothing to patch).
"""

from pathlib import Path

import av
import cv2
import numpy as np
import pytest
import torch
from torch import nn

from chromaflow.core.nets import mtcnn

facenet = pytest.importorskip("facenet_pytorch")  # the `test` extra installs it; absent only outside it

DATA = Path(facenet.__file__).parent / "data"
CLIPS = ("lynaeydofd", "brtujopkby", "widuwuoiur", "yhffcuhhjy")  # one real and three fake DFDC dev clips


def _randomise(net: nn.Module, seed: int) -> None:
    """Random weights everywhere, PReLU slopes included (their default, 0.25 everywhere, would hide a mix-up)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.3)


@pytest.mark.parametrize(
    ("name", "oracle", "shape"),
    [
        ("pnet", "PNet", (2, 3, 37, 52)),
        ("rnet", "RNet", (5, 3, 24, 24)),
        ("onet", "ONet", (5, 3, 48, 48)),
    ],
)
def test_each_net_matches_the_oracle_with_the_same_random_weights(
    name: mtcnn.NetName, oracle: str, shape: tuple[int, ...]
) -> None:
    theirs = getattr(facenet, oracle)(pretrained=False).eval()
    _randomise(theirs, seed=len(name) + shape[2])
    ours = mtcnn.NETS[name]().eval()
    want = theirs.state_dict()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in want.items()}
    ours.load_state_dict(want, strict=True)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got, ref = ours(x), theirs(x)
    # oracle: (offsets, probabilities of both classes) or (offsets, landmarks, probabilities); ours: face class only
    assert len(got) == len(ref)
    for a, b in zip(got[:-1], ref[:-1], strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=0)
    torch.testing.assert_close(got[-1], ref[-1][:, 1], atol=1e-4, rtol=0)


def test_published_weights_load_strictly() -> None:
    for name in ("pnet", "rnet", "onet"):
        net = mtcnn.load_net(name, DATA / f"{name}.pt")  # type: ignore[arg-type]
        assert not net.training


def _frames(shared: Path, index: int, half: bool) -> list[np.ndarray]:
    """Frame ``index`` of each DFDC dev clip (landscape and portrait 1080p, 720p), at half size with ``half``."""
    frames = []
    for clip in CLIPS:
        with av.open(str(shared / f"data/deepfake-dev/dfdc/{clip}.mp4")) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i == index:
                    rgb = frame.to_ndarray(format="rgb24")
                    if half:
                        size = (rgb.shape[1] // 2, rgb.shape[0] // 2)
                        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
                    frames.append(rgb)
                    break
    return frames


def _sorted(boxes: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    order = np.lexsort(boxes.T[::-1])
    return [boxes[order], *(o[order] for o in others)]


@pytest.mark.parametrize(
    ("index", "half", "min_face"),
    [
        (0, False, 80),  # full frames at our deepfake default smallest face
        (
            45,
            True,
            20,
        ),  # facenet-pytorch's default smallest face: background faces too (kept cheap at half size)
    ],
)
def test_cascade_finds_the_oracles_faces_boxes_and_landmarks(
    shared: Path, index: int, half: bool, min_face: int
) -> None:
    frames = _frames(shared, index, half)
    ours = mtcnn.load_mtcnn(DATA / "pnet.pt", DATA / "rnet.pt", DATA / "onet.pt", min_face=min_face)
    assert ours.thresholds == (0.6, 0.7, 0.7) and ours.factor == 0.709  # facenet-pytorch's defaults
    oracle = facenet.MTCNN(keep_all=True, min_face_size=min_face)
    found = ours.detect(frames)  # one call: frames of one size batched, the sizes kept apart
    several = 0
    for frame, got in zip(frames, found, strict=True):
        boxes, probs, points = oracle.detect(frame[None], landmarks=True)
        if boxes[0] is None:
            assert len(got.boxes) == 0
            continue
        want = _sorted(*(np.asarray(v[0], dtype=np.float32) for v in (boxes, probs, points)))
        have = _sorted(got.boxes, got.probs, got.landmarks)
        assert len(have[0]) == len(want[0])
        np.testing.assert_allclose(have[0], want[0], atol=1.0)  # boxes, frame pixels
        np.testing.assert_allclose(have[2], want[2], atol=1.0)  # landmarks, frame pixels
        np.testing.assert_allclose(have[1], want[1], atol=1e-4)
        several += len(have[0]) > 1
    assert all(len(f.boxes) for f in found)  # every frame has its subject
    assert several >= (1 if min_face == 20 else 0)
