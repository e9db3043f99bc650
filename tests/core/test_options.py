"""The options objects: their defaults are the hosts' pinned defaults, each check refuses with a message that says
what to do, the engines take them whole, and a colorize run decides its scene cuts once."""

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from chromaflow.core.deflicker import Deflicker, DeflickerStream
from chromaflow.core.errors import UsageError
from chromaflow.core.frame_facts import FrameFacts
from chromaflow.core.options import (
    ColorizeOptions,
    DeepfakeOptions,
    DeflickerOptions,
    given,
)
from chromaflow.core.scenecut import DEFAULT_THRESHOLD, SceneCutDetector
from chromaflow.core.video import VideoColorizer, VideoColorizerStream

from support.pyav_synth import synth_rgb

PINNED = json.loads((Path(__file__).parents[1] / "support" / "public_surface.json").read_text())["signatures"]

# host parameter -> options field, per pinned host callable (parameters that are no option of the verb are left out)
HOST_FIELDS: dict[str, tuple[type, dict[str, str]]] = {
    "chromaflow.filters.vapoursynth.colorize": (
        ColorizeOptions,
        {
            "model": "model",
            "transfer": "transfer",
            "smooth": "smooth",
            "device": "device",
            "precision": "precision",
            "size": "size",
            "scene_cut_threshold": "scene_cut_threshold",
            "batch": "batch_size",
        },
    ),
    # transfer() is colorize without a model; its smoothing is off by default (propagated colour is coherent)
    "chromaflow.filters.vapoursynth.transfer": (
        ColorizeOptions,
        {"mode": "transfer", "scene_cut_threshold": "scene_cut_threshold"},
    ),
    "chromaflow.filters.pyav.ColorizeNode": (
        ColorizeOptions,
        {
            "model": "model",
            "transfer": "transfer",
            "smooth": "smooth",
            "smooth_strength": "smooth_strength",
            "device": "device",
            "precision": "precision",
            "size": "size",
            "batch_size": "batch_size",
            "engine": "engine",
        },
    ),
    "chromaflow.filters.vapoursynth.deflicker": (
        DeflickerOptions,
        {p: p for p in ("radius", "strength", "scene_cut_threshold", "max_side")},
    ),
    "chromaflow.filters.pyav.DeflickerNode": (
        DeflickerOptions,
        {p: p for p in ("radius", "strength", "scene_cut_threshold", "max_side")},
    ),
    "chromaflow.filters.vapoursynth.deepfake": (
        DeepfakeOptions,
        {
            p: p
            for p in (
                "overlay",
                "detector",
                "classifier",
                "classifier_path",
                "device",
                "smoothing",
                "min_face",
                "style",
                "min_track",
            )
        },
    ),
    "chromaflow.filters.pyav.DeepfakeNode": (
        DeepfakeOptions,
        {
            p: p
            for p in (
                "detector",
                "classifier",
                "device",
                "overlay",
                "style",
                "every",
                "batch_size",
                "min_track",
            )
        },
    ),
}


@pytest.mark.parametrize("host", sorted(HOST_FIELDS))
def test_defaults_are_the_pinned_host_defaults(host: str) -> None:
    cls, mapping = HOST_FIELDS[host]
    defaults = cls()
    wrong = {
        param: (PINNED[host][param], repr(getattr(defaults, name)))
        for param, name in mapping.items()
        if PINNED[host][param] != repr(getattr(defaults, name))
    }
    assert not wrong, f"{host}: parameter -> (pinned default, options default): {wrong}"


def test_defaults_are_the_cli_defaults() -> None:
    from chromaflow.plugins.cli.main import build_parser

    parser = build_parser()
    colorize = parser.parse_args(["colorize", "in.mp4", "out.mp4"])
    c = ColorizeOptions()
    assert (colorize.model, colorize.transfer, colorize.smooth, colorize.size, colorize.batch) == (
        c.model,
        c.transfer,
        c.smooth,
        c.size,
        c.batch_size,
    )
    assert (colorize.engine, colorize.device, colorize.precision) == (c.engine, c.device, c.precision)
    assert (
        colorize.scene_cut == DEFAULT_THRESHOLD and c.scene_cut_threshold is None
    )  # None means that default
    deflicker = parser.parse_args(["deflicker", "in.mp4", "out.mp4"])
    d = DeflickerOptions()
    assert (deflicker.radius, deflicker.strength, deflicker.max_side) == (d.radius, d.strength, d.max_side)
    assert deflicker.scene_cut == DEFAULT_THRESHOLD and d.scene_cut_threshold is None
    deepfake = parser.parse_args(["deepfake", "in.mp4"])
    f = DeepfakeOptions()
    assert (deepfake.detector, deepfake.classifier, deepfake.device) == (f.detector, f.classifier, f.device)
    assert (deepfake.every, deepfake.min_track, deepfake.batch) == (f.every, f.min_track, f.batch_size)


@pytest.mark.parametrize(
    ("cls", "changes", "message"),
    [
        (
            ColorizeOptions,
            {"size": 100},
            r"--size 100 is not usable: the model input side must be a multiple of 8",
        ),
        (ColorizeOptions, {"size": 8}, r"multiple of 8, >= 16"),
        (ColorizeOptions, {"batch_size": 0}, r"batch size must be at least 1, got 0"),
        (
            ColorizeOptions,
            {"transfer": "magic"},
            r"unknown transfer mode 'magic'; use one of propagate, reinhard",
        ),
        (ColorizeOptions, {"smooth": -1}, r"smoothing radius must be an integer >= 0, got -1"),
        (ColorizeOptions, {"smooth": 1.5}, r"smoothing radius must be an integer >= 0"),
        (ColorizeOptions, {"smooth_strength": -0.5}, r"smoothing strength must be >= 0"),
        (ColorizeOptions, {"smooth_strength": float("nan")}, r"smoothing strength must be >= 0"),
        (ColorizeOptions, {"scene_cut_threshold": 0.0}, r"scene-cut threshold must be > 0, got 0.0"),
        (ColorizeOptions, {"engine": "gpu"}, r"engine must be auto, device or video, got 'gpu'"),
        (ColorizeOptions, {"params": {"max_side": 64}}, r"params must be a PropagationParams"),
        (DeflickerOptions, {"radius": 0}, r"deflicker radius must be a whole number of frames >= 1, got 0"),
        (DeflickerOptions, {"radius": True}, r"deflicker radius must be a whole number of frames >= 1"),
        (DeflickerOptions, {"strength": -1.0}, r"smoothing strength must be >= 0"),
        (DeflickerOptions, {"max_side": 8}, r"the working resolution must be at least 16 px, got 8"),
        (DeflickerOptions, {"scene_cut_threshold": -1.0}, r"scene-cut threshold must be > 0"),
        (DeepfakeOptions, {"detector": "dlib"}, r"unknown face detector 'dlib': use haar, blazeface, mtcnn"),
        (DeepfakeOptions, {"classifier": "xception"}, r"unknown classifier 'xception': use one of meso4-df"),
        (DeepfakeOptions, {"smoothing": "kalman"}, r"unknown smoothing 'kalman': use ema, median or none"),
        (DeepfakeOptions, {"alpha": 0.0}, r"EMA alpha must be in \(0, 1\], got 0.0"),
        (DeepfakeOptions, {"window": 0}, r"median window must be at least 1, got 0"),
        (DeepfakeOptions, {"aggregate": "max"}, r"unknown video aggregate 'max': use confident, dfdc"),
        (DeepfakeOptions, {"min_track": 0}, r"min_track must be a whole number of frames >= 1, got 0"),
        (DeepfakeOptions, {"engine": "gpu"}, r"unknown analysis engine 'gpu': use auto, device or host"),
        (DeepfakeOptions, {"max_batch": 0}, r"max_batch \(face crops per classifier call\) must be >= 1"),
        (DeepfakeOptions, {"every": 0}, r"every must be at least 1 \(1 scores every frame\), got 0"),
        (DeepfakeOptions, {"batch_size": -2}, r"the scoring batch size must be at least 1, got -2"),
    ],
)
def test_each_check_refuses_with_its_message(cls: type, changes: dict[str, Any], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        cls(**changes)
    with pytest.raises(UsageError, match=message):  # replace() checks as well: a changed copy is built again
        dataclasses.replace(cls(), **changes)


def test_options_are_frozen_and_given_keeps_what_is_not_given() -> None:
    opts = ColorizeOptions(smooth=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        opts.smooth = 3  # type: ignore[misc]
    assert given(opts, smooth=None, transfer="knn") == ColorizeOptions(smooth=1, transfer="knn")
    assert given(DeflickerOptions(), radius=None) == DeflickerOptions()
    assert ColorizeOptions().cut_detector() == SceneCutDetector(DEFAULT_THRESHOLD)
    assert ColorizeOptions(scene_cut_threshold=0.3).cut_detector() == SceneCutDetector(0.3)
    assert ColorizeOptions(detect_cuts=False).cut_detector() is None
    assert ColorizeOptions(model=None).new_colorizer() is None


# ---------------------------------------------------------------------------------------------- through the engines


def _clip(n: int = 10, cut_at: int | None = None) -> list[np.ndarray]:
    """RGB frames of the synthetic clip; from ``cut_at`` on another colour field (a scene cut)."""
    return [synth_rgb(96, 64, i, seed=0 if cut_at is None or i < cut_at else 7) for i in range(n)]


def _lightness_colorizer(l_star: np.ndarray) -> np.ndarray:
    """A deterministic stand-in for a colour net: ab as a function of L*."""
    return np.stack([0.5 * (l_star - 50.0), 20.0 * np.ones_like(l_star)], axis=-1).astype(np.float32)


def test_video_colorizer_takes_the_options_whole() -> None:
    frames = _clip()
    refs = {0: frames[0].astype(np.float32) / 255.0}
    opts = ColorizeOptions(model=None, transfer="propagate", smooth=1, scene_cut_threshold=0.3, batch_size=4)
    whole = VideoColorizer(len(frames), lambda k: frames[k], opts, references=refs)
    assert whole.options is opts and whole.batch_size == 4 and whole.smoother is not None
    assert whole.shots.detector == SceneCutDetector(0.3)
    keywords = VideoColorizer(
        len(frames),
        lambda k: frames[k],
        references=refs,
        transfer="propagate",
        smooth_radius=1,
        scene_cut_threshold=0.3,
        batch_size=4,
    )
    assert dataclasses.replace(keywords.options, model=None) == opts
    for n in (3, 0, 9):
        assert np.array_equal(whole.ab(n), keywords.ab(n))
    stream = VideoColorizerStream(opts, references=refs)
    assert stream.core.options is opts
    # the keyword form starts from the engine's own default, no smoothing
    assert VideoColorizer(3, lambda k: frames[k], colorizer=_lightness_colorizer).smoother is None
    with pytest.raises(UsageError, match="nothing to colour with"):
        VideoColorizer(3, lambda k: frames[k], opts)


def test_deflicker_engines_take_the_options_whole() -> None:
    opts = DeflickerOptions(radius=2, strength=0.5, max_side=64)
    engine = Deflicker(4, lambda k: (np.zeros((8, 8), np.float32), np.zeros((2, 8, 8), np.float32)), opts)
    assert engine.options is opts and engine.radius == 2
    stream = DeflickerStream(opts)
    assert stream.options is opts and stream.lookahead == 2
    assert DeflickerStream(radius=2, strength=0.5, max_side=64).options == opts


def test_deepfake_scorer_takes_the_options_whole(shared: Path) -> None:
    from chromaflow.core.deepfake import DeepfakeScorer

    meso = shared / "models/mesonet/Meso4_DF.h5"
    opts = DeepfakeOptions(classifier_path=meso, device="cpu", smoothing="median", window=3, min_track=2)
    scorer = DeepfakeScorer(options=opts)
    assert scorer.options is opts
    assert (scorer.smoother.method, scorer.smoother.window, scorer.min_track) == ("median", 3, 2)
    assert scorer.engine == "host" and scorer.model_name == "meso4-df"
    again = DeepfakeScorer(
        "haar", "meso4-df", classifier_path=meso, device="cpu", smoothing="median", window=3, min_track=2
    )
    assert again.options == opts


# ---------------------------------------------------------------------------------------------- one cut pass per run


def test_a_colorize_run_builds_one_detector_and_reads_each_frame_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    frames = _clip(12, cut_at=7)
    refs = {0: frames[0].astype(np.float32) / 255.0, 9: frames[9].astype(np.float32) / 255.0}
    opts = ColorizeOptions(model=None, smooth=2)
    built: list[SceneCutDetector] = []
    measured: list[int] = []
    check = SceneCutDetector.__post_init__
    stats = SceneCutDetector.stats

    def counting_check(self: SceneCutDetector) -> None:
        built.append(self)
        check(self)

    def counting_stats(self: SceneCutDetector, luma: Any) -> Any:
        measured.append(id(luma))
        return stats(self, luma)

    monkeypatch.setattr(SceneCutDetector, "__post_init__", counting_check)
    monkeypatch.setattr(SceneCutDetector, "stats", counting_stats)
    vc = VideoColorizer(len(frames), lambda k: frames[k], opts, references=refs)
    assert len(built) == 1, "one scene-cut detector per run"
    assert vc.transfer is not None and vc.smoother is not None
    assert vc.transfer.shots is vc.shots and vc.smoother.scene_cut is vc.shots.detector
    for n in reversed(range(len(frames))):
        vc.ab(n)
        vc.info(n)
    assert len(measured) == len(frames), "each frame's cut statistics are computed once"
    assert [vc.info(n).scene_cut for n in range(len(frames))] == [n == 7 for n in range(len(frames))]


def test_model_runs_report_the_cut_the_smoother_stops_at() -> None:
    frames = _clip(10, cut_at=5)
    vc = VideoColorizer(len(frames), lambda k: frames[k], colorizer=_lightness_colorizer, smooth_radius=2)
    facts = [vc.info(n) for n in range(len(frames))]
    assert [f.scene_cut for f in facts] == [n == 5 for n in range(len(frames))]
    assert facts[5] == FrameFacts.model_only(True) == model_facts_dict(True)
    # the smoother saw the same cut: frame 4's colour takes nothing from frames 5 and 6
    alone = VideoColorizer(5, lambda k: frames[k], colorizer=_lightness_colorizer, smooth_radius=2)
    assert np.array_equal(vc.ab(4), alone.ab(4))


def model_facts_dict(cut: bool) -> dict[str, Any]:
    return {"keyframe_distance": -1, "confidence": 0.0, "scene_cut": cut, "is_keyframe": False}


def test_frame_facts_are_typed_and_read_as_a_mapping() -> None:
    facts = FrameFacts(3, 0.75, False, False)
    assert facts.keyframe_distance == 3 and facts["confidence"] == 0.75
    assert (
        dict(facts)
        == facts.as_dict()
        == {
            "keyframe_distance": 3,
            "confidence": 0.75,
            "scene_cut": False,
            "is_keyframe": False,
        }
    )
    assert facts == facts.as_dict() and facts != FrameFacts(3, 0.75, True, False)
    with pytest.raises(KeyError):
        facts["frame"]


def test_a_host_without_the_video_engine_reports_the_same_cuts() -> None:
    """The device-resident path reports cuts from cut_luma of each frame: those the video engine decides."""
    from chromaflow.core.shots import ShotCuts, cut_luma
    from chromaflow.core.transfer import PropagationParams, to_lightness

    frames = _clip(8, cut_at=3)
    opts = ColorizeOptions(smooth=0, params=PropagationParams(max_side=48))  # frames are 96 px wide: resized
    vc = VideoColorizer(len(frames), lambda k: frames[k], opts, colorizer=_lightness_colorizer)
    host = ShotCuts(opts.cut_detector())
    reported = []
    for n, frame in enumerate(frames):  # a stream: each frame's statistics taken as it arrives
        l_star = to_lightness(frame)
        host.stats(n, lambda _k, l_star=l_star: cut_luma(l_star, opts.params.max_side))
        reported.append(host.is_cut(n, lambda k: pytest.fail(f"frame {k} was measured already")))
    assert reported == [vc.info(n).scene_cut for n in range(len(frames))] == [n == 3 for n in range(8)]


def test_the_colorize_node_reports_the_same_cuts_on_either_engine() -> None:
    """ColorizeNode's device-resident path reports the cuts the video engine decides: frames larger than the
    working size, and a threshold between the scores of full-size and working-size statistics for some pairs, so
    only statistics taken as the engine takes them (cut_luma) give the engine's flags."""
    from fractions import Fraction

    import av

    from chromaflow.core.colorizer import Colorizer
    from chromaflow.core.transfer import PropagationParams
    from chromaflow.filters.pyav import ColorizeNode, run_nodes

    colorizer = Colorizer("base", device="cpu", precision="fp32", size=64)
    frames = []
    for i, rgb in enumerate(_clip(6, cut_at=4)):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(
            format="yuv420p", dst_colorspace=1, dst_color_range=1
        )
        frame.pts, frame.time_base = i, Fraction(1, 25)
        frames.append(frame)
    facts: dict[str, list[tuple[int, Any]]] = {"device": [], "video": []}
    for engine in ("device", "video"):
        node = ColorizeNode(
            colorizer,
            smooth=0,
            batch_size=4,
            engine=engine,
            params=PropagationParams(max_side=48),
            scene_cut_threshold=0.031,  # working-size scores of pairs (2, 3) and (4, 5) lie above, full-size below
            on_info=lambda n, info, e=engine: facts[e].append((n, info)),
        )
        run_nodes(frames, [node])
    assert facts["device"] == facts["video"]
    assert [info["scene_cut"] for _, info in facts["video"]] == [n >= 3 for n in range(6)]


def _yuv_frames(n: int = 5) -> list[Any]:
    from fractions import Fraction

    import av

    frames = []
    for i, rgb in enumerate(_clip(n)):
        frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = i, Fraction(1, 25)
        frames.append(frame)
    return frames


def _planes(frames: list[Any]) -> list[list[bytes]]:
    return [[bytes(p) for p in f.planes] for f in frames]


def test_the_pyav_nodes_take_their_options_whole_or_as_keywords_not_both() -> None:
    """options= gives the same frames as the same options as keywords; a keyword that says something else than
    the options (a default value says nothing) is refused rather than one of the two silently winning."""
    from chromaflow.core.colorizer import Colorizer
    from chromaflow.filters.pyav import ColorizeNode, DeepfakeNode, DeflickerNode, run_nodes

    frames = _yuv_frames()
    whole = DeflickerNode(options=DeflickerOptions(radius=1, strength=0.5))
    keywords = DeflickerNode(radius=1, strength=0.5)
    assert whole.stream.options == keywords.stream.options == DeflickerOptions(radius=1, strength=0.5)
    assert _planes(run_nodes(frames, whole)) == _planes(run_nodes(frames, keywords))
    DeflickerNode(radius=DeflickerOptions.radius, options=DeflickerOptions(radius=1))  # the default: no clash
    with pytest.raises(UsageError, match=r"DeflickerNode: .*not both \(radius given with options=\)"):
        DeflickerNode(radius=2, options=DeflickerOptions(radius=1))
    with pytest.raises(UsageError, match="options must be a DeflickerOptions"):
        DeflickerNode(options=ColorizeOptions())  # type: ignore[arg-type]

    colorizer = Colorizer("base", device="cpu", precision="fp32", size=32)
    opts = ColorizeOptions(smooth=1, batch_size=3, detect_cuts=False)
    node = ColorizeNode(colorizer, options=opts)
    assert node.options is opts and node.stream is not None and node.stream.core.options is opts
    same = ColorizeNode(colorizer, smooth=1, batch_size=3, detect_cuts=False)
    assert _planes(run_nodes(frames, node)) == _planes(run_nodes(frames, same))
    with pytest.raises(UsageError, match=r"smooth, params given with options="):
        ColorizeNode(colorizer, smooth=0, params=opts.params, options=opts)

    scorer: Any = object()  # a ready scorer: the node's own options still apply
    assert DeepfakeNode(scorer, options=DeepfakeOptions(every=3, overlay=False)).every == 3
    with pytest.raises(UsageError, match="every given with options="):
        DeepfakeNode(scorer, every=2, options=DeepfakeOptions())


def test_device_engine_for_takes_the_colorize_options() -> None:
    from chromaflow.core.colorizer import Colorizer
    from chromaflow.core.device_engine import device_engine_for
    from chromaflow.core.transfer import PropagationParams

    colorizer = Colorizer("base", device="cpu", precision="fp32", size=32)
    params = PropagationParams(max_side=64)
    engine = device_engine_for(
        ColorizeOptions(engine="device", smooth=0, params=params), colorizer, None, None
    )
    assert engine is not None and engine.params is params
    assert device_engine_for(ColorizeOptions(smooth=0), colorizer, None, None) is None, "auto: CUDA only"
    assert device_engine_for(ColorizeOptions(engine="video", smooth=0), colorizer, None, None) is None
    with pytest.raises(UsageError, match="temporal smoothing needs the video engine"):
        device_engine_for(ColorizeOptions(engine="device"), colorizer, None, None)
    with pytest.raises(UsageError, match="reference keyframes"):
        device_engine_for(ColorizeOptions(engine="device", smooth=0), colorizer, {0: "key.png"}, None)
