"""Face detectors on the four DFDC dev clips: faces found per frame, unconfirmed faces, milliseconds per frame.

A detection counts as confirmed when another detector finds nearly the same box in the same frame (IoU > 0.3): the
clips have no face annotations, so agreement stands in for them; the unconfirmed ones are written to a contact sheet
(``--sheet``) to be looked at. Time is per frame, 1080p clips only (one frame per call, after one warm-up frame, the
detectors taking turns frame by frame; one CPU thread each by default: on a shared, busy machine two threads
waiting on each other make times swing tenfold).

    python benchmarks/face_detectors.py [--frames 15] [--min-face 80] [--threads 1] [--sheet unconfirmed.jpg]

Prints the figures and writes benchmarks/results/face_detectors.json.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import torch

from chromaflow.core.faces import Face, FaceDetector, box_iou
from chromaflow.core.paths import shared_dir

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine

HERE = Path(__file__).resolve().parent
CLIPS = ("lynaeydofd", "brtujopkby", "widuwuoiur", "yhffcuhhjy")


def _frames(path: Path, count: int) -> list[np.ndarray]:
    """``count`` frames spread evenly over the clip."""
    with av.open(str(path)) as container:
        total = container.streams.video[0].frames or 300
        wanted = {round(i * total / count) for i in range(count)}
        return [f.to_ndarray(format="rgb24") for i, f in enumerate(container.decode(video=0)) if i in wanted]


def _detectors(shared: Path, min_face: int) -> dict[str, FaceDetector]:
    import facenet_pytorch  # carries MTCNN's published weights in its data/ folder

    blaze = shared / "models/blazeface"
    return {
        "haar": FaceDetector("haar", min_size=min_face),
        "blazeface": FaceDetector(
            "blazeface",
            min_size=min_face,
            blazeface_weights=blaze / "blazeface.pth",
            blazeface_anchors=blaze / "anchors.npy",
        ),
        "mtcnn": FaceDetector(
            "mtcnn", min_size=min_face, mtcnn_weights=Path(facenet_pytorch.__file__).parent / "data"
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=15, help="frames per clip")
    parser.add_argument("--min-face", type=int, default=80)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads for torch and OpenCV")
    parser.add_argument("--sheet", type=Path, help="write the unconfirmed detections here (JPEG)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    shared = shared_dir()
    detectors = _detectors(shared, args.min_face)
    stats = {name: {"frames": 0, "faces": 0, "unconfirmed": 0, "ms_1080p": []} for name in detectors}
    tiles = []
    for clip in CLIPS:
        frames = _frames(shared / f"data/deepfake-dev/dfdc/{clip}.mp4", args.frames)
        is_1080p = sorted(frames[0].shape[:2]) == [1080, 1920]
        found: dict[str, list[list[Face]]] = {name: [] for name in detectors}
        for det in detectors.values():
            det.detect(frames[0])  # warm-up
        for frame in frames:  # detectors interleaved frame by frame: a change in machine load hits all alike
            for name, det in detectors.items():
                start = time.perf_counter()
                found[name].append(det.detect(frame))
                if is_1080p:
                    stats[name]["ms_1080p"].append(1000 * (time.perf_counter() - start))  # type: ignore[union-attr]
        for name in detectors:
            for k, frame in enumerate(frames):
                faces = found[name][k]
                others = [f.box for other in detectors if other != name for f in found[other][k]]
                stats[name]["frames"] += 1  # type: ignore[operator]
                stats[name]["faces"] += len(faces)  # type: ignore[operator]
                for face in faces:
                    iou = box_iou(np.array([face.box]), np.array(others)).max() if others else 0.0
                    if iou <= 0.3:
                        stats[name]["unconfirmed"] += 1  # type: ignore[operator]
                        x0, y0, x1, y1 = (max(0, int(v)) for v in face.box)
                        crop = cv2.resize(frame[y0:y1, x0:x1], (128, 128))
                        cv2.putText(crop, f"{name[:5]} {clip[:4]}", (2, 12), 0, 0.4, (255, 0, 0), 1)
                        tiles.append(crop)
    table = {}
    for name, s in stats.items():
        ms = s["ms_1080p"]
        table[name] = {
            "faces_per_frame": round(s["faces"] / s["frames"], 2),  # type: ignore[operator]
            "unconfirmed_per_frame": round(s["unconfirmed"] / s["frames"], 2),  # type: ignore[operator]
            "ms_per_1080p_frame": round(float(np.median(ms)), 1),  # type: ignore[arg-type]
            "frames": s["frames"],
        }
    record = {"machine": machine(), "min_face": args.min_face, "threads": args.threads, "detectors": table}
    print(json.dumps(record["detectors"], indent=2))
    out_path = HERE / "results" / "face_detectors.json"
    tmp = out_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(out_path)
    if args.sheet is not None and tiles:
        rows = [np.hstack(tiles[i : i + 8] + [np.zeros_like(tiles[0])] * (8 - len(tiles[i : i + 8])))
                for i in range(0, len(tiles), 8)]  # fmt: skip
        cv2.imwrite(str(args.sheet), cv2.cvtColor(np.vstack(rows), cv2.COLOR_RGB2BGR))


if __name__ == "__main__":
    main()
