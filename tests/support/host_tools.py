"""Helpers for the host tests (Blender, OBS, FFmpeg recipes); not a test module.

Loaded by path (``load_host_tools()`` in each test) because tests run with ``--import-mode=importlib``.
"""

import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
_apt_tried: dict[str, str | None] = {}


def find_or_install(program: str, package: str, timeout: float = 900.0) -> tuple[str | None, str]:
    """The path of ``program``; when missing, ``apt-get install package`` once (as root, unless
    ``CHROMAFLOW_NO_APT`` is set). Returns ``(path or None, why it is missing)``."""
    found = shutil.which(program)
    if found:
        return found, ""
    if package not in _apt_tried:
        reason = None
        if os.environ.get("CHROMAFLOW_NO_APT"):
            reason = "CHROMAFLOW_NO_APT is set"
        elif shutil.which("apt-get") is None:
            reason = "apt-get is not available on this system"
        elif hasattr(os, "geteuid") and os.geteuid() != 0:
            reason = "installing it needs root (apt-get)"
        else:
            env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
            try:
                done = subprocess.run(
                    ["apt-get", "install", "-y", "--no-install-recommends", package],
                    capture_output=True, text=True, timeout=timeout, env=env,
                )  # fmt: skip
                if done.returncode != 0:
                    reason = f"apt-get install {package} failed: {done.stderr.strip()[-300:]}"
            except subprocess.TimeoutExpired:
                reason = f"apt-get install {package} took longer than {timeout:.0f} s"
        _apt_tried[package] = reason
    found = shutil.which(program)
    if found:
        return found, ""
    return None, f"{program} is not installed and could not be installed ({_apt_tried[package] or 'unknown'})"


def _python311() -> str | None:
    """A Python 3.11 interpreter (the only one Blender 5.0's ``bpy`` wheels are built for): PATH, else pyenv."""
    candidates = [shutil.which("python3.11")]
    roots = [Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))]
    pyenv = shutil.which("pyenv")
    if pyenv:
        done = subprocess.run([pyenv, "root"], capture_output=True, text=True, timeout=60)
        if done.returncode == 0:
            roots.insert(0, Path(done.stdout.strip()))
    for root in roots:
        candidates += [str(p) for p in sorted((root / "versions").glob("3.11*/bin/python3.11"), reverse=True)]
    check = "import sys; sys.exit(sys.version_info[:2] != (3, 11))"
    for candidate in candidates:
        if (
            candidate
            and subprocess.run([candidate, "-c", check], capture_output=True, timeout=60).returncode == 0
        ):
            return (
                candidate  # a pyenv shim on PATH can exist without that version selected: it fails this check
            )
    return None


def find_or_install_bpy(version: str, timeout: float = 900.0) -> tuple[str | None, str]:
    """A Python with Blender ``version`` as a module (PyPI ``bpy``) in ``.venv-bpy``, made once on first use unless
    ``CHROMAFLOW_NO_BPY`` is set. Returns ``(its python or None, why it is missing)``."""
    venv = REPO / ".venv-bpy"
    python = venv / "bin" / "python"
    probe_code = "import bpy, sys; sys.stdout.write(bpy.app.version_string)"
    if python.is_file():
        done = subprocess.run([str(python), "-c", probe_code], capture_output=True, text=True, timeout=300)
        if done.returncode == 0 and done.stdout.strip() == version:
            return str(python), ""
    if os.environ.get("CHROMAFLOW_NO_BPY"):
        return None, "CHROMAFLOW_NO_BPY is set"
    base = _python311()
    if base is None:
        return None, "no Python 3.11 (on PATH or through pyenv) to install Blender's bpy module with"
    try:
        steps = [
            [base, "-m", "venv", "--clear", str(venv)],
            [str(python), "-m", "pip", "install", "-q", f"bpy=={version}"],
        ]
        for step in steps:
            done = subprocess.run(step, capture_output=True, text=True, timeout=timeout)
            if done.returncode != 0:
                return None, f"{' '.join(step[:4])} failed: {done.stderr.strip()[-300:]}"
    except subprocess.TimeoutExpired:
        return None, f"installing bpy {version} took longer than {timeout:.0f} s"
    return str(python), ""


def chromaflow_cli() -> str:
    """The chromaflow console script of the environment running the tests."""
    script = VENV_BIN / "chromaflow"
    return str(script) if script.is_file() else shutil.which("chromaflow") or "chromaflow"


def import_deepfake_weights(shared: Path) -> None:
    """Put the shared MesoNet weights into the (test-isolated) model cache with the real CLI."""
    weights = shared / "models" / "mesonet" / "Meso4_DF.h5"
    done = subprocess.run(
        [chromaflow_cli(), "models", "import", "meso4-df", str(weights)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr


def run_cli_or_skip_reason(argv: list[str], **kwargs: object) -> tuple[subprocess.CompletedProcess[str], str]:
    """Run a CLI command; the reason to skip when it failed for want of model weights (exit code 4)."""
    done = subprocess.run(argv, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if done.returncode == 4:
        return done, f"model weights are not available: {done.stderr.strip()[-300:]}"
    return done, ""


def make_clip(
    path: Path, frames: int = 12, size: tuple[int, int] = (64, 48), rate: int = 25, audio: bool = True
) -> Path:
    """A tiny H.264 mp4 (moving gradient, optional silent AAC track) written with PyAV."""
    width, height = size
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=rate)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.options = {"preset": "ultrafast", "crf": "18"}
        sound = out.add_stream("aac", rate=48000, layout="mono") if audio else None
        yy, xx = np.mgrid[0:height, 0:width]
        for i in range(frames):
            rgb = np.stack(
                [(xx * 4 + i * 9) % 256, (yy * 5) % 256, np.full_like(xx, 40 + 8 * i) % 256], axis=-1
            )
            frame = av.VideoFrame.from_ndarray(rgb.astype(np.uint8), format="rgb24")
            for packet in video.encode(frame):
                out.mux(packet)
        if sound is not None:
            samples = int(48000 * frames / rate)
            chunk = 1024
            for start in range(0, samples, chunk):
                n = min(chunk, samples - start)
                block = av.AudioFrame.from_ndarray(np.zeros((1, n), np.float32), format="fltp", layout="mono")
                block.sample_rate = 48000
                block.pts = start
                block.time_base = Fraction(1, 48000)
                for packet in sound.encode(block):
                    out.mux(packet)
            for packet in sound.encode():
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
    return path


def frame_rgb(path: Path, index: int) -> np.ndarray:
    """Frame ``index`` of a video file as an RGB24 array."""
    with av.open(str(path)) as container:
        for i, frame in enumerate(container.decode(video=0)):
            if i == index:
                return frame.to_ndarray(format="rgb24")
    raise IndexError(f"{path} has no frame {index}")


def probe(path: Path) -> dict[str, object]:
    """Decode every video frame: count, size, rate, duration (s) and whether there is audio."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        count = 0
        last_time = 0.0
        for frame in container.decode(stream):
            count += 1
            last_time = float(frame.time or 0.0)
            size = (frame.width, frame.height)
        return {
            "frames": count,
            "size": size if count else None,
            "rate": Fraction(stream.average_rate) if stream.average_rate else None,
            "last_time": last_time,
            "audio": bool(container.streams.audio),
        }
