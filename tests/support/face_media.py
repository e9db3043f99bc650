"""A short lossless clip of one real face (a DFDC dev frame), for the deepfake tests of every host."""

from fractions import Fraction
from pathlib import Path

import av
import cv2

FACE_FRAME = "data/deepfake-dev/dfdc/lynaeydofd_fr0.jpg"


def write_face_clip(shared: Path, path: Path, frames: int) -> Path:
    """``frames`` copies of a 640 x 480 crop around the face of a DFDC dev frame, as FFV1 at 25 frames/s."""
    bgr = cv2.imread(str(shared / FACE_FRAME))
    rgb = bgr[100:580, 640:1280, ::-1].copy()
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, 25)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path
