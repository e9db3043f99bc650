"""The ``Chromaflow*`` frame properties the VapourSynth filters read and write, named in one place."""

from collections.abc import Mapping
from typing import Any

from chromaflow.core.deepfake import DeepfakeScorer
from chromaflow.core.deepfake_results import FrameResult

PROP_PREFIX = "Chromaflow"
KEYFRAME_PROP = PROP_PREFIX + "Keyframe"  # set to 1 on the coloured frames of a reference clip
MODEL_PROP = PROP_PREFIX + "Model"


def write_colour_info(props: Any, info: Mapping[str, Any]) -> None:
    """What :meth:`VideoColorizer.info` says about a frame's colour (keyframes, transfer, scene cuts)."""
    props[PROP_PREFIX + "KeyframeDistance"] = int(info["keyframe_distance"])
    props[PROP_PREFIX + "TransferConfidence"] = float(info["confidence"])
    props[PROP_PREFIX + "SceneCut"] = int(info["scene_cut"])
    props[KEYFRAME_PROP] = int(info["is_keyframe"])


def write_deepfake_result(props: Any, result: FrameResult, scorer: DeepfakeScorer) -> None:
    """A frame's deepfake result; the per-face arrays (boxes flattened as x0, y0, x1, y1) only when faces were found."""
    props[PROP_PREFIX + "Faces"] = len(result.faces)
    props[PROP_PREFIX + "DeepfakeModel"] = scorer.model_name
    props[PROP_PREFIX + "FaceDetector"] = scorer.detector.name
    if result.faces:
        props[PROP_PREFIX + "DeepfakeScore"] = float(result.score or 0.0)
        props[PROP_PREFIX + "FaceBoxes"] = [float(v) for face in result.faces for v in face.box]
        props[PROP_PREFIX + "FaceScores"] = [float(face.score) for face in result.faces]
        props[PROP_PREFIX + "FaceRawScores"] = [float(face.raw_score) for face in result.faces]
        props[PROP_PREFIX + "FaceTracks"] = [int(face.track) for face in result.faces]
