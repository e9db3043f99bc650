"""One options object per verb: every option of ``colorize``, ``deflicker`` and ``deepfake`` with its default and its
check, written once.

Hosts (the CLI, the VapourSynth functions, the PyAV nodes, later the studio and batch) build these from their own
arguments and hand them to the core engines (:class:`~chromaflow.core.video.VideoColorizer`,
:class:`~chromaflow.core.deflicker.Deflicker` / :class:`~chromaflow.core.deflicker.DeflickerStream`,
:class:`~chromaflow.core.deepfake.DeepfakeScorer`), so a default or a rule cannot drift from one host to another. A
bad value raises :class:`~chromaflow.core.errors.UsageError` when the object is built, before any work; hosts add
their own frame (``vs.Error("chromaflow.colorize: ...")``, the CLI's exit code 2). Options whose check belongs to an
engine part (smoothing radius and strength, the scene-cut threshold, propagation tuning) are checked by building that
part, so the rule still lives in one place.

Not here: the data a run works on (frames, reference images, hints), objects a host builds from these options (the
:class:`~chromaflow.core.colorizer.Colorizer`, face detectors), and host-only choices (encoder settings, output pixel
formats, stream counts). Device and precision names are checked where they are resolved against the machine
(:mod:`chromaflow.core.device`), face sizes by :class:`~chromaflow.core.faces.FaceDetector`.
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from torch import nn

from chromaflow.core import registry
from chromaflow.core.errors import UsageError
from chromaflow.core.faces import FaceDetector
from chromaflow.core.mixing import MixRule, Models, is_mix, mix_rule
from chromaflow.core.overlay import OverlayStyle
from chromaflow.core.scenecut import DEFAULT_THRESHOLD, SceneCutDetector
from chromaflow.core.temporal.params import SmoothingParams
from chromaflow.core.transfer import MODES as MODES  # keyframe transfer modes, owned by the transfer package
from chromaflow.core.transfer import AbPredictor, PropagationParams, check_transfer_mode

if TYPE_CHECKING:
    from chromaflow.core.colorizer import Colorizer
    from chromaflow.core.deepfake import CropSpec, MarginCrop

COLORIZE_ENGINES: tuple[str, ...] = ("auto", "device", "video")
ANALYSIS_ENGINES: tuple[str, ...] = ("auto", "device", "host")
FACE_DETECTORS: tuple[str, ...] = ("haar", "blazeface", "mtcnn", "auto")
CLASSIFIERS: tuple[str, ...] = tuple(
    n for n in registry.names() if registry.get_spec(n).kind == "classifier"
) + tuple(registry.ENSEMBLES)
Smoothing = Literal["ema", "median", "none"]
# the video score: "confident" (ours, for clips of any length), "dfdc" (the DFDC winners' confident strategy, on raw
# face scores per model), "mean" and "median" of the frame scores; see chromaflow.core.deepfake_results
Aggregate = Literal["confident", "dfdc", "mean", "median"]
AGGREGATES: tuple[str, ...] = ("confident", "dfdc", "mean", "median")
Engine = Literal["auto", "device", "host"]


def given[O: (ColorizeOptions, DeflickerOptions, DeepfakeOptions)](options: O, **changes: Any) -> O:
    """``options`` with the ``changes`` that are not None (a keyword left out or passed as None keeps its value).

    The engines' keyword forms use this: ``VideoColorizer(..., smooth_radius=2)`` is ``options`` with ``smooth=2``.
    """
    real = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(options, **real) if real else options


def cut_detector(threshold: float | None, detect_cuts: bool) -> SceneCutDetector | None:
    """The scene-cut detector a run uses (``threshold`` None: :data:`DEFAULT_THRESHOLD`), None without detection."""
    if not detect_cuts:
        return None
    return SceneCutDetector(DEFAULT_THRESHOLD if threshold is None else threshold)


def _whole(value: object, minimum: int) -> bool:
    """``value`` is an int (not a bool) of at least ``minimum``."""
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


# ---------------------------------------------------------------------------------------------- checks shared with
# engine parts that can also be built on their own (Colorizer, ScoreSmoother; the transfer
# mode's check is the transfer package's own, chromaflow.core.transfer.modes)


def check_model_size(size: int | None) -> None:
    """A model input side: None (the model's own) or a multiple of 8 of at least 16."""
    if size is not None and (not _whole(size, 16) or size % 8):
        raise UsageError(f"--size {size} is not usable: the model input side must be a multiple of 8, >= 16")


def model_side(size: int | None, render_factor: int | None) -> int | None:
    """The side a run gives its model(s): ``size``, or DeOldify's ``16 * render_factor``; None: each model's own.

    Giving both is refused (they say the same thing twice and could disagree).
    """
    check_model_size(size)
    if render_factor is None:
        return size
    if size is not None:
        raise UsageError(
            f"--size {size} and --render-factor {render_factor} both set the model side (size = 16 x render "
            "factor); give one of them"
        )
    if not _whole(render_factor, 1):
        raise UsageError(
            f"--render-factor {render_factor!r} is not usable: give a whole number >= 1 (side = 16 x N; "
            "DeOldify's defaults are 35 for artistic and stable, 21 for video)"
        )
    return 16 * render_factor


def check_colorize_engine(engine: str) -> None:
    if engine not in COLORIZE_ENGINES:
        raise UsageError(f"engine must be auto, device or video, got {engine!r}")


def check_analysis_engine(engine: str) -> None:
    if engine not in ANALYSIS_ENGINES:
        raise UsageError(f"unknown analysis engine {engine!r}: use auto, device or host")


def check_score_smoothing(method: str, alpha: float, window: int) -> None:
    if method not in ("ema", "median", "none"):
        raise UsageError(f"unknown smoothing {method!r}: use ema, median or none")
    if not 0.0 < alpha <= 1.0:
        raise UsageError(f"EMA alpha must be in (0, 1], got {alpha}")
    if not _whole(window, 1):
        raise UsageError(f"median window must be at least 1, got {window}")


def check_colour_sources(colorizer: object, has_references: bool, has_hints: bool) -> None:
    """A colorize run needs a model or references; hints steer a model (one that has ``predict_ab``) alone."""
    if colorizer is None and not has_references:
        raise UsageError(
            "nothing to colour with: give a model (colorizer) or reference keyframes (--ref N=IMAGE)"
        )
    if has_hints and has_references:
        raise UsageError("colour hints steer the model alone; with reference keyframes, leave hints out")
    if has_hints and not isinstance(colorizer, AbPredictor):
        raise UsageError("colour hints need a colour model (a Colorizer); give one, or leave hints out")


def _classifier_given(classifier: str | Path) -> bool:
    """A registered classifier name, or a weights file that exists."""
    if isinstance(classifier, str) and classifier.strip().lower() in CLASSIFIERS:
        return True
    return Path(classifier).expanduser().is_file()


# ---------------------------------------------------------------------------------------------- the verbs


@dataclass(frozen=True)
class ColorizeOptions:
    """The options of ``colorize`` (and VapourSynth's ``transfer``, which is colorize without a model)."""

    model: "Models | Colorizer | None" = (
        "base"  # name, .pt file or net, or two as "A+B" / ("A", "B") (a mix); None: references only
    )
    device: str | None = None  # where the model runs: auto, cpu, cuda, cuda:N (None: $CHROMAFLOW_DEVICE)
    precision: str | None = None  # model precision: auto, fp32, fp16 or bf16 (None: the device's best)
    size: int | None = None  # model input side in pixels (a multiple of 8, >= 16); None: the model's own
    render_factor: int | None = None  # DeOldify's spelling of the side: 16 x render_factor (not with size)
    mix: float | None = None  # two models, mean rule: the first model's weight in [0, 1] (None: 0.5)
    mix_rule: str | None = None  # two models: "mean" or "saturated" (more saturated wins; None: mean)
    mix_softness: float | None = None  # saturated rule: blend width in ab units (None: 0, a per-pixel pick)
    batch_size: int = 8  # frames per model batch (fixed blocks: results do not depend on access order)
    transfer: str = "auto"  # how reference keyframes reach other frames, one of MODES
    smooth: int = 2  # temporal smoothing radius in frames against colour flicker (0 = off)
    smooth_strength: float = 1.0  # weight of a confident neighbour (0 = off, 1 = as much as the frame)
    scene_cut_threshold: float | None = None  # cut score where propagation and smoothing stop (None: 0.2)
    detect_cuts: bool = True  # False: no scene-cut detection (colour may then cross cuts)
    engine: str = "auto"  # auto, device or video (see chromaflow.core.device_engine)
    params: PropagationParams = field(default_factory=PropagationParams)  # working size, propagation tuning

    def __post_init__(self) -> None:
        model_side(self.size, self.render_factor)
        self.mix_rule_of()
        if not _whole(self.batch_size, 1):
            raise UsageError(f"batch size must be at least 1, got {self.batch_size!r}")
        check_transfer_mode(self.transfer)
        SmoothingParams(radius=self.smooth, strength=self.smooth_strength)
        cut_detector(self.scene_cut_threshold, True)
        check_colorize_engine(self.engine)
        if not isinstance(self.params, PropagationParams):
            raise UsageError(f"params must be a PropagationParams, got {type(self.params).__name__}")

    def cut_detector(self) -> SceneCutDetector | None:
        """The run's one scene-cut detector (None when detection is off)."""
        return cut_detector(self.scene_cut_threshold, self.detect_cuts)

    def mix_rule_of(self) -> MixRule | None:
        """The rule combining a mix's two models (None for one model); mix options without a mix are refused."""
        pair = self.model is not None and is_mix(self.model)
        if not pair:
            if (self.mix, self.mix_rule, self.mix_softness) != (None, None, None):
                raise UsageError(
                    "--mix, --mix-rule and --mix-softness combine two models: give the model as A+B "
                    "(VapourSynth and Python: model=('A', 'B')), or leave them out"
                )
            return None
        return mix_rule(self.mix, self.mix_rule, self.mix_softness)

    def new_colorizer(self, arch: str | None = None) -> "Colorizer | None":
        """A :class:`~chromaflow.core.colorizer.Colorizer` for ``model`` (itself when it is one; None without);
        ``arch``: the architecture of a weights file that does not record it."""
        from chromaflow.core.colorizer import Colorizer

        if self.model is None or isinstance(self.model, Colorizer):
            return self.model
        return Colorizer(
            self.model,
            device=self.device,
            precision=self.precision,
            size=model_side(self.size, self.render_factor),
            arch=arch,
            mix=self.mix_rule_of(),
        )


@dataclass(frozen=True)
class DeflickerOptions:
    """The options of ``deflicker``."""

    # defaults chosen on DAVIS with benchmarks/deflicker.py (results/deflicker.json): radius 3 removes more
    # flicker than 2 for a little more time, and a 256 px working size about as much as 480 in much less time
    radius: int = 3  # frames on either side a frame's colour is smoothed with (>= 1)
    strength: float = 1.0  # weight of the neighbours (0 = frames come back unchanged, 1 = full)
    scene_cut_threshold: float | None = None  # cut score where smoothing stops (None: 0.2)
    detect_cuts: bool = True  # False: no scene-cut detection
    max_side: int = 256  # longer side of the working resolution the correction is computed at (>= 16)

    def __post_init__(self) -> None:
        if not _whole(self.radius, 1):
            raise UsageError(f"deflicker radius must be a whole number of frames >= 1, got {self.radius!r}")
        SmoothingParams(radius=self.radius, strength=self.strength)
        if not _whole(self.max_side, 16):
            raise UsageError(f"the working resolution must be at least 16 px, got {self.max_side!r}")
        cut_detector(self.scene_cut_threshold, True)

    def cut_detector(self) -> SceneCutDetector | None:
        """The run's scene-cut detector (None when detection is off)."""
        return cut_detector(self.scene_cut_threshold, self.detect_cuts)


@dataclass(frozen=True)
class DeepfakeOptions:
    """The options of ``deepfake``: the scorer's (detector to aggregate) and the hosts' (overlay, sampling)."""

    detector: str | FaceDetector = (
        "haar"  # haar, blazeface, mtcnn, auto (BlazeFace if its weights exist), a detector
    )
    classifier: str | Path | nn.Module = "meso4-df"  # a name of CLASSIFIERS, a weights file or a net
    classifier_path: str | Path | None = None  # the classifier's weights from this file instead
    classifier_name: str | None = None  # the name reported for a classifier given as a module
    classifier_arch: str | None = None  # the architecture of a classifier file (None: the one it records)
    device: str | None = None  # where the nets run: auto, cpu, cuda, cuda:N
    precision: str | None = None  # classifier: auto, fp32, fp16, bf16 (None: the classifier's default)
    threshold: float = 0.5  # scores at or above read FAKE (verdicts, overlay labels, sidecars)
    smoothing: Smoothing = "ema"  # per-track smoothing of scores over time: ema, median or none
    alpha: float = 0.5  # EMA weight of the newest score, in (0, 1]
    window: int = 5  # running-median length in scores (>= 1)
    aggregate: Aggregate = "confident"  # the video score finish() reports, one of AGGREGATES
    min_face: int = 80  # smallest face side in frame pixels the built-in detectors report
    min_track: int = 1  # report a face once its track was seen in this many scored frames (3 hides blips)
    engine: Engine = "auto"  # where faces are found and classified: auto, device (BlazeFace) or host
    max_batch: int = 64  # face crops per classifier call
    crop: "CropSpec | MarginCrop | None" = None  # crop rule (None: the classifier's own, else the detector's)
    overlay: bool = True  # draw boxes and scores into the output frames
    style: OverlayStyle | None = None  # drawing style of the overlay (None: OverlayStyle())
    every: int = 1  # score every N-th frame; the frames between show the last result
    batch_size: int = 8  # frames per scoring batch (their faces are classified together)

    def __post_init__(self) -> None:
        if isinstance(self.detector, str) and self.detector not in FACE_DETECTORS:
            raise UsageError(f"unknown face detector {self.detector!r}: use {', '.join(FACE_DETECTORS)}")
        if isinstance(self.classifier, str | Path) and not _classifier_given(self.classifier):
            raise UsageError(
                f"unknown classifier {str(self.classifier)!r}: use one of {', '.join(CLASSIFIERS)}, or a weights "
                "file with its architecture (--classifier FILE --arch ARCH)"
            )
        check_score_smoothing(self.smoothing, self.alpha, self.window)
        if self.aggregate not in AGGREGATES:
            raise UsageError(f"unknown video aggregate {self.aggregate!r}: use {', '.join(AGGREGATES)}")
        if isinstance(self.threshold, bool) or not isinstance(self.threshold, int | float):
            raise UsageError(f"the FAKE/REAL threshold must be a number in (0, 1), got {self.threshold!r}")
        if not 0.0 < self.threshold < 1.0:
            raise UsageError(f"the FAKE/REAL threshold must be in (0, 1), got {self.threshold}")
        if not _whole(self.min_track, 1):
            raise UsageError(f"min_track must be a whole number of frames >= 1, got {self.min_track!r}")
        check_analysis_engine(self.engine)
        if not _whole(self.max_batch, 1):
            raise UsageError(
                f"max_batch (face crops per classifier call) must be >= 1, got {self.max_batch!r}"
            )
        if not _whole(self.every, 1):
            raise UsageError(f"every must be at least 1 (1 scores every frame), got {self.every!r}")
        if not _whole(self.batch_size, 1):
            raise UsageError(f"the scoring batch size must be at least 1, got {self.batch_size!r}")

    def overlay_style(self) -> OverlayStyle:
        """The overlay's style: ``style`` when given, else the default one labelling FAKE from ``threshold``."""
        return self.style or OverlayStyle(fake_label_from=self.threshold)
