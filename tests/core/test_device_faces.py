"""The device-resident analysis path (core/device_faces.py) against the host path, on real frames and the official
weights: same tiles, same faces, same crops and scores to OpenCV's rounding; the engine selection rules; CUDA
against CPU when a GPU is present."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from chromaflow.core.deepfake import CROP_SPECS, DeepfakeScorer, FrameFaces, choose_engine, crop_face
from chromaflow.core.device_faces import DeviceFaceAnalyser
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.faces import FaceDetector, _tile_128, box_iou

DFDC = ("lynaeydofd_fr0.jpg", "mqzvfufzoq_fr0.jpg")  # 1920 x 1080, one face each
MESO = ("df/df00204.jpg", "df/df01254.jpg", "real/real00240.jpg", "real/real00772.jpg")


def _rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _detector(shared: Path, device: str = "cpu") -> FaceDetector:
    return FaceDetector(
        "blazeface",
        min_size=120,
        blazeface_weights=shared / "models/blazeface/blazeface.pth",
        blazeface_anchors=shared / "models/blazeface/anchors.npy",
        device=device,
    )


def _scorer(
    shared: Path, engine: str, device: str = "cpu", detector: FaceDetector | None = None
) -> DeepfakeScorer:
    return DeepfakeScorer(
        detector or _detector(shared, device),
        "meso4-df",
        classifier_path=shared / "models/mesonet/Meso4_DF.h5",
        device=device,
        engine=engine,  # type: ignore[arg-type]
        smoothing="none",
    )


def _dfdc(shared: Path) -> list[np.ndarray]:
    return [_rgb(shared / "data/deepfake-dev/dfdc" / name) for name in DFDC]


def _meso_frames(shared: Path) -> list[np.ndarray]:
    """MesoNet's test faces on gray 480 x 640 frames (their crops are enlarged: the bilinear case)."""
    out = []
    for rel in MESO:
        frame = np.full((480, 640, 3), 90, np.uint8)
        face = _rgb(shared / "data/deepfake-dev/mesonet-test-images" / rel)
        frame[100:356, 200:456] = cv2.resize(face, (256, 256), interpolation=cv2.INTER_AREA)
        out.append(frame)
    return out


@pytest.fixture(scope="module")
def paths(shared: Path) -> tuple[DeepfakeScorer, DeepfakeScorer]:
    """Host and device scorers sharing one detector (and so one tile pyramid)."""
    detector = _detector(shared)
    return _scorer(shared, "host", detector=detector), _scorer(shared, "device", detector=detector)


def _assert_same_analysis(host: list[FrameFaces], device: list[FrameFaces]) -> None:
    assert len(host) == len(device)
    for h, d in zip(host, device, strict=True):
        assert len(h.faces) == len(d.faces)
        if h.faces:
            ious = box_iou(np.array([f.box for f in h.faces]), np.array([f.box for f in d.faces]))
            assert np.diag(ious).min() > 0.9
        assert [f.score for f in d.faces] == pytest.approx([f.score for f in h.faces], abs=1e-3)
        assert list(d.raw_scores) == pytest.approx(list(h.raw_scores), abs=0.02)
        assert all(len(f.keypoints) == 6 for f in d.faces)


def test_same_faces_and_scores_on_dfdc_frames(
    shared: Path, paths: tuple[DeepfakeScorer, DeepfakeScorer]
) -> None:
    host, device = paths
    frames = _dfdc(shared)
    want, got = host.analyse(frames), device.analyse(frames)
    assert [len(f.faces) for f in want] == [1, 1]  # the comparison is not vacuous
    _assert_same_analysis(want, got)
    # frames already on the device (a uint8 tensor) give the same result as numpy frames
    assert device.analyse(torch.from_numpy(np.stack(frames))) == got


def test_same_faces_and_scores_on_mesonet_faces(
    shared: Path, paths: tuple[DeepfakeScorer, DeepfakeScorer]
) -> None:
    host, device = paths
    frames = _meso_frames(shared)
    want, got = host.analyse(frames), device.analyse(frames)
    assert [len(f.faces) for f in want] == [1, 1, 1, 1]
    _assert_same_analysis(want, got)
    scores = [f.raw_scores[0] for f in got]
    assert min(scores[:2]) > 0.5 > max(scores[2:])  # fakes high, reals low on the device path too


def test_tiles_match_the_host_tiles(shared: Path, paths: tuple[DeepfakeScorer, DeepfakeScorer]) -> None:
    """Shrunk tiles (pixel area) are the host's to float rounding; enlarged ones (frames under 128 px) differ by
    OpenCV's 11-bit fixed-point bilinear weights: at most one level, on a minority of pixels."""
    analyser: DeviceFaceAnalyser = paths[1]._device_analyser
    detector = paths[1].detector
    rng = np.random.default_rng(0)
    cases = [(_dfdc(shared)[0], 0.01), (rng.integers(0, 256, (100, 90, 3), dtype=np.uint8), 0.25)]
    for frame, mad in cases:
        tiles = detector.tiles(*frame.shape[:2])
        want = np.stack([_tile_128(frame, *t) for t in tiles]).transpose(0, 3, 1, 2).astype(np.float32)
        got = analyser.tile_batch(torch.from_numpy(frame[None]))[0].numpy()
        assert got.shape == want.shape
        diff = np.abs(got - want)
        assert diff.max() <= 1.0 and diff.mean() < mad


def test_crops_match_crop_face(shared: Path, paths: tuple[DeepfakeScorer, DeepfakeScorer]) -> None:
    """Shrinking crops (area weights) equal crop_face's to float rounding (mean abs diff < 0.01 level); enlarging
    ones differ by OpenCV's fixed-point bilinear rounding: never more than 1 level, mean < 0.25 level (measured
    about 0.1). Edge replication and the all-black crop of a box outside the frame are kept."""
    analyser: DeviceFaceAnalyser = paths[1]._device_analyser
    spec = CROP_SPECS["blazeface"]
    big = _dfdc(shared)[0]
    small = np.random.default_rng(1).integers(0, 256, (100, 90, 3), dtype=np.uint8)
    cases = [
        (big, (834.6, 297.9, 1045.4, 508.8), 0.01),  # the DFDC face: shrink
        (big, (1800.0, 900.0, 1920.0, 1080.0), 0.25),  # corner: edge replication, enlarge
        (small, (10.0, 10.0, 40.0, 50.0), 0.25),
        (small, (-5.0, -5.0, 20.0, 20.0), 0.25),
        (small, (500.0, 500.0, 600.0, 600.0), 0.0),  # outside: black
    ]
    for frame, box, mad in cases:
        want = crop_face(frame, box, spec).transpose(2, 0, 1).astype(np.float32)
        got = analyser.crop_batch(torch.from_numpy(frame[None]), [0], [box])[0].numpy()
        assert got.shape == (3, 256, 256)
        diff = np.abs(got - want)
        assert diff.max() <= 1.0 and diff.mean() <= mad, box
    # several faces of several frames in one batch keep their order
    frames = torch.from_numpy(np.stack([big, big[::-1].copy()]))
    boxes = [(834.6, 297.9, 1045.4, 508.8), (100.0, 100.0, 300.0, 300.0)]
    crops = analyser.crop_batch(frames, [1, 0], boxes).numpy()
    for crop, owner, box in zip(crops, (1, 0), boxes, strict=True):
        want = crop_face(frames[owner].numpy(), box, spec).transpose(2, 0, 1).astype(np.float32)
        assert np.abs(crop - want).mean() < 0.25


def test_mixed_shapes_empty_and_bad_input(shared: Path, paths: tuple[DeepfakeScorer, DeepfakeScorer]) -> None:
    device = paths[1]
    frames = [_meso_frames(shared)[0], np.zeros((120, 160), np.uint8), np.zeros((4, 4, 3), np.uint8)]
    got = device.analyse(frames)
    assert [len(f.faces) for f in got] == [1, 0, 0]
    assert got[0] == device.analyse(frames[:1])[0]
    assert device.analyse([]) == []
    with pytest.raises(InputError, match="uint8"):
        device.analyse([np.zeros((64, 64, 3), np.float32)])
    with pytest.raises(InputError, match="uint8"):
        device.analyse(torch.zeros(1, 64, 64, 3))
    # stage (2) takes the device path's results unchanged
    results = device.score_frames(_meso_frames(shared)[:2], start_index=0)
    assert [r.index for r in results] == [0, 1] and all(r.score is not None for r in results)


def test_engine_selection(shared: Path) -> None:
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert choose_engine("auto", "blazeface", cuda) == "device"
    assert choose_engine("auto", "blazeface", cpu) == "host"
    assert choose_engine("auto", "haar", cuda) == "host"
    assert choose_engine("device", "blazeface", cpu) == "device"
    assert choose_engine("host", "blazeface", cuda) == "host"
    with pytest.raises(UsageError, match="BlazeFace"):
        choose_engine("device", "haar", cuda)
    with pytest.raises(UsageError, match="engine"):
        choose_engine("gpu", "blazeface", cuda)
    model = shared / "models/mesonet/Meso4_DF.h5"
    assert DeepfakeScorer("haar", "meso4-df", classifier_path=model, device="cpu").engine == "host"
    with pytest.raises(UsageError, match="BlazeFace"):
        DeepfakeScorer("haar", "meso4-df", classifier_path=model, device="cpu", engine="device")
    with pytest.raises(UsageError, match="engine"):
        DeepfakeScorer("haar", "meso4-df", classifier_path=model, engine="gpu")  # type: ignore[arg-type]
    detector = _detector(shared)
    assert _scorer(shared, "auto", detector=detector).engine == "host"  # CPU: auto keeps the host path
    assert _scorer(shared, "device", detector=detector).engine == "device"


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_device_path_matches_cpu(shared: Path, paths: tuple[DeepfakeScorer, DeepfakeScorer]) -> None:
    cuda = _scorer(shared, "auto", device="cuda")
    assert cuda.engine == "device"
    frames = _dfdc(shared) + _meso_frames(shared)
    want = paths[1].analyse(frames)
    got = cuda.analyse(frames)
    _assert_same_analysis(want, got)
    on_gpu = torch.from_numpy(np.stack(frames[:2])).cuda()
    _assert_same_analysis(want[:2], cuda.analyse(on_gpu))
