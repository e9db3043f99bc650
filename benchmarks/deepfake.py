"""Deepfake scoring benchmark on ../shared/data/deepfake-dev.

- MesoNet's four test faces (2 DF, 2 real): fake score per classifier, accuracy at 0.5.
- DFDC clips (1 REAL, 3 FAKE), every N-th frame decoded with PyAV: per-video scores (confident and mean), accuracy at
  0.5 and AUC for each detector x classifier; faces found per frame.
- Throughput: frames/s of the whole scorer (detect + crop + classify + track) on 1080p frames, per detector, on CPU
  and on CUDA when available.

Prints a table to stderr/stdout and writes benchmarks/results/deepfake.json.
Usage: python benchmarks/deepfake.py [--every 30] [--shared ../shared] [--speed-frames 6]
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

from chromaflow.core.deepfake import DeepfakeScorer
from chromaflow.core.faces import FaceDetector
from chromaflow.core.metrics import auc
from chromaflow.core.nets.mesonet import load_meso

CLASSIFIERS = {
    "meso4-df": "Meso4_DF.h5",
    "meso4-f2f": "Meso4_F2F.h5",
    "mesoinception-df": "MesoInception_DF.h5",
    "mesoinception-f2f": "MesoInception_F2F.h5",
}
VIDEOS = {"lynaeydofd.mp4": 0, "brtujopkby.mp4": 1, "widuwuoiur.mp4": 1, "yhffcuhhjy.mp4": 1}  # 1 = FAKE


def log(*a: object) -> None:
    print(*a, file=sys.stderr, flush=True)


def decode(path: Path, every: int) -> tuple[list[np.ndarray], list[int]]:
    frames, indices = [], []
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
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


def scorer(det: FaceDetector, name: str, shared: Path, device: str) -> DeepfakeScorer:
    return DeepfakeScorer(
        det, name, classifier_path=shared / "models/mesonet" / CLASSIFIERS[name], device=device
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
    ap.add_argument("--every", type=int, default=30, help="score every N-th frame of the DFDC clips")
    ap.add_argument("--min-face", type=int, default=80)
    ap.add_argument("--speed-frames", type=int, default=6, help="1080p frames timed per detector and device")
    ap.add_argument("--detectors", default="haar,blazeface")
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

    clips = {name: decode(shared / "data/deepfake-dev/dfdc" / name, args.every) for name in VIDEOS}
    dfdc: dict[str, dict[str, object]] = {}
    for det_name in detectors:
        det = detector(det_name, shared, "cpu", args.min_face)
        for cls in CLASSIFIERS:
            log(f"DFDC: {det_name} + {cls} ...")
            sc = scorer(det, cls, shared, "cpu")
            per_video: dict[str, object] = {}
            for video, label in VIDEOS.items():
                frames, _indices = clips[video]
                results, summary = sc.score_video(frames, batch=4)
                per_video[video] = {
                    "label": "FAKE" if label else "REAL",
                    "confident": summary.confident,
                    "mean": summary.mean,
                    "frames": summary.frames,
                    "frames_with_faces": summary.frames_with_faces,
                    "faces_per_frame": round(sum(len(r.faces) for r in results) / max(1, len(results)), 3),
                    "tracks": len({f.track for r in results for f in r.faces}),
                }
            labels = list(VIDEOS.values())
            conf = [v["confident"] for v in per_video.values()]  # type: ignore[index]
            scores = [0.5 if c is None else float(c) for c in conf]
            dfdc[f"{det_name}/{cls}"] = {
                "videos": per_video,
                "accuracy": sum((s >= 0.5) == bool(y) for s, y in zip(scores, labels, strict=True))
                / len(labels),
                "auc": auc(labels, scores),
            }
    result["dfdc"] = dfdc

    speed: dict[str, float] = {}
    frames_1080 = [f for f in clips["lynaeydofd.mp4"][0]][: args.speed_frames]
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for det_name in detectors:
            sc = scorer(detector(det_name, shared, device, args.min_face), "meso4-df", shared, device)
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
    print(f"DFDC clips, every {args.every}th frame (video score = confident aggregate)")
    print(
        f"  {'detector/classifier':32s} "
        + " ".join(f"{v[:10]:>11s}" for v in VIDEOS)
        + "   acc   auc  faces/frame"
    )
    for key, row in dfdc.items():
        vids = row["videos"]  # type: ignore[index]
        cells = " ".join(
            f"{'-' if vids[v]['confident'] is None else format(vids[v]['confident'], '.3f'):>11s}"
            for v in VIDEOS
        )
        fpf = "/".join(str(vids[v]["faces_per_frame"]) for v in VIDEOS)
        a = row["auc"]
        print(f"  {key:32s} {cells}  {row['accuracy']:.2f}  {'-' if a is None else format(a, '.2f')}  {fpf}")
    print("frames/s at 1080p (detect + classify + track, meso4-df):", speed)


if __name__ == "__main__":
    main()
