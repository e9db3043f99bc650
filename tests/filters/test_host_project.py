"""A studio project renders the same frames in every host: `chromaflow colorize --project`, `cf.colorize(clip,
project=...)` and `ColorizeNode(project=...)` (hints per frame and per shot, then a keyframe project)."""

import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth")

from chromaflow.core.errors import UsageError  # noqa: E402
from chromaflow.filters import vapoursynth as cf  # noqa: E402
from chromaflow.filters.pyav import ColorizeNode, run_nodes  # noqa: E402
from chromaflow.filters.pyav.frames import plane_view  # noqa: E402
from chromaflow.plugins.cli.main import main  # noqa: E402

from support.vs_synth import clip_from_rgb  # noqa: E402

W, H, N = 64, 48, 5


def _rgb(n: int) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    gray = 40 + 160 * (xx + yy) / (W + H) + 6 * n
    gray[10:24, 8 + 4 * n : 22 + 4 * n] = 230
    return np.repeat(gray[:, :, None], 3, axis=2).astype(np.uint8)


def _planes(clip: vs.VideoNode) -> list[list[np.ndarray]]:
    return [[np.asarray(f[p]).copy() for p in range(3)] for f in (clip.get_frame(n) for n in range(N))]


def _av_frames(planes: list[list[np.ndarray]]) -> list[av.VideoFrame]:
    frames = []
    for n, frame_planes in enumerate(planes):
        f = av.VideoFrame(W, H, "yuv420p")
        for p, plane in enumerate(frame_planes):
            plane_view(f, p)[:] = plane
        f.colorspace, f.color_range, f.pts, f.time_base = 1, 1, n, Fraction(1, 25)
        frames.append(f)
    return frames


def _write_lossless(path: Path, frames: list[av.VideoFrame]) -> None:
    with av.open(str(path), "w") as out:
        stream = out.add_stream("ffv1", rate=25)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.codec_context.colorspace, stream.codec_context.color_range = 1, 1
        for f in frames:
            out.mux(stream.encode(f))
        out.mux(stream.encode(None))


def _decoded(path: Path) -> list[list[np.ndarray]]:
    with av.open(str(path)) as container:
        return [[plane_view(f, p).copy() for p in range(3)] for f in container.decode(video=0)]


def _hinted_project(folder: Path) -> Path:
    doc = {
        "chromaflow_project": 1,
        "source": "clip.mkv",
        "model": "base",
        "smooth": 1,
        "frame_hints": {"3": [{"x": 50, "y": 40, "color": "#2040ff", "radius": 3}]},
        "shot_hints": [
            {"start": 0, "end": 3, "hints": [{"x": 12, "y": 14, "color": "#ff2000", "radius": 4}]}
        ],
    }
    path = folder / "hinted.json"
    path.write_text(json.dumps(doc))
    return path


def _keyed_project(folder: Path) -> Path:
    import cv2

    (folder / "keyed.refs").mkdir()
    key = _rgb(0).copy()
    key[..., 0] = np.clip(key[..., 0].astype(int) + 60, 0, 255)  # a warm colouring of frame 0
    cv2.imwrite(str(folder / "keyed.refs" / "key-000000.png"), key[..., ::-1])
    doc = {"chromaflow_project": 1, "model": "base", "smooth": 0, "transfer": "propagate",
           "keyframes": {"0": "keyed.refs/key-000000.png"}}  # fmt: skip
    path = folder / "keyed.json"
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize("make", [_hinted_project, _keyed_project])
def test_every_host_renders_a_project_to_the_same_frames(
    tmp_path: Path, make: Callable[[Path], Path]
) -> None:
    clip = clip_from_rgb([_rgb(n) for n in range(N)])
    source = _planes(clip)
    project = make(tmp_path)
    vs_planes = _planes(cf.colorize(clip, project=str(project), device="cpu"))
    node_out = run_nodes(_av_frames(source), ColorizeNode(project=project, device="cpu"))
    node_planes = [[plane_view(f, p).copy() for p in range(3)] for f in node_out]
    src_file, out_file = tmp_path / "clip.mkv", tmp_path / "out.mkv"
    _write_lossless(src_file, _av_frames(source))
    code = main(["colorize", str(src_file), str(out_file), "--project", str(project), "--codec", "ffv1",
                 "--device", "cpu", "--quiet"])  # fmt: skip
    assert code == 0
    cli_planes = _decoded(out_file)
    assert len(vs_planes) == len(node_planes) == len(cli_planes) == N
    for v, a, c, s in zip(vs_planes, node_planes, cli_planes, source, strict=True):
        assert np.array_equal(v[0], s[0]) and np.array_equal(c[0], s[0]), "luma untouched"
        for p in (1, 2):
            assert np.array_equal(v[p], a[p]) and np.array_equal(a[p], c[p])
    # the project changed the colour: the hinted or keyed frames are not what the model alone gives
    plain = _planes(cf.colorize(clip, model="base", smooth=1 if make is _hinted_project else 0, device="cpu"))
    assert any(not np.array_equal(v[1], p[1]) for v, p in zip(vs_planes, plain, strict=True))


def test_hosts_refuse_colour_options_beside_a_project(tmp_path: Path) -> None:
    clip = clip_from_rgb([_rgb(n) for n in range(N)])
    project = _hinted_project(tmp_path)
    with pytest.raises(vs.Error, match=r"chromaflow\.colorize: .*leave out size"):
        cf.colorize(clip, project=str(project), size=64)
    with pytest.raises(vs.Error, match=r"chromaflow\.colorize: project= brings its own hints"):
        cf.colorize(clip, project=str(project), hints=["1,1,#ff0000"])
    with pytest.raises(
        UsageError, match="ColorizeNode: project= sets the colour options itself; leave out smooth"
    ):
        ColorizeNode(project=project, smooth=0)
    short = clip_from_rgb([_rgb(n) for n in range(2)])
    with pytest.raises(vs.Error, match="hints for frame 3, but the input has 2 frames"):
        cf.colorize(short, project=str(project))


def test_cli_refuses_colour_flags_beside_a_project_and_bad_projects(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    clip = clip_from_rgb([_rgb(n) for n in range(N)])
    src = tmp_path / "clip.mkv"
    _write_lossless(src, _av_frames(_planes(clip)))
    project = _hinted_project(tmp_path)
    out = tmp_path / "out.mkv"
    assert main(["colorize", str(src), str(out), "--project", str(project), "--hint", "1,1,#ff0000"]) == 2
    assert "--project sets the colour options itself; leave out --hint" in capsys.readouterr().err
    (tmp_path / "v2.json").write_text(json.dumps({"chromaflow_project": 2}))
    assert main(["colorize", str(src), str(out), "--project", str(tmp_path / "v2.json")]) == 2
    assert "project version 2 is not known" in capsys.readouterr().err
    assert main(["colorize", str(src), str(out), "--project", str(tmp_path / "absent.json")]) == 3
    assert not out.exists()
