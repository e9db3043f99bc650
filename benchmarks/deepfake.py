"""Deepfake scoring benchmark on ../shared/data/deepfake-dev.

- MesoNet's four test faces (2 DF, 2 real): fake score per classifier, accuracy at 0.5.
- A table per detector x classifier on labelled clips: the four DFDC dev clips (1 REAL, 3 FAKE), or ``--clips DIR``
  (videos in ``DIR/real`` and ``DIR/fake``); every N-th frame (at most ``--max-frames``) decoded with PyAV: per-video
  score (``--aggregate``), AUC over videos, accuracy at ``--threshold``, frames/s of the whole scorer, faces per
  frame. Classifiers whose weights are absent (MesoNet from ../shared/models/mesonet, the others from the model
  cache) are listed as absent.
- Throughput: frames/s of the whole scorer (detect + crop + classify + track) on 1080p frames, per detector, on CPU
  and on CUDA when available.

Prints a table to stderr/stdout and writes benchmarks/results/deepfake.json.
Usage: python benchmarks/deepfake.py [--every 30] [--max-frames 10] [--clips DIR] [--classifiers a,b]
       [--detectors haar,blazeface] [--aggregate confident] [--threshold 0.5] [--speed-frames 6]
"""

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from chromaflow.core import registry
from chromaflow.core.deepfake import DeepfakeScorer
from chromaflow.core.errors import ModelError
from chromaflow.core.faces import FaceDetector
from chromaflow.core.metrics import auc
from chromaflow.core.nets.mesonet import load_meso
from chromaflow.core.options import AGGREGATES, FACE_DETECTORS
from chromaflow.core.options import CLASSIFIERS as ALL_CLASSIFIERS

CLASSIFIERS = {  # MesoNet's weights, read from ../shared/models/mesonet
    "meso4-df": "Meso4_DF.h5",
    "meso4-f2f": "Meso4_F2F.h5",
    "mesoinception-df": "MesoInception_DF.h5",
    "mesoinception-f2f": "MesoInception_F2F.h5",
}
VIDEOS = {"lynaeydofd.mp4": 0, "brtujopkby.mp4": 1, "widuwuoiur.mp4": 1, "yhffcuhhjy.mp4": 1}  # 1 = FAKE


def log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


def decode(path: Path, every: int, limit: int | None = None) -> tuple[list[np.ndarray], list[int]]:
    """Every ``every``-th frame as RGB, at most ``limit`` of them (decoding stops there)."""
    frames, indices = [], []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if limit is not None and len(frames) >= limit:
                break
            if i % every == 0:
                frames.append(frame.to_ndarray(format="rgb24"))
                indices.append(i)
    return frames, indices


def detector(kind: str, shared: Path, device: str, min_face: int) -> FaceDetector:
    return FaceDetector(
        kind,  # type: ignore[arg-type]
        min_size=min_face,
        blazeface_weights=shared / "models/blazeface/blazeface.pth",
        blazeface_anchors=shared / "models/blazeface/anchors.npy",
        device=device,
    )


def scorer(det: FaceDetector, name: str, shared: Path, device: str, **kw: object) -> DeepfakeScorer:
    if name in CLASSIFIERS:
        kw["classifier_path"] = shared / "models/mesonet" / CLASSIFIERS[name]
    return DeepfakeScorer(det, name, device=device, **kw)  # type: ignore[arg-type]


def weights_present(name: str, shared: Path) -> bool:
    """MesoNet's from the shared folder, every other classifier's (each ensemble member's) from the model cache."""
    if name in CLASSIFIERS:
        return (shared / "models/mesonet" / CLASSIFIERS[name]).is_file()
    return all(registry.is_present(m) for m in registry.members(name))


def labelled_clips(folder: Path | None, shared: Path) -> dict[Path, int]:
    """Clip -> label (1 = FAKE): the DFDC dev clips, or the videos of ``folder/real`` and ``folder/fake``."""
    if folder is None:
        return {shared / "data/deepfake-dev/dfdc" / name: label for name, label in VIDEOS.items()}
    clips = {p: label for label, sub in ((0, "real"), (1, "fake")) for p in sorted((folder / sub).glob("*"))}
    clips = {p: y for p, y in clips.items() if p.is_file()}
    if not clips:
        raise SystemExit(f"--clips {folder}: no videos in {folder}/real or {folder}/fake")
    return clips


def clip_table(
    args: argparse.Namespace, shared: Path, detectors: list[str], classifiers: list[str]
) -> dict[str, object]:
    """Per detector x classifier: per-video scores, AUC, accuracy at the threshold, frames/s (or "absent")."""
    clips = labelled_clips(args.clips, shared)
    decoded = {p: decode(p, args.every, args.max_frames)[0] for p in clips}
    labels = list(clips.values())
    table: dict[str, object] = {}
    for det_name in detectors:
        try:
            det = detector(det_name, shared, "cpu", args.min_face)
        except ModelError as err:  # the detector's weights are not in the model cache
            log(f"{det_name}: {err}")
            table.update({f"{det_name}/{cls}": "absent (detector weights)" for cls in classifiers})
            continue
        for cls in classifiers:
            key = f"{det_name}/{cls}"
            if not weights_present(cls, shared):
                table[key] = "absent"
                log(f"{key}: weights absent")
                continue
            log(f"{key} ...")
            sc = scorer(det, cls, shared, "cpu", aggregate=args.aggregate, threshold=args.threshold)
            per_video: dict[str, object] = {}
            frames_done, seconds = 0, 0.0
            for path, label in clips.items():
                start = time.perf_counter()
                results, summary = sc.score_video(decoded[path], batch=4)
                seconds += time.perf_counter() - start
                frames_done += len(results)
                per_video[path.name] = {
                    "label": "FAKE" if label else "REAL",
                    "score": summary.score,
                    "verdict": summary.verdict,
                    "frames": summary.frames,
                    "frames_with_faces": summary.frames_with_faces,
                    "faces_per_frame": round(sum(len(r.faces) for r in results) / max(1, len(results)), 3),
                }
            scores = [0.5 if v["score"] is None else float(v["score"]) for v in per_video.values()]  # type: ignore[index]
            both = 0 < sum(labels) < len(labels)
            table[key] = {
                "videos": per_video,
                "auc": auc(labels, scores) if both else None,
                "accuracy": sum((s >= args.threshold) == bool(y) for s, y in zip(scores, labels, strict=True))
                / len(labels),
                "fps": round(frames_done / seconds, 3) if seconds else None,
            }
    return table


def print_table(table: dict[str, object], args: argparse.Namespace) -> None:
    source = args.clips or "the DFDC dev clips"
    print(
        f"{source}, every {args.every}th frame (at most {args.max_frames}); video score = {args.aggregate}, "
        f"threshold {args.threshold}"
    )
    print(f"  {'detector/classifier':36s} {'auc':>5s} {'acc':>5s} {'fps':>7s}  faces/frame per video")
    for key, row in table.items():
        if not isinstance(row, dict):
            print(f"  {key:36s} {row}")
            continue
        a = row["auc"]
        fpf = "/".join(str(v["faces_per_frame"]) for v in row["videos"].values())
        print(
            f"  {key:36s} {'-' if a is None else format(a, '.2f'):>5s} {row['accuracy']:5.2f} "
            f"{'-' if row['fps'] is None else format(row['fps'], '.2f'):>7s}  {fpf}"
        )


def mesonet_faces(shared: Path) -> dict[str, dict[str, float]]:
    root = shared / "data/deepfake-dev/mesonet-test-images"
    files = sorted(root.glob("*/*.jpg"))
    batch = np.stack(
        [cv2.resize(cv2.cvtColor(cv2.imread(str(f)), cv2.COLOR_BGR2RGB), (256, 256)) for f in files]
    ).astype(np.float32)
    x = torch.from_numpy(batch / 255).permute(0, 3, 1, 2)
    out: dict[str, dict[str, float]] = {}
    for name, file in CLASSIFIERS.items():
        with torch.no_grad():
            fake = (1 - torch.sigmoid(load_meso(None, shared / "models/mesonet" / file)(x))).tolist()
        labels = [int(f.parent.name == "df") for f in files]
        out[name] = {f"{f.parent.name}/{f.name}": round(s, 4) for f, s in zip(files, fake, strict=True)}
        out[name]["accuracy"] = sum((s >= 0.5) == bool(y) for s, y in zip(fake, labels, strict=True)) / len(
            files
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared", type=Path, default=Path(__file__).resolve().parents[1].parent / "shared")
    ap.add_argument("--every", type=int, default=30, help="score every N-th frame of each clip")
    ap.add_argument("--max-frames", type=int, default=10, help="at most this many scored frames per clip")
    ap.add_argument("--clips", type=Path, help="labelled clips: videos in DIR/real and DIR/fake")
    ap.add_argument("--classifiers", default=",".join(ALL_CLASSIFIERS), help="comma-separated")
    ap.add_argument("--aggregate", choices=AGGREGATES, default="confident", help="the video score's rule")
    ap.add_argument("--threshold", type=float, default=0.5, help="scores at or above are FAKE")
    ap.add_argument("--min-face", type=int, default=80)
    ap.add_argument("--speed-frames", type=int, default=6, help="1080p frames timed per detector and device")
    ap.add_argument("--detectors", default=",".join(d for d in FACE_DETECTORS if d != "auto"))
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results/deepfake.json")
    args = ap.parse_args()
    shared = args.shared
    torch.manual_seed(0)
    detectors = args.detectors.split(",")
    result: dict[str, object] = {
        "machine": {
            "platform": platform.platform(),
            "cpu_threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        },
        "every": args.every,
        "min_face": args.min_face,
    }
    log("MesoNet test faces ...")
    result["mesonet_faces"] = mesonet_faces(shared)

    table = clip_table(args, shared, detectors, args.classifiers.split(","))
    result["clips" if args.clips else "dfdc"] = table
    result["aggregate"], result["threshold"] = args.aggregate, args.threshold

    speed: dict[str, float] = {}
    frames_1080 = decode(shared / "data/deepfake-dev/dfdc/lynaeydofd.mp4", args.every, args.speed_frames)[0]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for det_name in detectors:
            try:
                det = detector(det_name, shared, device, args.min_face)
            except ModelError:
                continue  # weights absent, reported in the table
            sc = scorer(det, "meso4-df", shared, device)
            sc.score_frames(frames_1080[:1])  # warm-up
            start = time.perf_counter()
            sc.score_frames(frames_1080)
            if device == "cuda":
                torch.cuda.synchronize()
            speed[f"{device}/{det_name}"] = round(len(frames_1080) / (time.perf_counter() - start), 2)
    result["fps_1080p"] = speed

    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".json.part")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(args.out)

    print("MesoNet test faces (fake score; accuracy at 0.5)")
    for name, row in result["mesonet_faces"].items():  # type: ignore[attr-defined]
        print(f"  {name:18s} " + "  ".join(f"{k.split('/')[-1]}={v}" for k, v in row.items()))
    print_table(table, args)
    print("frames/s at 1080p (detect + classify + track, meso4-df):", speed)


if __name__ == "__main__":
    main()
