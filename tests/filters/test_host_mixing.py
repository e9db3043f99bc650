"""Mixed models and the model's own side in the VapourSynth functions and the PyAV node.

`base` runs with its bundled weights; `eccv16` with a narrow random-weight stand-in in the test's model cache (the
official file cannot be downloaded here; support/model_cache.py).
"""

from fractions import Fraction

import numpy as np
import pytest

vs = pytest.importorskip("vapoursynth")

from chromaflow.filters import vapoursynth as cf  # noqa: E402
from chromaflow.filters.pyav import ColorizeNode, run_nodes  # noqa: E402
from chromaflow.filters.pyav.frames import plane_view  # noqa: E402

from support.model_cache import install_stand_in  # noqa: E402
from support.vs_synth import clip_from_rgb  # noqa: E402

W, H, N = 64, 48, 3


def _rgb(n: int) -> np.ndarray:
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    gray = 40 + 160 * (xx + yy) / (W + H) + 10 * n
    gray[10:24, 8 + 4 * n : 22 + 4 * n] = 230
    return np.repeat(gray[:, :, None], 3, axis=2).astype(np.uint8)


@pytest.fixture
def clip(monkeypatch: pytest.MonkeyPatch) -> vs.VideoNode:
    install_stand_in(monkeypatch, "eccv16")
    return clip_from_rgb([_rgb(n) for n in range(N)])


def _planes(clip: vs.VideoNode) -> list[list[np.ndarray]]:
    return [[np.asarray(f[p]).copy() for p in range(3)] for f in (clip.get_frame(n) for n in range(N))]


def test_vapoursynth_tuple_and_plus_forms_mix_the_same_way(clip: vs.VideoNode) -> None:
    alone = _planes(cf.colorize(clip, model="base", render_factor=2))
    first = cf.colorize(clip, model=("base", "eccv16"), mix=1.0, render_factor=2)
    assert first.get_frame(0).props["ChromaflowModel"] == "base+eccv16"
    for a, f in zip(alone, _planes(first), strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(a, f, strict=True)), "mix=1: the first model, exactly"
    tuple_form = _planes(cf.colorize(clip, model=("base", "eccv16"), mix_rule="saturated", size=32))
    plus_form = _planes(cf.colorize(clip, model="base+eccv16", mix_rule="saturated", size=32))
    for t, p, a in zip(tuple_form, plus_form, alone, strict=True):
        assert all(np.array_equal(x, y) for x, y in zip(t, p, strict=True))
        assert np.array_equal(t[0], a[0]), "luma bit for bit"
    assert any(not np.array_equal(t[1], a[1]) for t, a in zip(tuple_form, alone, strict=True))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"model": ("base", "eccv16", "base")}, r"chromaflow\.colorize: .*a mix takes two"),
        ({"model": ("base", "meso4-df")}, r"chromaflow\.colorize: .*is a classifier, not a colorizer"),
        ({"model": "base", "mix": 0.5}, r"chromaflow\.colorize: .*combine two models"),
        ({"model": "base", "size": 64, "render_factor": 4}, r"chromaflow\.colorize: .*give one of them"),
    ],
)
def test_vapoursynth_refuses_bad_mixes_naming_the_function(
    clip: vs.VideoNode, options: dict, message: str
) -> None:
    with pytest.raises(vs.Error, match=message):
        cf.colorize(clip, **options)


def _av_frames(clip: vs.VideoNode) -> list:
    import av

    frames = []
    for n, planes in enumerate(_planes(clip)):
        f = av.VideoFrame(W, H, "yuv420p")
        for p, plane in enumerate(planes):
            plane_view(f, p)[:] = plane
        f.colorspace, f.color_range, f.pts, f.time_base = 1, 1, n, Fraction(1, 25)
        frames.append(f)
    return frames


def test_pyav_node_takes_a_mix_and_the_model_side(clip: vs.VideoNode) -> None:
    frames = _av_frames(clip)
    node = ColorizeNode(model=("base", "eccv16"), mix=0.0, smooth=0, device="cpu", size=32)
    assert node.colorizer is not None and node.colorizer.sizes == (32, 32)
    mixed = run_nodes(_av_frames(clip), node)
    alone = run_nodes(_av_frames(clip), ColorizeNode(model="eccv16", smooth=0, device="cpu", render_factor=2))
    for m, a, src in zip(mixed, alone, frames, strict=True):
        assert np.array_equal(plane_view(m, 0), plane_view(src, 0))
        assert all(np.array_equal(plane_view(m, p), plane_view(a, p)) for p in (1, 2)), "mix=0: the second"
    own = ColorizeNode(model="base+eccv16", device="cpu")
    assert own.colorizer is not None and own.colorizer.sizes == (256, 256), "each model's own side"
