"""The README's copy-paste examples, run as written on tiny generated inputs.

Convention (how an example is run):

- Each example runs in a fresh temporary folder that is the current directory (and ``$HOME``, for ``~/...``). The
  files an example reads are generated there first, under the names it uses: gray clips (``old_film.mp4``,
  ``in.mp4``, ``old.mp4``, ``film.mp4``), a clip of a real face (``clip.mp4``, skimage's public-domain
  ``astronaut``), gray photos (``old.jpg``, ``scans/*.png``), an image sequence (``frames/%05d.png``), coloured
  keyframe stills (``key<N>.png``: frame N's lightness with a warm tint) and ``~/Downloads/Meso4_DF.h5`` (a copy
  from the shared data).
- ``old_film.mp4`` and ``film.mp4`` change shot one frame before their last keyframe, so that keyframe colours
  only its own shot and a frame near the start does not wait for the whole clip.
- Python: a statement that is just ``...`` (where the reader's own code goes) records the loop's ``out`` instead;
  ``cv2.imshow`` / ``cv2.waitKey`` record the shown frames (opencv-python-headless has no windows).
- Command line: every line of the README's block is either run (in-process through ``chromaflow``'s ``main``, after
  bash has split it, so quoting, ``~`` and comments behave as in a shell; the pipe line runs through bash with the
  real ``ffmpeg``) or listed in ``SKIPPED`` with the reason. The only text changed before running is listed in
  ``SUBSTITUTED``. A new README line without a check here fails the test.

The MesoNet weights come from the shared data (``shared`` fixture), so examples that score faces skip without it.
"""

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import pytest
import torch

from chromaflow.core import colour, registry
from chromaflow.plugins.cli.main import main as cli_main

REPO = Path(__file__).resolve().parent.parent
README = REPO / "README.md"
W, H = 64, 48
FILM_FRAMES = 12


# ------------------------------------------------------------------------------------------- README parsing


def readme_section(title: str) -> str:
    """The text of the README's ``## title...`` section (up to the next ``## `` heading)."""
    text = README.read_text(encoding="utf-8")
    parts = re.split(r"^## ", text, flags=re.M)
    found = [p for p in parts[1:] if p.startswith(title)]
    assert len(found) == 1, f"README.md has no single section starting with '## {title}'"
    return found[0]


def code_blocks(section: str, lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", section, flags=re.M | re.S)


def python_example(title: str) -> str:
    blocks = code_blocks(readme_section(title), "python")
    assert len(blocks) == 1, f"expected one python block in README section {title!r}, found {len(blocks)}"
    # the reader's own code goes where a bare `...` stands: record what the loop produced there
    return re.sub(r"^(\s*)\.\.\.(\s*#.*)?$", r"\1_readme_pulled.append(out)", blocks[0], flags=re.M)


def cli_lines() -> list[str]:
    (block,) = code_blocks(readme_section("Command line"), "sh")
    return [line for line in block.splitlines() if line.strip()]


# --------------------------------------------------------------------------------------------- generated media


def gray_frame(i: int, cut: int | None = None) -> np.ndarray:
    """A drifting gradient with a bright block (something for optical flow), uint8 ``(H, W)``; a new shot from ``cut``."""
    yy, xx = np.mgrid[0:H, 0:W]
    g = 50 + 120 * ((xx + 2 * i) % W) / W + 40 * yy / H
    g[10:26, 8 + i : 24 + i] = 225
    if cut is not None and i >= cut:
        g = 255 - g[:, ::-1]
    return g.astype(np.uint8)


def tinted(gray: np.ndarray) -> np.ndarray:
    """RGB uint8 with ``gray``'s L* and a warm tint (a* = 25, b* = 30): a coloured keyframe of that frame."""
    rgb = torch.from_numpy(np.repeat(gray[None], 3, axis=0).astype(np.float32) / 255.0)
    l = colour.rgb_to_lab(rgb)[:1]
    lab = torch.cat((l, torch.full_like(l, 25.0), torch.full_like(l, 30.0)))
    return (colour.lab_to_rgb(lab).clamp(0, 1).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def write_clip(path: Path, frames: list[np.ndarray], audio: bool = False) -> None:
    """H.264 yuv420p at 24 fps from gray ``(H, W)`` or RGB frames, optionally with a short AAC tone."""
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=Fraction(24))
        v.height, v.width = frames[0].shape[:2]
        v.pix_fmt = "yuv420p"
        a = c.add_stream("aac", rate=48000, layout="mono") if audio else None
        for f in frames:
            rgb = f if f.ndim == 3 else np.repeat(f[:, :, None], 3, axis=2)
            for p in v.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                c.mux(p)
        if a is not None:
            t = np.arange(48000 * len(frames) // 24) / 48000
            tone = (0.2 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            af = av.AudioFrame.from_ndarray(tone, format="fltp", layout="mono")
            af.sample_rate, af.pts = 48000, 0
            for p in [*a.encode(af), *a.encode(None)]:
                c.mux(p)
        for p in v.encode(None):
            c.mux(p)


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR) if rgb.ndim == 3 else rgb)


def gray_film(path: Path, n: int, key_frames: list[int], audio: bool = False) -> None:
    """A gray clip of ``n`` frames whose last keyframe starts its own shot, and ``key<N>.png`` for ``key_frames``."""
    cut = max(key_frames) - 1 if len(key_frames) > 1 else None
    frames = [gray_frame(i, cut) for i in range(n)]
    write_clip(path, frames, audio=audio)
    for k in key_frames:
        write_rgb(path.parent / f"key{k}.png", tinted(frames[k]))


def flickering_frames(n: int = FILM_FRAMES) -> list[np.ndarray]:
    """RGB frames of a warm-tinted drifting scene whose tint jumps from frame to frame (seeded)."""
    rng = np.random.default_rng(5)
    frames = []
    for i in range(n):
        rgb = torch.from_numpy(np.repeat(gray_frame(i)[None], 3, axis=0).astype(np.float32) / 255.0)
        l = colour.rgb_to_lab(rgb)[:1]
        a, b = 15.0 + rng.normal(0, 8), 20.0 + rng.normal(0, 8)
        lab = torch.cat((l, torch.full_like(l, a), torch.full_like(l, b)))
        frames.append((colour.lab_to_rgb(lab).permute(1, 2, 0).numpy() * 255 + 0.5).astype(np.uint8))
    return frames


def chroma_jumps(frames: list[np.ndarray]) -> float:
    """Mean frame-to-frame change of the mean Cb/Cr (what flicker is)."""
    means = np.array([cv2.cvtColor(f, cv2.COLOR_RGB2YCrCb)[..., 1:].reshape(-1, 2).mean(0) for f in frames])
    return float(np.abs(np.diff(means, axis=0)).mean())


def face_clip(path: Path, n: int = 4) -> None:
    """A slow pan over skimage's ``astronaut`` (NASA, public domain): one real face of about 100 pixels."""
    from skimage import data

    photo = data.astronaut()
    write_clip(path, [np.ascontiguousarray(photo[0:320, 96 + 4 * i : 416 + 4 * i]) for i in range(n)])


def decoded(path: Path) -> tuple[list[np.ndarray], list[str]]:
    """RGB frames of a video file and the types of its streams."""
    with av.open(str(path)) as c:
        kinds = [s.type for s in c.streams]
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return frames, kinds


def chroma_strength(rgb: np.ndarray) -> float:
    """Mean distance of Cb/Cr from neutral (0 for a gray picture)."""
    ycc = cv2.cvtColor(rgb, cv2.COLOR_RGB2YCrCb).astype(np.float32)
    return float(np.abs(ycc[..., 1:] - 128).mean())


def import_meso(shared: Path) -> None:
    registry.import_file("meso4-df", shared / "models" / "mesonet" / "Meso4_DF.h5")


# --------------------------------------------------------------------------------------------- Python hosts


def test_vapoursynth_example(tmp_path: Path, shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vs = pytest.importorskip("vapoursynth")
    if not hasattr(vs.core, "bs"):
        pytest.skip("the bestsource plugin (vapoursynth-bestsource) is not installed")
    monkeypatch.chdir(tmp_path)
    gray_film(tmp_path / "old_film.mp4", 122, [0, 120])
    import_meso(shared)
    namespace: dict[str, Any] = {}
    try:
        exec(compile(python_example("VapourSynth"), "README.md#vapoursynth", "exec"), namespace)
        out = namespace["clip"]
        assert vs.get_output(0) is not None
        src = vs.core.bs.VideoSource("old_film.mp4")
        assert out.num_frames == src.num_frames == 122
        assert out.format.color_family == vs.YUV
        for n in (0, 5):
            frame, original = out.get_frame(n), src.get_frame(n)
            props = frame.props
            assert props["ChromaflowFaces"] == 0  # no face in the clip, so nothing is drawn
            assert props["ChromaflowKeyframe"] == (1 if n == 0 else 0)
            assert props["ChromaflowModel"] == "base"
            assert np.array_equal(np.asarray(frame[0]), np.asarray(original[0]))  # luma untouched
            chroma = np.stack([np.asarray(frame[p]).astype(np.float32) - 128 for p in (1, 2)])
            assert np.abs(chroma).mean() > 4  # the warm keyframe's colour, not gray
    finally:
        vs.clear_outputs()


def test_python_example() -> None:
    namespace: dict[str, Any] = {}
    exec(compile(python_example("Python"), "README.md#python", "exec"), namespace)
    chroma = namespace["chroma"]
    assert tuple(chroma.shape) == (8, 2, 240, 427)
    assert int(chroma.min()) >= 64 and int(chroma.max()) <= 960, "10-bit limited-range chroma code values"


def test_pyav_example(tmp_path: Path, shared: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    gray_film(tmp_path / "in.mp4", 8, [0], audio=True)
    import_meso(shared)
    namespace: dict[str, Any] = {"_readme_pulled": []}
    exec(compile(python_example("PyAV"), "README.md#pyav", "exec"), namespace)

    frames, kinds = decoded(tmp_path / "out.mp4")
    assert kinds == ["video", "audio"] and len(frames) == 8
    assert chroma_strength(frames[3]) > 2
    steady, kinds = decoded(tmp_path / "steady.mp4")  # out.mp4 deflickered
    assert kinds == ["video", "audio"] and len(steady) == 8 and chroma_strength(steady[3]) > 2
    marked, kinds = decoded(tmp_path / "marked.mp4")
    assert kinds == ["video", "audio"] and len(marked) == 8
    assert marked[0].shape == (960, 1280, 3)  # FilterNode("scale=1280:-2") ran before the deepfake node
    pulled = namespace["_readme_pulled"]
    assert len(pulled) == 8, (
        "the push/pull loop must hand back every frame, the held-back ones after the flush"
    )
    assert [f.pts for f in pulled] == sorted(f.pts for f in pulled)
    assert chroma_strength(pulled[4].to_ndarray(format="rgb24")) > 4  # keyframe 0's warm tint carried


def test_opencv_example(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    inputs = [gray_frame(i) for i in range(4)]
    write_clip(tmp_path / "old.mp4", inputs)
    shown: list[np.ndarray] = []
    monkeypatch.setattr(cv2, "imshow", lambda name, img: shown.append(img))
    monkeypatch.setattr(cv2, "waitKey", lambda delay=0: -1)
    exec(compile(python_example("OpenCV"), "README.md#opencv", "exec"), {})
    assert len(shown) == len(inputs)
    for bgr, gray in zip(shown, inputs, strict=True):
        assert bgr.dtype == np.uint8 and bgr.shape == (H, W, 3)
        assert chroma_strength(bgr[:, :, ::-1]) > 1  # coloured
        assert np.abs(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY).astype(int) - gray).mean() < 6  # same brightness


# ------------------------------------------------------------------------------------------------ the CLI

SKIPPED = {
    "chromaflow models download": "downloads from the network (covered offline by tests/core/test_registry.py)",
    "chromaflow bench": "a benchmark on CUDA (covered on the CPU by tests/plugins/test_cli_bench.py)",
}
SUBSTITUTED = {  # README text -> text run, with the reason
    "--ref 240=key240.png": (
        f"--ref {FILM_FRAMES - 1}=key{FILM_FRAMES - 1}.png",
        "a 241-frame clip takes minutes on a 2-core CPU; only the keyframe's index changes",
    ),
}


def _split_words(line: str, env: dict[str, str], cwd: Path) -> list[str]:
    """The words bash makes of ``line`` (quotes, ``~``, globs and comments as in a shell)."""
    script = "words() { printf '%s\\0' \"$@\"; }; words " + line
    out = subprocess.run(["bash", "-c", script], env=env, cwd=cwd, capture_output=True, check=True).stdout
    return out.decode().split("\0")[:-1]


def _check_image(path: Path) -> np.ndarray:
    img = cv2.imread(str(path))
    assert img is not None, f"{path.name} was not written"
    assert chroma_strength(img[:, :, ::-1]) > 1
    return img


def _check_compare(cwd: Path, out: str) -> None:
    img = _check_image(cwd / "colour.jpg")
    side = cv2.imread(str(cwd / "colour_compare.jpg"))
    assert side is not None and side.shape[1] >= 2 * img.shape[1]


def _check_folder(cwd: Path, out: str) -> None:
    for name in ("a.png", "b.png"):
        _check_image(cwd / "out" / name)


def _check_hint(cwd: Path, out: str) -> None:
    from chromaflow.core.colorizer import Colorizer

    def blueness(bgr: np.ndarray) -> float:
        b, _, r = bgr[75:86, 115:126].reshape(-1, 3).astype(float).mean(axis=0)
        return float(b - r)

    hinted = _check_image(cwd / "colour.jpg")
    plain = Colorizer("base").colorize_bgr(cv2.imread(str(cwd / "old.jpg")))
    assert blueness(hinted) > max(10.0, blueness(plain) + 10), (
        "the #3060c0 hint at (120, 80) should turn it blue"
    )


def _check_film(cwd: Path, out: str) -> None:
    frames, kinds = decoded(cwd / "colour.mp4")
    assert kinds == ["video", "audio"] and len(frames) == FILM_FRAMES
    assert chroma_strength(frames[2]) > 1


def _check_film_keys(cwd: Path, out: str) -> None:
    frames, _ = decoded(cwd / "colour.mp4")
    assert len(frames) == FILM_FRAMES
    r, _, b = frames[3].reshape(-1, 3).astype(float).mean(axis=0)
    assert r > b + 8, "keyframe 0's warm tint should be carried to frame 3"


def _check_sequence(cwd: Path, out: str) -> None:
    with av.open(str(cwd / "colour.mkv")) as c:
        assert c.streams.video[0].average_rate == 24
        assert sum(1 for _ in c.decode(video=0)) == 6


def _check_pipe(cwd: Path, out: str) -> None:
    frames, _ = decoded(cwd / "out.mp4")
    assert len(frames) == FILM_FRAMES and chroma_strength(frames[1]) > 1


def _check_deflicker(cwd: Path, out: str) -> None:
    before, _ = decoded(cwd / "flickery.mp4")
    after, kinds = decoded(cwd / "steady.mp4")
    assert kinds == ["video"] and len(after) == len(before) == FILM_FRAMES
    assert chroma_jumps(after) < 0.5 * chroma_jumps(before)
    luma = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY).astype(int) for f in (before[4], after[4])]
    assert np.abs(luma[0] - luma[1]).mean() < 3  # the same picture, re-encoded


def _check_deepfake(cwd: Path, out: str) -> None:
    import json

    frames, _ = decoded(cwd / "marked.mp4")
    assert len(frames) == 4
    lines = [json.loads(x) for x in (cwd / "scores.jsonl").read_text().splitlines()]
    assert [x["frame"] for x in lines[:-1]] == [0, 1, 2, 3]
    assert lines[-1]["video"]["frames_with_faces"] == 4  # the astronaut's face, in every frame
    assert (cwd / "scores.vtt").read_text().startswith("WEBVTT")


def _check_list(cwd: Path, out: str) -> None:
    assert "base" in out and "meso4-df" in out


def _check_import(cwd: Path, out: str) -> None:
    assert registry.is_present("meso4-df")


def _check_info(cwd: Path, out: str) -> None:
    import chromaflow

    assert chromaflow.__version__ in out


CHECKS: dict[str, Callable[[Path, str], None]] = {  # a regex of the README line -> what it must produce
    r"image old\.jpg colour\.jpg --compare": _check_compare,
    r"image 'scans/\*\.png' out/": _check_folder,
    r"--hint 120,80,#3060c0": _check_hint,
    r"colorize film\.mp4 colour\.mp4\s+#": _check_film,
    r"colorize film\.mp4 colour\.mp4 --ref": _check_film_keys,
    r"colorize 'frames/%05d\.png'": _check_sequence,
    r"^ffmpeg .*\| chromaflow colorize - - \|": _check_pipe,
    r"chromaflow deflicker flickery\.mp4": _check_deflicker,
    r"chromaflow deepfake clip\.mp4": _check_deepfake,
    r"chromaflow models list": _check_list,
    r"chromaflow models import meso4-df": _check_import,
    r"chromaflow info": _check_info,
}


@pytest.fixture(scope="module")
def cli_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every input the CLI examples name, generated once."""
    d = tmp_path_factory.mktemp("readme-cli")
    from skimage import data

    camera = cv2.resize(data.camera(), (160, 120), interpolation=cv2.INTER_AREA)
    write_rgb(d / "old.jpg", camera)
    write_rgb(d / "scans" / "a.png", camera)
    write_rgb(d / "scans" / "b.png", camera[::-1])
    (d / "out").mkdir()
    gray_film(d / "film.mp4", FILM_FRAMES, [0, FILM_FRAMES - 1], audio=True)
    gray_film(d / "in.mp4", FILM_FRAMES, [0])
    for i in range(6):
        write_rgb(d / "frames" / f"{i:05d}.png", gray_frame(i))
    face_clip(d / "clip.mp4")
    write_clip(d / "flickery.mp4", flickering_frames())
    return d


@pytest.mark.parametrize("line", cli_lines(), ids=lambda s: s.split("#")[0].strip()[:60])
def test_cli_example(
    line: str, cli_folder: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for prefix, reason in SKIPPED.items():
        if line.startswith(prefix):
            pytest.skip(reason)
    checks = [check for pattern, check in CHECKS.items() if re.search(pattern, line)]
    assert len(checks) == 1, f"no single check for README line {line!r}: add one to CHECKS or SKIPPED"
    for old, (new, _reason) in SUBSTITUTED.items():
        line = line.replace(old, new)
    shared = Path(os.environ.get("CHROMAFLOW_SHARED", REPO.parent / "shared"))
    meso = shared / "models" / "mesonet" / "Meso4_DF.h5"
    if "deepfake" in line or "meso4-df" in line:
        if not meso.is_file():
            pytest.skip(f"MesoNet weights are not in the shared data folder {shared}")
        (cli_folder / "Downloads").mkdir(exist_ok=True)
        shutil.copyfile(meso, cli_folder / "Downloads" / "Meso4_DF.h5")
        if "deepfake" in line:
            import_meso(shared)
    env = {**os.environ, "HOME": str(cli_folder)}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    monkeypatch.chdir(cli_folder)
    monkeypatch.setenv("HOME", str(cli_folder))
    if line.startswith("chromaflow "):
        words = _split_words(line, env, cli_folder)
        assert cli_main(words[1:]) == 0
        out = capsys.readouterr().out
    else:  # a shell pipeline with other programs
        if shutil.which("ffmpeg") is None:
            pytest.skip("ffmpeg is not installed")
        (cli_folder / "out.mp4").unlink(missing_ok=True)
        run = subprocess.run(
            ["bash", "-o", "pipefail", "-c", line],
            env=env, cwd=cli_folder, stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert run.returncode == 0, run.stderr[-2000:]
        out = run.stdout
    checks[0](cli_folder, out)
