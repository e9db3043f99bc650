"""The DFDC winner's EfficientNet-B7 classifier: same logits as the authors' ``DeepFakeClassifier`` for the same
random weights, their checkpoint container loads, their crop rule and video rule, and a CLI run with a checkpoint
given as a file.

The oracle is the authors' ``DeepFakeClassifier`` (selimsef/dfdc_deepfake_challenge, MIT,
``training/zoo/classifiers.py``) rebuilt in this file as they build it, from timm: their repository is not on the
package index. Likewise their crop (``kernel_utils.FaceExtractor`` slicing, ``isotropically_resize_image``,
``put_to_center``) is restated here as the oracle of ours.
"""

import json
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
import timm
import torch
from torch import nn

from chromaflow.core import registry
from chromaflow.core.deepfake import DeepfakeScorer, MarginCrop, crop_face
from chromaflow.core.deepfake_results import FrameFaces, dfdc_confident_strategy, dfdc_video_score
from chromaflow.core.errors import ModelError, UsageError
from chromaflow.core.faces import Face
from chromaflow.core.nets import effnet_dfdc, mesonet
from chromaflow.core.nets.ensemble import ClassifierEnsemble
from chromaflow.plugins.cli.main import main

from support.face_media import write_face_clip

SIDE = 64  # small inputs keep the B7 fast; the architecture does not depend on the side


class AuthorsDeepFakeClassifier(nn.Module):
    """Their ``DeepFakeClassifier(encoder="tf_efficientnet_b7_ns")``: encoder_params gives 2560 features and
    ``tf_efficientnet_b7_ns(pretrained=True, drop_path_rate=0.2)`` (pretrained=False here: random weights)."""

    def __init__(self, dropout_rate: float = 0.0) -> None:
        super().__init__()
        with warnings.catch_warnings():  # today's timm maps the old name to tf_efficientnet_b7.ns_jft_in1k
            warnings.simplefilter("ignore")
            self.encoder = timm.create_model("tf_efficientnet_b7_ns", pretrained=False, drop_path_rate=0.2)
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(dropout_rate)
        self.fc = nn.Linear(2560, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.encoder.forward_features(x)
        x = self.avg_pool(x).flatten(1)
        x = self.dropout(x)
        return self.fc(x)


@pytest.fixture(scope="module")
def authors() -> nn.Module:
    torch.manual_seed(20)
    net = AuthorsDeepFakeClassifier()
    with torch.no_grad():  # random batch-norm statistics too, so that every tensor matters
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    return net.eval()


@pytest.fixture(scope="module")
def checkpoint(authors: nn.Module, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The authors' container: ``state_dict`` with ``module.`` keys, plus their epoch and best loss."""
    path = tmp_path_factory.mktemp("dfdc") / "final_111_DeepFakeClassifier_tf_efficientnet_b7_ns_0_36"
    state = {f"module.{k}": v for k, v in authors.state_dict().items()}
    torch.save({"state_dict": state, "epoch": 36, "bce_best": 0.21}, path)
    return path


def _input() -> torch.Tensor:
    return torch.rand(2, 3, SIDE, SIDE, generator=torch.Generator().manual_seed(3)) * 4 - 2


def test_same_logits_as_the_authors_classifier(authors: nn.Module) -> None:
    theirs = authors.state_dict()
    with torch.device("meta"):  # names and shapes only (no initialisation)
        shapes = {k: v.shape for k, v in effnet_dfdc.DFDCClassifier().state_dict().items()}
    assert set(shapes) == set(theirs)
    assert all(shapes[k] == v.shape for k, v in theirs.items())
    ours = effnet_dfdc.from_state_dict(theirs)  # load_state_dict(strict=True)
    assert not ours.training
    with torch.no_grad():
        want, got = authors(_input()), ours(_input())
    assert got.shape == want.shape == (2, 1)
    assert float((got - want).abs().max()) <= 1e-4
    assert float(want.std()) > 0  # the two inputs give different logits: the comparison means something


def test_authors_checkpoint_round_trips_through_the_registry(authors: nn.Module, checkpoint: Path) -> None:
    net = registry.load(checkpoint, arch="effnet-b7-dfdc", kind="classifier")
    assert isinstance(net, effnet_dfdc.DFDCClassifier) and not net.training
    with torch.no_grad():
        assert float((net(_input()) - authors(_input())).abs().max()) <= 1e-4
    # a file saved from our module (no prefix) loads too
    again = effnet_dfdc.from_state_dict(net.state_dict())
    assert set(again.state_dict()) == set(authors.state_dict())


def test_wrong_files_give_model_errors(tmp_path: Path) -> None:
    missing = tmp_path / "missing_keys"
    torch.save(
        {"state_dict": {"module.fc.weight": torch.zeros(1, 2560), "module.fc.bias": torch.zeros(1)}}, missing
    )
    with pytest.raises(ModelError, match="do not fit the DFDC EfficientNet-B7"):
        registry.load(missing, arch="effnet-b7-dfdc")
    meso = tmp_path / "meso.pt"
    torch.save(mesonet.build("meso4").state_dict(), meso)
    with pytest.raises(ModelError, match="chromaflow models download effnet-b7-dfdc"):
        registry.load(meso, arch="effnet-b7-dfdc")
    with pytest.raises(ModelError, match="effnet-b7-dfdc-1"):  # the ensemble names its absent members
        registry.load("effnet-b7-dfdc")


def _authors_crop(frame: np.ndarray, box: tuple[float, ...], size: int = 380) -> np.ndarray:
    """Their FaceExtractor slice, isotropically_resize_image and put_to_center, restated."""
    xmin, ymin, xmax, ymax = (int(b) for b in box)
    p_w, p_h = (xmax - xmin) // 3, (ymax - ymin) // 3
    crop = frame[max(ymin - p_h, 0) : ymax + p_h, max(xmin - p_w, 0) : xmax + p_w]
    h, w = crop.shape[:2]
    if max(w, h) != size:
        scale = size / max(w, h)
        if w > h:
            w, h = size, h * scale
        else:
            w, h = w * scale, size
        crop = cv2.resize(
            crop, (int(w), int(h)), interpolation=cv2.INTER_CUBIC if scale > 1 else cv2.INTER_AREA
        )
    crop = crop[:size, :size]
    out = np.zeros((size, size, 3), np.uint8)
    sw, sh = (size - crop.shape[1]) // 2, (size - crop.shape[0]) // 2
    out[sh : sh + crop.shape[0], sw : sw + crop.shape[1]] = crop
    return out


def test_crop_rule_geometry_and_the_authors_crop() -> None:
    flat = np.full((800, 1000, 3), 200, np.uint8)
    # box 300 x 300 at the left edge: widened by 100 on each side, clipped at x = 0 -> 420 wide x 500 high,
    # scaled by 380/500 -> 319 x 380, centred: 30 black columns on the left, 31 on the right
    crop = crop_face(flat, (20.6, 100.2, 320.9, 400.0), MarginCrop(), 380)
    assert crop.shape == (380, 380, 3)
    assert (crop[:, :30] == 0).all() and (crop[:, 349:] == 0).all() and (crop[:, 30:349] == 200).all()
    rng = np.random.default_rng(1)
    noise = rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)
    for box in [(20.6, 100.2, 320.9, 400.0), (300.0, 50.0, 360.0, 150.0), (500.5, 300.0, 700.0, 470.0)]:
        assert np.array_equal(crop_face(noise, box, MarginCrop(), 380), _authors_crop(noise, box))
    assert not crop_face(noise, (900.0, 900.0, 990.0, 990.0), MarginCrop(), 380).any()  # outside: black


def test_dfdc_strategy_and_ensemble_rule_on_hand_made_scores() -> None:
    assert dfdc_confident_strategy([0.9] * 13 + [0.5] * 19) == pytest.approx(0.9)  # 13 > 32 // 2.5 and > 11
    assert dfdc_confident_strategy([0.9] * 12 + [0.5] * 20) == pytest.approx(0.65)  # 12 is not > 12
    assert dfdc_confident_strategy([0.9] * 5) == pytest.approx(0.9)  # too few for the fake branch: the mean
    assert dfdc_confident_strategy([0.1] * 30 + [0.5] * 2) == pytest.approx(0.1)  # 30 > 0.9 * 32
    assert dfdc_confident_strategy([0.1] * 28 + [0.5] * 4) == pytest.approx(0.15)  # 28 < 28.8: the mean
    assert dfdc_confident_strategy([]) is None
    # per model, then the mean over models: model 1 takes its fake branch, model 2 its plain mean
    faces = [(0.9, 0.1)] * 13 + [(0.5, 0.5)] * 19
    assert dfdc_video_score(faces) == pytest.approx((0.9 + (13 * 0.1 + 19 * 0.5) / 32) / 2)
    assert dfdc_video_score([]) is None


def _meso_scorer(**kw: object) -> DeepfakeScorer:
    """A scorer with a random MesoNet (its stage 2 and video rules are what is tested; nothing is classified)."""
    return DeepfakeScorer("haar", mesonet.build("meso4"), device="cpu", smoothing="none", **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("aggregate", "expected"),
    [("mean", 0.5), ("median", 0.6), ("confident", 0.9), ("dfdc", (0.9 + 0.95 + 0.85 + 0.1 + 0.1 + 0.6) / 6)],
)
def test_video_aggregates_and_threshold(aggregate: str, expected: float) -> None:
    scores = [0.9, 0.95, 0.85, 0.1, 0.1, 0.6]  # one face per frame, one track moving a little
    frames = [
        FrameFaces((Face((100.0 + i, 100.0, 200.0 + i, 200.0), 0.9),), (s,)) for i, s in enumerate(scores)
    ]
    scorer = _meso_scorer(aggregate=aggregate, threshold=0.55)
    results = [scorer.track(f) for f in frames]
    assert [r.model for r in results] == ["Meso4"] * 6
    summary = scorer.finish()
    expected = {"mean": np.mean(scores), "median": np.median(scores)}.get(aggregate, expected)
    assert summary.score == pytest.approx(expected)
    assert summary.verdict == ("FAKE" if expected >= 0.55 else "REAL")
    line = summary.to_json()["video"]
    assert line["aggregate"] == aggregate and line["threshold"] == 0.55
    assert line["mean"] == pytest.approx(np.mean(scores), abs=1e-4)
    assert line["median"] == pytest.approx(np.median(scores), abs=1e-4)


def test_threshold_and_aggregate_are_checked() -> None:
    for bad in (0.0, 1.0, 1.5, "0.5", True):
        with pytest.raises(UsageError, match="threshold"):
            _meso_scorer(threshold=bad)
    with pytest.raises(UsageError, match="aggregate"):
        _meso_scorer(aggregate="max")


def test_ensemble_scores_each_member_on_one_batch() -> None:
    """An ensemble's face score is its members' mean P(FAKE); the dfdc rule sees each member's scores."""
    torch.manual_seed(0)
    members = [mesonet.build("meso4").eval() for _ in range(3)]
    ensemble = ClassifierEnsemble(members)
    scorer = DeepfakeScorer("haar", ensemble, device="cpu")
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (256, 256, 3), dtype=np.uint8) for _ in range(4)]
    each = scorer.classify_members(crops)
    assert each.shape == (4, 3)
    x = torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        want = np.stack([1 - torch.sigmoid(m(x)).numpy() for m in members], axis=1)
    np.testing.assert_allclose(each, want, atol=1e-6)
    np.testing.assert_allclose(scorer.classify(crops), want.mean(axis=1), atol=1e-6)
    with torch.device("meta"):
        other = effnet_dfdc.DFDCClassifier()
    with pytest.raises(ModelError, match="same face crops"):
        ClassifierEnsemble([members[0], other])


@pytest.fixture
def face_clip(shared: Path, tmp_path: Path) -> Path:
    """Two frames of a DFDC dev clip's first frame around one face (640 x 480, lossless)."""
    return write_face_clip(shared, tmp_path / "face.mkv", 2)


def test_cli_with_a_checkpoint_file(
    face_clip: Path, checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    scores = tmp_path / "s.jsonl"
    code = main(["deepfake", str(face_clip), "--classifier", str(checkpoint), "--arch", "effnet-b7-dfdc",
                 "--scores", str(scores), "--threshold", "0.3", "--aggregate", "dfdc", "--json",
                 "--device", "cpu"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    lines = [json.loads(line) for line in scores.read_text().splitlines()]
    frames, video = lines[:-1], lines[-1]["video"]
    assert [f["frame"] for f in frames] == [0, 1] and all(f["faces"] for f in frames)
    assert {f["model"] for f in frames} == {checkpoint.name}
    assert video["model"] == checkpoint.name and video["aggregate"] == "dfdc" and video["threshold"] == 0.3
    assert video["verdict"] == ("FAKE" if video["score"] >= 0.3 else "REAL")
    assert video["score"] == pytest.approx(video["dfdc"])
    assert json.loads(captured.out)["video"]["verdict"] == video["verdict"]
    assert (
        main(["deepfake", str(face_clip), "--classifier", str(tmp_path / "absent"), "--device", "cpu"]) == 2
    )
    assert main(["deepfake", str(face_clip), "--threshold", "1.5", "--device", "cpu"]) == 2
