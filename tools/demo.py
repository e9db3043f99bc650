"""The README's main job on the built-in default model: colorize a real black-and-white photo and a short clip.

Inputs come from scikit-image's bundled samples (``camera``: CC0, Lav Varshney), so nothing is downloaded.
Everything is written to ``demo-output/``; the commands run are printed so they can be repeated by hand.
"""

import shlex
import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import av
import cv2
import numpy as np
from skimage import data

OUT = Path("demo-output")
CLI = [str(Path(sys.executable).with_name("chromaflow"))]


def run(*args: str) -> None:
    command = [*CLI, *args]
    print("$ chromaflow " + " ".join(shlex.quote(a) for a in args), flush=True)
    start = time.perf_counter()
    subprocess.run(command, check=True)
    print(f"  ({time.perf_counter() - start:.1f} s)", flush=True)


def write_pan_clip(
    gray: np.ndarray, path: Path, frames: int = 36, size: tuple[int, int] = (320, 240)
) -> None:
    """A slow pan and zoom across a gray photo, as an H.264 clip (gray, so yuv420p with neutral chroma)."""
    w, h = size
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for i in range(frames):
            t = i / (frames - 1)
            crop = int(gray.shape[0] * (0.8 - 0.2 * t))
            x0 = int((gray.shape[1] - crop) * t)
            y0 = int((gray.shape[0] - crop) * 0.3)
            view = cv2.resize(gray[y0 : y0 + crop, x0 : x0 + crop], (w, h), interpolation=cv2.INTER_AREA)
            frame = av.VideoFrame.from_ndarray(np.repeat(view[:, :, None], 3, axis=2), format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    photo = OUT / "camera.png"
    cv2.imwrite(str(photo), data.camera())
    run("image", str(photo), str(OUT / "camera-colour.png"), "--compare")
    clip = OUT / "pan-gray.mp4"
    write_pan_clip(data.camera(), clip)
    run("colorize", str(clip), str(OUT / "pan-colour.mp4"), "--progress", "none")
    print(f"demo: results in {OUT}/: camera-colour.png, camera-colour_compare.png, pan-colour.mp4")


if __name__ == "__main__":
    main()
