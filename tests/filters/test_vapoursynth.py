"""VapourSynth filters: formats, luma kept bit for bit, colour properties, errors, threads, vspipe, BestSource.

The colour net is chromaflow's own ``base`` architecture, narrow (width 8) with seeded random weights, at a
32 x 32 model input: real code paths, tiny cost. Clips are small BlankClips with gradients and a moving square
written into their planes.
"""

import importlib.util
import os
import random
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import torch

vs = pytest.importorskip("vapoursynth")

from chromaflow.core.colorizer import Colorizer, ycbcr_chroma, ycbcr_lightness  # noqa: E402
from chromaflow.core.colour import (  # noqa: E402
    YCbCrFormat,
    downsample_chroma,
    lightness,
    rgb_to_ycbcr,
)
from chromaflow.core.hints import parse_hint  # noqa: E402
from chromaflow.core.nets.base import BaseColorNet  # noqa: E402
from chromaflow.core.video import DEFAULT_SMOOTH_RADIUS, VideoColorizer  # noqa: E402
from chromaflow.filters import vapoursynth as cf  # noqa: E402
from chromaflow.filters.vapoursynth.colour import ClipLayout, check_clip, describe  # noqa: E402
from chromaflow.filters.vapoursynth.overlay import paint_overlay  # noqa: E402

from support.vs_synth import clip_from_rgb  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent
core = vs.core
W, H, N = 64, 48, 4
SIZE = 32


@pytest.fixture(scope="module")
def net() -> BaseColorNet:
    torch.manual_seed(7)
    return BaseColorNet(width=8, temperature=0.03).eval()  # a low temperature: clearly coloured output


def _content(shape: tuple[int, int], n: int, plane: int) -> np.ndarray:
    """A unit-range pattern: diagonal gradient plus a bright square moving right by 3 px per frame."""
    h, w = shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    v = 0.15 + 0.6 * (xx + 2 * yy) / (w + 2 * h) + 0.05 * plane
    s = max(2, h // 4)
    x0 = (3 * n) % max(1, w - s)
    v[s : 2 * s, x0 : x0 + s] = 0.95 - 0.1 * plane
    return v


def make_clip(fmt: int, width: int = W, height: int = H, length: int = N, **props: int) -> vs.VideoNode:
    """A clip of format ``fmt`` with real content in every plane (codes in each format's nominal range)."""
    clip = core.std.BlankClip(format=fmt, width=width, height=height, length=length)
    info = clip.format

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        g = f.copy()
        for p in range(info.num_planes):
            a = np.asarray(g[p])
            v = _content(a.shape, n, p)
            if info.sample_type == vs.FLOAT:
                a[...] = v - 0.5 if (info.color_family == vs.YUV and p > 0) else v
            else:
                a[...] = np.round(v * ((1 << info.bits_per_sample) - 1)).astype(a.dtype)
        return g

    clip = core.std.ModifyFrame(clip, clip, fill)
    return core.std.SetFrameProps(clip, **props) if props else clip


def planes(frame: vs.VideoFrame) -> list[np.ndarray]:
    return [np.array(frame[p]) for p in range(frame.format.num_planes)]


def render(clip: vs.VideoNode) -> list[list[np.ndarray]]:
    return [planes(clip.get_frame(n)) for n in range(clip.num_frames)]


def reference_chroma(
    net: BaseColorNet,
    src: vs.VideoNode,
    n: int,
    fmt: YCbCrFormat,
    factors: tuple[int, int],
    siting: str,
    hints: object = None,
    smooth: int = DEFAULT_SMOOTH_RADIUS,
) -> np.ndarray:
    """What the filter must write for frame ``n``: the core engine run directly on the clip's raw luma planes.

    L* from the Y' code values (``fmt``), ab from :class:`VideoColorizer` with the same options, chroma code values
    from :func:`ycbcr_chroma` at ``siting``: the filter may only read planes and properties and write the result.
    """
    ls = [ycbcr_lightness(np.asarray(src.get_frame(k)[0]), fmt).numpy() for k in range(src.num_frames)]
    colorizer = Colorizer(net, device="cpu", size=SIZE)
    engine = VideoColorizer(len(ls), lambda k: ls[k], colorizer=colorizer, hints=hints, smooth_radius=smooth)  # type: ignore[arg-type]
    l_star = torch.from_numpy(ls[n])[None, None]
    codes = ycbcr_chroma(l_star, torch.from_numpy(engine.ab(n))[None], fmt, factors, siting)[0]  # type: ignore[arg-type]
    return codes.numpy().astype(np.float64)


# ------------------------------------------------------------------------------------------------ formats

YUV_FORMATS = [
    vs.YUV420P8,
    vs.YUV422P8,
    vs.YUV444P8,
    vs.YUV420P10,
    vs.YUV422P12,
    vs.YUV444P16,
    vs.YUV420PH,
    vs.YUV444PH,
    vs.YUV420PS,
    vs.YUV422PS,
]


@pytest.mark.parametrize("fmt", YUV_FORMATS, ids=lambda f: core.get_video_format(f).name)
def test_yuv_stays_yuv_with_luma_bit_for_bit(net: BaseColorNet, fmt: int) -> None:
    src = make_clip(fmt)
    out = cf.colorize(src, model=net, size=SIZE)
    assert out.format.id == src.format.id and (out.width, out.height, out.num_frames) == (W, H, N)
    info = src.format
    for n in (0, N - 1):
        fin, fout = src.get_frame(n), out.get_frame(n)
        assert np.array_equal(np.asarray(fin[0]), np.asarray(fout[0])), "luma changed"
        for p in (1, 2):
            chroma = np.asarray(fout[p]).astype(np.float64)
            assert chroma.shape == np.asarray(fin[p]).shape
            assert not np.array_equal(chroma, np.asarray(fin[p])), "chroma was not rewritten"
            if info.sample_type == vs.FLOAT:
                assert np.all(np.abs(chroma) <= 0.5 + 1e-3)
            else:
                step = 1 << (info.bits_per_sample - 8)
                assert chroma.min() >= 16 * step - 1 and chroma.max() <= 240 * step + 1  # limited range


@pytest.mark.parametrize(
    ("fmt", "props", "matrix", "full", "siting"),
    [
        (vs.YUV420P8, {}, "601", False, "left"),  # SD defaults
        (vs.YUV420P8, {"_Matrix": 1, "_ChromaLocation": 2}, "709", False, "topleft"),
        (vs.YUV422P10, {"_Matrix": 9, "_Range": 1, "_ChromaLocation": 1}, "2020", True, "center"),
        (vs.YUV420PS, {"_Matrix": 5, "_ChromaLocation": 5}, "601", True, "bottom"),
    ],
)
def test_chroma_is_the_engines_at_the_frames_siting_and_coding(
    net: BaseColorNet, fmt: int, props: dict, matrix: str, full: bool, siting: str
) -> None:
    src = make_clip(fmt, **props)
    out = cf.colorize(src, model=net, size=SIZE)
    info = src.format
    coding = YCbCrFormat(matrix, full, None if info.sample_type == vs.FLOAT else info.bits_per_sample)  # type: ignore[arg-type]
    factors = (1 << info.subsampling_h, 1 << info.subsampling_w)
    frame = out.get_frame(1)
    expected = reference_chroma(net, src, 1, coding, factors, siting)
    got = np.stack([np.asarray(frame[1]), np.asarray(frame[2])]).astype(np.float64)
    np.testing.assert_allclose(got, expected, atol=1e-5 if coding.bits is None else 0)


def test_subsampled_chroma_is_the_downsampled_full_chroma(net: BaseColorNet) -> None:
    y444 = make_clip(vs.YUV444P8)
    c444 = planes(cf.colorize(y444, model=net, size=SIZE).get_frame(2))
    y420 = core.resize.Point(y444, format=vs.YUV420P8)  # same luma plane, 4:2:0 chroma
    c420 = planes(cf.colorize(y420, model=net, size=SIZE).get_frame(2))
    assert np.array_equal(c444[0], c420[0])
    for p in (1, 2):
        down = downsample_chroma(torch.from_numpy(c444[p].astype(np.float32))[None], (2, 2), "left")[
            0
        ].numpy()
        assert np.abs(down - c420[p].astype(np.float32)).max() <= 1.0  # one 8-bit step: two roundings


@pytest.mark.parametrize(
    ("gray", "yuv"),
    [(vs.GRAY8, vs.YUV444P8), (vs.GRAY10, vs.YUV444P10), (vs.GRAYH, vs.YUV444PH), (vs.GRAYS, vs.YUV444PS)],
)
def test_gray_becomes_yuv444_of_its_depth(net: BaseColorNet, gray: int, yuv: int) -> None:
    src = make_clip(gray)
    out = cf.colorize(src, model=net, size=SIZE)
    assert out.format.id == yuv
    # Untagged gray is full range (core/colour/tags.py): the same luma plane as full-range Y'CbCr, chroma ignored.
    as_yuv = cf.colorize(make_clip(yuv, _Range=1), model=net, size=SIZE)
    for n in (0, 3):
        got, ref = planes(out.get_frame(n)), planes(as_yuv.get_frame(n))
        assert np.array_equal(got[0], np.asarray(src.get_frame(n)[0]))
        for p in (1, 2):
            np.testing.assert_array_equal(got[p], ref[p])
    assert out.get_frame(0).props["_ChromaLocation"] == 0


def test_gray_out_format_choices(net: BaseColorNet) -> None:
    src = make_clip(vs.GRAY8)
    out420 = cf.colorize(src, model=net, size=SIZE, out_format=vs.YUV420P8)
    f = out420.get_frame(1)
    assert out420.format.id == vs.YUV420P8 and np.asarray(f[1]).shape == (H // 2, W // 2)
    assert np.array_equal(np.asarray(f[0]), np.asarray(src.get_frame(1)[0]))
    rgb = cf.colorize(src, model=net, size=SIZE, out_format=vs.RGB48)
    fr = rgb.get_frame(1)
    assert rgb.format.id == vs.RGB48 and fr.props["_Matrix"] == 0
    out = torch.from_numpy(np.stack(planes(fr)).astype(np.float32) / 65535.0)
    gray = (
        torch.from_numpy(np.asarray(src.get_frame(1)[0]).astype(np.float32)) / 255
    )  # untagged gray: full range
    # The colour keeps the gray picture's lightness (the colorizer's contract), to 16-bit rounding.
    lstar_in = lightness(gray.clamp(0, 1).expand(3, -1, -1))
    assert (lightness(out) - lstar_in).abs().max() < 0.05
    with pytest.raises(vs.Error, match=r"chromaflow\.colorize: cannot turn Gray8 into YUV420P10"):
        cf.colorize(src, model=net, out_format=vs.YUV420P10)


@pytest.mark.parametrize("fmt", [vs.RGB24, vs.RGB30, vs.RGB48, vs.RGBH, vs.RGBS])
def test_rgb_stays_rgb_and_keeps_lightness(net: BaseColorNet, fmt: int) -> None:
    src = make_clip(fmt)
    out = cf.colorize(src, model=net, size=SIZE)
    assert out.format.id == fmt
    info = src.format
    scale = 1.0 if info.sample_type == vs.FLOAT else float((1 << info.bits_per_sample) - 1)
    fin, fout = (
        torch.from_numpy(np.stack(planes(f)).astype(np.float32) / scale)
        for f in (src.get_frame(0), out.get_frame(0))
    )
    assert not torch.equal(fin, fout)
    tolerance = 0.8 if info.bits_per_sample <= 10 else 0.1  # L* units; rounding of the output samples
    assert (lightness(fout) - lightness(fin.clamp(0, 1))).abs().max() < tolerance


# ------------------------------------------------------------------------------------------------ properties


def test_colour_properties_defaults_and_pass_through(net: BaseColorNet) -> None:
    sd = cf.colorize(make_clip(vs.YUV420P8), model=net, size=SIZE).get_frame(0).props
    assert (sd["_Matrix"], sd["_Transfer"], sd["_Primaries"], sd["_ChromaLocation"]) == (6, 6, 6, 0)
    assert int(sd["_Range"]) == 0  # limited (H.273 numbering, VapourSynth R81)
    assert sd["ChromaflowModel"] == "BaseColorNet"
    given = {"_Matrix": 9, "_Transfer": 16, "_Primaries": 9, "_Range": 1, "_ChromaLocation": 2}
    p = cf.colorize(make_clip(vs.YUV420P10, **given), model=net, size=SIZE).get_frame(0).props
    assert {k: int(p[k]) for k in given} == given
    rgb = cf.colorize(make_clip(vs.RGB24), model=net, size=SIZE).get_frame(0).props
    assert (rgb["_Matrix"], rgb["_Transfer"], rgb["_Primaries"], int(rgb["_Range"])) == (0, 13, 1, 1)
    assert "_ChromaLocation" not in rgb


def test_matrix_default_follows_frame_size() -> None:
    def layout(w: int, h: int) -> ClipLayout:
        return ClipLayout(vs.YUV, 8, False, 1, 1, w, h)

    assert describe({}, layout(720, 576), "colorize", 0).matrix == 6
    assert describe({}, layout(1280, 720), "colorize", 0).matrix == 1
    assert describe({"_Matrix": 2}, layout(1920, 1080), "colorize", 0).matrix == 1
    d = describe({"_Matrix": 5}, layout(720, 576), "colorize", 0)
    assert (d.matrix, d.transfer, d.primaries, d.full_range) == (5, 6, 5, False)
    assert describe({}, ClipLayout(vs.YUV, 32, True, 0, 0, 8, 8), "colorize", 0).full_range


def test_full_range_property_changes_the_coding(net: BaseColorNet) -> None:
    limited = planes(cf.colorize(make_clip(vs.YUV444P8), model=net, size=SIZE).get_frame(0))
    full = planes(cf.colorize(make_clip(vs.YUV444P8, _Range=1), model=net, size=SIZE).get_frame(0))
    assert np.array_equal(limited[0], full[0])
    # Full-range chroma spans 255/224 of limited range around 128.
    spread_l = np.abs(limited[1].astype(float) - 128).max()
    spread_f = np.abs(full[1].astype(float) - 128).max()
    assert spread_f > spread_l


# ------------------------------------------------------------------------------------------------ errors


def test_errors_name_the_function_and_say_what_to_do(net: BaseColorNet) -> None:
    with pytest.raises(vs.Error, match=r"chromaflow\.colorize: the clip has a variable format"):
        cf.colorize(core.std.BlankClip(varformat=True), model=net)
    with pytest.raises(vs.Error, match=r"chromaflow\.colorize: the clip has a variable frame size"):
        cf.colorize(core.std.BlankClip(varsize=True), model=net)
    odd = core.query_video_format(vs.YUV, vs.INTEGER, 8, 3, 0)  # 4:1:0 style subsampling by 8
    with pytest.raises(vs.Error, match=r"chromaflow\.colorize: unsupported format .*core\.resize"):
        cf.colorize(core.std.BlankClip(format=odd.id, width=64, height=8), model=net)
    with pytest.raises(vs.Error, match=r"out_format applies to GRAY clips only"):
        cf.colorize(make_clip(vs.YUV420P8), model=net, out_format=vs.YUV444P8)
    with pytest.raises(vs.Error, match=r"num_streams must be at least 1"):
        cf.colorize(make_clip(vs.YUV420P8), model=net, num_streams=0)
    with pytest.raises(vs.Error, match=r"chromaflow\.colorize: .*#RRGGBB"):
        cf.colorize(make_clip(vs.YUV420P8), model=net, hints=["not a hint"])
    bad_matrix = cf.colorize(make_clip(vs.YUV420P8, _Matrix=7), model=net, size=SIZE)
    with pytest.raises(vs.Error, match=r"chromaflow\.colorize: frame 0 has _Matrix=7 \(SMPTE 240M\)"):
        bad_matrix.get_frame(0)


def test_absent_weights_point_to_the_download_command() -> None:
    # The autouse fixture gives every test an empty $CHROMAFLOW_HOME, so siggraph17's weights are absent.
    with pytest.raises(vs.Error, match=r"chromaflow\.colorize: .*chromaflow models download siggraph17"):
        cf.colorize(make_clip(vs.YUV420P8), model="siggraph17")


def test_check_clip_rejects_non_clips() -> None:
    with pytest.raises(vs.Error, match=r"chromaflow\.colorize: expected a video clip"):
        check_clip(np.zeros((4, 4)), "colorize")


# ------------------------------------------------------------------------------------------------ hints


def test_hints_reach_the_engine_for_their_frames(net: BaseColorNet) -> None:
    src = make_clip(vs.YUV444P8)
    plain_clip = cf.colorize(src, model=net, size=SIZE, smooth=0)
    hinted_clip = cf.colorize(src, model=net, size=SIZE, hints={0: ["10,30,#ff0000,6"]}, smooth=0)
    plain, hinted = planes(plain_clip.get_frame(0)), planes(hinted_clip.get_frame(0))
    assert np.array_equal(hinted[0], plain[0])
    assert not np.array_equal(hinted[2], plain[2])
    hints = {0: [parse_hint("10,30,#ff0000,6")]}
    expected = reference_chroma(net, src, 0, YCbCrFormat("601", False, 8), (1, 1), "left", hints, smooth=0)
    np.testing.assert_array_equal(np.stack(hinted[1:]), expected)
    # Frame 1 has no hints in the per-frame form (and no smoothing reads frame 0): it is the plain result.
    np.testing.assert_array_equal(planes(hinted_clip.get_frame(1))[2], planes(plain_clip.get_frame(1))[2])
    # A plain list applies to every frame.
    every = cf.colorize(src, model=net, size=SIZE, hints=["10,30,#ff0000,6"], smooth=0)
    assert not np.array_equal(planes(every.get_frame(1))[2], planes(plain_clip.get_frame(1))[2])


# ------------------------------------------------------------------------------------------------ threads


def test_parallel_random_order_requests_match_a_sequential_render(net: BaseColorNet) -> None:
    length = 12
    src = make_clip(vs.YUV420P8, length=length)
    before = core.num_threads
    try:
        core.num_threads = 1
        sequential = render(cf.colorize(src, model=net, size=SIZE))
        core.num_threads = 4
        clip = cf.colorize(src, model=net, size=SIZE, num_streams=2)
        order = list(range(length)) * 2
        random.Random(3).shuffle(order)
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda n: (n, planes(clip.get_frame(n))), order))
        futures = [clip.get_frame_async(n) for n in reversed(range(length))]
        asynchronous = [planes(f.result()) for f in futures]
    finally:
        core.num_threads = before
    for n, got in results:
        for a, b in zip(got, sequential[n], strict=True):
            np.testing.assert_array_equal(a, b)
    for n, got in zip(reversed(range(length)), asynchronous, strict=True):
        for a, b in zip(got, sequential[n], strict=True):
            np.testing.assert_array_equal(a, b)


def _pyav_frames(clip: vs.VideoNode) -> list:
    """The clip's YUV420P8 frames as PyAV frames with the same planes and tags (BT.601, limited, left siting)."""
    from fractions import Fraction

    import av

    from chromaflow.filters.pyav.frames import plane_view

    frames = []
    for n in range(clip.num_frames):
        f = av.VideoFrame(clip.width, clip.height, "yuv420p")
        for p, plane in enumerate(planes(clip.get_frame(n))):
            plane_view(f, p)[:] = plane
        f.colorspace, f.color_range, f.pts, f.time_base = 6, 1, n, Fraction(1, 25)
        frames.append(f)
    return frames


@pytest.mark.parametrize(
    "options",
    [
        {"smooth": 2, "batch": 4},  # the model alone: blocks of 4 (the last one partial), smoothing +-2
        {"smooth": 1, "batch": 3, "keys": (0, 6)},  # references carried by propagation, model as fallback
    ],
    ids=["model", "model+references"],
)
def test_same_options_give_the_same_chroma_in_vapoursynth_and_pyav(net: BaseColorNet, options: dict) -> None:
    """One engine for all hosts: VapourSynth (random access, 4 threads, shuffled requests) and the PyAV node
    (streaming, in order) write bit-identical chroma for the same clip and the same options."""
    from chromaflow.filters.pyav import ColorizeNode, run_nodes
    from chromaflow.filters.pyav.frames import plane_view

    length = 9
    src = make_clip(vs.YUV420P8, length=length)
    as_rgb = core.resize.Point(src, format=vs.RGB24, matrix_in_s="170m")
    refs = {k: np.stack(planes(as_rgb.get_frame(k)), axis=-1) for k in options.get("keys", ())}
    before = core.num_threads
    try:
        core.num_threads = 4
        clip = cf.colorize(
            src,
            model=net,
            size=SIZE,
            references=refs or None,
            smooth=options["smooth"],
            batch=options["batch"],
        )
        order = list(range(length))
        random.Random(5).shuffle(order)
        with ThreadPoolExecutor(max_workers=4) as pool:
            vs_out = dict(pool.map(lambda n: (n, clip.get_frame(n)), order))
        vs_planes = {n: planes(f) for n, f in vs_out.items()}
        vs_props = {n: dict(f.props) for n, f in vs_out.items()}
    finally:
        core.num_threads = before
    infos: dict[int, dict] = {}
    node = ColorizeNode(
        Colorizer(net, device="cpu", size=SIZE),
        references=refs or None,
        smooth=options["smooth"],
        batch_size=options["batch"],
        on_info=lambda n, info: infos.__setitem__(n, info),
    )
    out = run_nodes(_pyav_frames(src), node)
    assert len(out) == length
    for n, frame in enumerate(out):
        assert np.array_equal(plane_view(frame, 0), vs_planes[n][0])
        for p in (1, 2):
            np.testing.assert_array_equal(
                plane_view(frame, p), vs_planes[n][p], err_msg=f"frame {n} plane {p}"
            )
        assert infos[n]["keyframe_distance"] == vs_props[n]["ChromaflowKeyframeDistance"]
        assert infos[n]["is_keyframe"] == bool(vs_props[n]["ChromaflowKeyframe"])
    # The options matter: without references or smoothing the chroma differs.
    plain = planes(cf.colorize(src, model=net, size=SIZE, smooth=0, batch=options["batch"]).get_frame(3))
    assert not np.array_equal(plain[1], vs_planes[3][1])


# ------------------------------------------------------------------------------------------------ real runs


def _encode_mp4(path: Path, frames: int = 6, width: int = 96, height: int = 64) -> list[np.ndarray]:
    """A small colour H.264 file; returns the RGB frames written."""
    import av

    out: list[np.ndarray] = []
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        for n in range(frames):
            rgb = np.zeros((height, width, 3), np.uint8)
            rgb[..., 0] = np.linspace(30, 220, width, dtype=np.uint8)[None, :]
            rgb[..., 1] = np.linspace(200, 40, height, dtype=np.uint8)[:, None]
            rgb[16:40, 8 + 6 * n : 32 + 6 * n] = (250, 240, 30)
            out.append(rgb)
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return out


def _bestsource() -> None:
    if not hasattr(core, "bs"):
        pytest.skip(
            "the BestSource plugin is not installed (pip install vapoursynth-bestsource); it reads video files "
            "into VapourSynth"
        )


def test_bestsource_mp4_into_colorize(net: BaseColorNet, tmp_path: Path) -> None:
    _bestsource()
    video = tmp_path / "in.mp4"
    _encode_mp4(video)
    src = core.bs.VideoSource(str(video), cachemode=0)
    out = cf.colorize(src, model=net, size=SIZE)
    assert (out.format.id, out.num_frames) == (vs.YUV420P8, 6)
    for n in range(out.num_frames):
        assert np.array_equal(np.asarray(out.get_frame(n)[0]), np.asarray(src.get_frame(n)[0]))
    assert out.get_frame(0).props["_Matrix"] in (1, 6)


def test_vspipe_renders_the_example_into_an_encoder(tmp_path: Path) -> None:
    _bestsource()
    import av

    vspipe = VENV_BIN / "vspipe"
    if not vspipe.exists():
        vspipe = Path(shutil.which("vspipe") or "vspipe")
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"))
    # vspipe finds its Python through VapourSynth's per-user configuration; write it into a private folder.
    subprocess.run([str(VENV_BIN / "vapoursynth"), "config"], env=env, check=True, capture_output=True)
    video = tmp_path / "in.mp4"
    _encode_mp4(video)
    torch.manual_seed(11)
    weights = tmp_path / "tiny.pt"
    torch.save({"arch": "base", "state_dict": BaseColorNet(width=32).state_dict()}, weights)
    cmd = [str(vspipe), "-c", "y4m", "-a", f"input={video}", "-a", f"model={weights}", "-a", "size=32"]
    cmd += [str(REPO / "examples" / "colorize.vpy"), "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    encoded = tmp_path / "out.mp4"
    with av.open(proc.stdout, format="yuv4mpegpipe") as pipe, av.open(str(encoded), "w") as sink:
        stream_in = pipe.streams.video[0]
        stream_out = sink.add_stream(
            "libx264", rate=24, options={"qp": "0"}
        )  # lossless, so luma can be compared
        stream_out.width, stream_out.height, stream_out.pix_fmt = stream_in.width, stream_in.height, "yuv420p"
        for frame in pipe.decode(stream_in):
            for packet in stream_out.encode(frame):
                sink.mux(packet)
        for packet in stream_out.encode():
            sink.mux(packet)
    err = proc.stderr.read().decode() if proc.stderr else ""
    assert proc.wait() == 0, err
    with av.open(str(video)) as a, av.open(str(encoded)) as b:
        src = [f.to_ndarray(format="yuv420p") for f in a.decode(video=0)]
        got = [f.to_ndarray(format="yuv420p") for f in b.decode(video=0)]
    assert len(got) == len(src) == 6
    for s, g in zip(src, got, strict=True):
        assert np.array_equal(s[:64], g[:64])  # the Y plane (first H rows of the yuv420p array)
        assert not np.array_equal(s[64:], g[64:])  # chroma was rewritten


# ------------------------------------------------------------------------------------------------ keyframe transfer


def _colour_sequence(length: int = 6) -> tuple[vs.VideoNode, vs.VideoNode]:
    """(RGB24 colour clip, the same pictures as YUV444P8 BT.709)."""
    rgb = make_clip(vs.RGB24, length=length)
    return rgb, core.resize.Point(rgb, format=vs.YUV444P8, matrix_s="709")


def _rgb_array(frame: vs.VideoFrame) -> np.ndarray:
    return np.stack(planes(frame), axis=-1)


def test_transfer_carries_keyframe_colours_through_the_clip() -> None:
    rgb, yuv = _colour_sequence()
    gray = core.std.ShufflePlanes(yuv, 0, vs.GRAY)
    out = cf.transfer(gray, {0: _rgb_array(rgb.get_frame(0))}, mode="propagate")
    assert out.format.id == vs.YUV444P8
    for n in (0, 3):
        f = out.get_frame(n)
        assert np.array_equal(np.asarray(f[0]), np.asarray(yuv.get_frame(n)[0]))
        truth = planes(yuv.get_frame(n))
        err = max(np.abs(np.asarray(f[p]).astype(int) - truth[p].astype(int)).mean() for p in (1, 2))
        assert err < 3.0, f"frame {n}: chroma off by {err:.2f} codes on average"
        assert f.props["ChromaflowKeyframeDistance"] == n
        assert f.props["ChromaflowKeyframe"] == int(n == 0)
        assert 0.0 <= f.props["ChromaflowTransferConfidence"] <= 1.0
        assert f.props["ChromaflowSceneCut"] == 0
    # Neutral chroma would be far off: the check above can fail.
    assert np.abs(planes(yuv.get_frame(3))[1].astype(int) - 128).mean() > 3.0


def test_auto_transfer_reports_the_fused_confidence() -> None:
    rgb, yuv = _colour_sequence()
    gray = core.std.ShufflePlanes(yuv, 0, vs.GRAY)
    refs = {0: _rgb_array(rgb.get_frame(0))}
    fused, flow = cf.transfer(gray, refs, mode="auto"), cf.transfer(gray, refs, mode="flow")
    conf = [fused.get_frame(n).props["ChromaflowTransferConfidence"] for n in range(fused.num_frames)]
    old = [flow.get_frame(n).props["ChromaflowTransferConfidence"] for n in range(flow.num_frames)]
    assert all(0.0 <= c <= 1.0 for c in conf) and conf[0] == 1.0
    assert conf[1:] != old[1:]  # the fusion's confidence (the ImageNet encoder is on the test's model path)


def test_colorize_with_a_reference_clip_marked_by_properties(net: BaseColorNet) -> None:
    rgb, yuv = _colour_sequence()
    marked = core.std.SetFrameProps(rgb[0], ChromaflowKeyframe=1) + rgb[1:]
    out = cf.colorize(yuv, model=net, size=SIZE, references=marked, transfer="auto")
    f = out.get_frame(2)
    assert np.array_equal(np.asarray(f[0]), np.asarray(yuv.get_frame(2)[0]))
    assert f.props["ChromaflowKeyframeDistance"] == 2 and f.props["ChromaflowModel"] == "BaseColorNet"
    listed = cf.colorize(yuv, model=net, size=SIZE, references=rgb, keyframes=[0], transfer="auto")
    np.testing.assert_array_equal(planes(listed.get_frame(2))[1], planes(f)[1])


def test_reference_errors_say_what_to_do(net: BaseColorNet) -> None:
    rgb, yuv = _colour_sequence()
    small = np.zeros((H // 2, W // 2, 3), np.uint8)
    with pytest.raises(
        vs.Error, match=r"chromaflow\.transfer: the reference for frame 0 is 32x24 .*transfer='knn'"
    ):
        cf.transfer(yuv, {0: small})
    cf.transfer(yuv, {0: small}, mode="knn")  # other content of any size is fine for knn
    with pytest.raises(vs.Error, match=r"chromaflow\.transfer: no frame of the reference clip is marked"):
        cf.transfer(yuv, rgb)
    with pytest.raises(vs.Error, match=r"chromaflow\.colorize: give a model, references, or both"):
        cf.colorize(yuv, model=None)
    with pytest.raises(vs.Error, match=r"chromaflow\.transfer: a reference is given for frame 9"):
        cf.transfer(yuv, {9: small})
    with pytest.raises(vs.Error, match=r"chromaflow\.transfer: .*missing\.png does not exist"):
        cf.transfer(yuv, {0: "missing.png"})
    with pytest.raises(vs.Error, match=r"chromaflow\.transfer: unknown transfer mode 'magic'"):
        cf.transfer(yuv, {0: small}, mode="magic")


# ------------------------------------------------------------------------------------------------ deepfake


def _face_clip(shared: Path, fmt: int, length: int = 3) -> tuple[vs.VideoNode, np.ndarray]:
    """A clip showing one of MesoNet's test faces on every frame (converted to ``fmt``), and the RGB image."""
    import cv2

    bgr = cv2.imread(str(shared / "data/deepfake-dev/mesonet-test-images/df/df00204.jpg"))
    rgb = np.ascontiguousarray(cv2.resize(bgr, (256, 256), interpolation=cv2.INTER_AREA)[:, :, ::-1])
    clip = core.std.BlankClip(format=vs.RGB24, width=256, height=256, length=length)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        g = f.copy()
        for p in range(3):
            np.asarray(g[p])[...] = rgb[:, :, p]
        return g

    clip = core.std.ModifyFrame(clip, clip, fill)
    if fmt != vs.RGB24:
        clip = core.resize.Point(clip, format=fmt, matrix_s="709")
    return clip, rgb


@pytest.fixture(scope="module")
def meso4(shared: Path) -> Path:
    path = shared / "models/mesonet/Meso4_DF.h5"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return path


@pytest.mark.parametrize("fmt", [vs.RGB24, vs.YUV420P8])
def test_deepfake_properties_match_the_scorer(shared: Path, meso4: Path, fmt: int) -> None:
    from chromaflow.core.deepfake import DeepfakeScorer

    clip, _ = _face_clip(shared, fmt)
    out = cf.deepfake(clip, overlay=False, classifier_path=meso4)
    # The scorer run directly on the frames the filter sees (decoded to RGB the same way).
    scorer = DeepfakeScorer("haar", "meso4-df", classifier_path=meso4)
    as_rgb = clip if fmt == vs.RGB24 else core.resize.Point(clip, format=vs.RGB24, matrix_in_s="709")
    frames = [_rgb_array(as_rgb.get_frame(n)) for n in range(3)]
    expected = scorer.score_frames(frames)
    for n in (2, 0, 1):  # out of order: tracks and smoothing still run in frame order
        props = out.get_frame(n).props
        assert props["ChromaflowFaces"] == len(expected[n].faces) == 1
        assert props["ChromaflowDeepfakeScore"] == pytest.approx(expected[n].score, abs=0.03)
        box = list(props["ChromaflowFaceBoxes"])
        assert len(box) == 4 and np.allclose(box, expected[n].faces[0].box, atol=6)
        assert props["ChromaflowFaceTracks"] == 1  # VapourSynth reads a one-element array back as a scalar
        assert props["ChromaflowDeepfakeModel"] == "meso4-df" and props["ChromaflowFaceDetector"] == "haar"
        assert np.array_equal(np.asarray(out.get_frame(n)[0]), np.asarray(clip.get_frame(n)[0]))


def test_deepfake_overlay_changes_only_drawn_pixels(shared: Path, meso4: Path) -> None:
    clip, _ = _face_clip(shared, vs.YUV420P8, length=2)
    blank = core.std.BlankClip(clip, length=1, color=[60, 128, 128])
    both = clip + blank  # a frame without faces at the end
    out = cf.deepfake(both, classifier_path=meso4)
    f, src = out.get_frame(0), both.get_frame(0)
    box = [round(v) for v in f.props["ChromaflowFaceBoxes"]]
    y_out, y_in = np.asarray(f[0]), np.asarray(src[0])
    changed = np.argwhere(y_out != y_in)
    assert len(changed) > 100, "no overlay was drawn"
    caption = (changed[:, 0] >= y_out.shape[0] - 16) & (changed[:, 1] >= y_out.shape[1] // 2)
    assert caption.any(), "the classifier's name is written in the bottom-right corner"
    changed = changed[~caption]
    # Changes stay around the box (its outline, label above, score bar below).
    assert changed[:, 1].min() >= box[0] - 4 and changed[:, 1].max() <= box[2] + 4
    inside = y_out[box[1] + 12 : box[3] - 12, box[0] + 12 : box[2] - 12]
    assert np.array_equal(inside, y_in[box[1] + 12 : box[3] - 12, box[0] + 12 : box[2] - 12])
    last = out.get_frame(2)
    assert last.props["ChromaflowFaces"] == 0 and "ChromaflowDeepfakeScore" not in last.props
    for p in range(3):
        assert np.array_equal(np.asarray(last[p]), np.asarray(both.get_frame(2)[p]))


_DEEPFAKE_PROPS = ("Faces", "DeepfakeScore", "FaceBoxes", "FaceScores", "FaceRawScores", "FaceTracks")


def _deepfake_state(frame: vs.VideoFrame) -> tuple[list[np.ndarray], dict[str, object]]:
    props = {k: frame.props.get("Chromaflow" + k) for k in _DEEPFAKE_PROPS}
    return planes(frame), props


def test_deepfake_parallel_random_order_matches_a_sequential_render(shared: Path, meso4: Path) -> None:
    """Faces are analysed on several threads in any order; tracks and EMA smoothing still follow frame order."""
    spec = importlib.util.spec_from_file_location("moving_clip", REPO / "tests/core/test_tracking.py")
    assert spec is not None and spec.loader is not None
    tracking = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tracking)
    src = clip_from_rgb(tracking.moving_face_clip(shared, frames=8), vs.YUV420P8)
    before = core.num_threads
    try:
        core.num_threads = 1
        seq_clip = cf.deepfake(src, classifier_path=meso4)
        sequential = [_deepfake_state(seq_clip.get_frame(n)) for n in range(src.num_frames)]
        core.num_threads = 4
        clip = cf.deepfake(src, classifier_path=meso4)
        order = list(range(src.num_frames)) * 2
        random.Random(11).shuffle(order)
        with ThreadPoolExecutor(max_workers=6) as pool:
            results = list(pool.map(lambda n: (n, _deepfake_state(clip.get_frame(n))), order))
    finally:
        core.num_threads = before
    # the test can fail: smoothing makes a frame's score depend on the frames before it
    assert any(s[1]["FaceScores"] != s[1]["FaceRawScores"] for s in sequential[1:])
    assert all(s[1]["Faces"] == 1 for s in sequential)
    for n, (got_planes, got_props) in results:
        assert got_props == sequential[n][1], f"frame {n}"
        for a, b in zip(got_planes, sequential[n][0], strict=True):
            np.testing.assert_array_equal(a, b)


def test_deepfake_refuses_an_unsupported_matrix(shared: Path, meso4: Path) -> None:
    clip, _ = _face_clip(shared, vs.YUV420P8, length=1)
    out = cf.deepfake(core.std.SetFrameProps(clip, _Matrix=7), classifier_path=meso4)
    with pytest.raises(vs.Error, match=r"chromaflow\.deepfake: frame 0 has _Matrix=7"):
        out.get_frame(0)


@pytest.mark.parametrize(("fmt", "siting"), [(vs.YUV420P8, 0), (vs.YUV422P10, 1), (vs.RGB24, 0)])
def test_overlay_tiles_write_what_a_whole_frame_conversion_gives(fmt: int, siting: int) -> None:
    """The overlay is converted tile by tile; written values equal a conversion of the whole frame."""
    h, w = 150, 206  # not multiples of the tile: the last tiles end at the frame's edge
    clip = core.std.BlankClip(format=fmt, width=w, height=h, length=1)
    frame = clip.get_frame(0)
    layout = check_clip(clip, "deepfake")
    desc = describe({"_Matrix": 1, "_ChromaLocation": siting}, layout, "deepfake", 0)
    rng = np.random.default_rng(4)
    rgb8 = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    drawn = rgb8.copy()
    drawn[10:12, 5:190] = (255, 40, 40)  # a box outline crossing several tiles
    drawn[10:140, 188:190] = (255, 40, 40)
    drawn[139:150, 150:206] = rng.integers(0, 256, (11, 56, 3), dtype=np.uint8)  # a label in the corner
    fout = frame.copy()
    paint_overlay(fout, rgb8, drawn, layout, desc)
    changed = (drawn != rgb8).any(axis=2)
    unit = torch.from_numpy(drawn).permute(2, 0, 1).to(torch.float32) / 255.0
    if layout.family == vs.RGB:
        expected = [unit[p] * 255 for p in range(3)]
        masks = [changed] * 3
    else:
        ycc = rgb_to_ycbcr(unit, desc.ycbcr(layout))
        chroma = downsample_chroma(ycc[1:3], layout.factors, desc.siting)
        fh, fw = layout.factors
        blocks = (
            torch.nn.functional.max_pool2d(
                torch.from_numpy(changed)[None, None].float(), (fh, fw), stride=(fh, fw), ceil_mode=True
            )[0, 0].numpy()
            > 0
        )
        expected, masks = [ycc[0], chroma[0], chroma[1]], [changed, blocks, blocks]
    for p in range(3):
        got, before = np.asarray(fout[p]), np.asarray(frame[p])
        want = expected[p].round().clamp(0, layout.peak).numpy()
        np.testing.assert_array_equal(got[masks[p]], want[masks[p]])
        np.testing.assert_array_equal(got[~masks[p]], before[~masks[p]])


def test_deepfake_errors() -> None:
    clip = make_clip(vs.YUV420P8)
    with pytest.raises(vs.Error, match=r"chromaflow\.deepfake: .*chromaflow models download meso4-df"):
        cf.deepfake(clip)  # the test's empty model cache has no MesoNet weights
    with pytest.raises(vs.Error, match=r"chromaflow\.deepfake: unknown face detector 'eyes'"):
        cf.deepfake(clip, detector="eyes")
    with pytest.raises(
        vs.Error, match=r"chromaflow\.deepfake: min_track must be a whole number of frames >= 1"
    ):
        cf.deepfake(clip, min_track=0)
    with pytest.raises(vs.Error, match=r"chromaflow\.deepfake: the clip has a variable format"):
        cf.deepfake(core.std.BlankClip(varformat=True))
