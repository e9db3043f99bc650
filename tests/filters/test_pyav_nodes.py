"""PyAV frame nodes: push/pull/flush, luma kept bit for bit, timing kept, chaining with av.filter.Graph."""

from fractions import Fraction

import av
import av.filter
import numpy as np
import pytest
import torch

from chromaflow.core.colorizer import Colorizer
from chromaflow.core.colour import YCbCrFormat
from chromaflow.core.errors import InputError, UsageError
from chromaflow.core.nets.base import BaseColorNet
from chromaflow.filters.opencv import NodeRunner
from chromaflow.filters.pyav import ColorizeNode, DeepfakeNode, FilterNode, GraphNode, NodeChain, run_nodes
from chromaflow.filters.pyav.frames import plane_view

from support.pyav_synth import synth_rgb

TB = Fraction(1, 30)


@pytest.fixture(scope="module")
def colorizer() -> Colorizer:
    """A tiny random-weight colour net (the real default model is trained elsewhere)."""
    torch.manual_seed(0)
    return Colorizer(BaseColorNet(width=8).eval(), device="cpu", size=32)


def make_frames(n: int, fmt: str, width: int = 64, height: int = 48, step: int = 3) -> list[av.VideoFrame]:
    frames = []
    for i in range(n):
        f = av.VideoFrame.from_ndarray(synth_rgb(width, height, i), format="rgb24")
        f = f.reformat(format=fmt, dst_colorspace=5, dst_color_range=1)
        f.pts, f.time_base = i * step, TB
        frames.append(f)
    return frames


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("yuv420p", "yuv420p"),
        ("yuv422p", "yuv422p"),
        ("yuv444p", "yuv444p"),
        ("yuv420p10le", "yuv420p10le"),
        ("gray", "yuv420p"),
        ("gray10le", "yuv420p10le"),
        ("nv12", "yuv420p"),
    ],
)
def test_colorize_keeps_luma_and_timing(colorizer: Colorizer, fmt: str, expected: str) -> None:
    frames = make_frames(5, fmt)
    out = run_nodes(frames, [ColorizeNode(colorizer, smooth=0, batch_size=2)])
    assert [f.pts for f in out] == [f.pts for f in frames]
    assert all(f.time_base == TB for f in out)
    assert {f.format.name for f in out} == {expected}
    for a, b in zip(frames, out, strict=True):
        src_y = plane_view(a if fmt != "nv12" else a.reformat(format="yuv420p"), 0)
        assert np.array_equal(plane_view(b, 0), src_y), "luma must pass through bit for bit"


def test_odd_size_planes(colorizer: Colorizer) -> None:
    frames = make_frames(2, "yuv420p", 853, 479)
    out = run_nodes(frames, ColorizeNode(colorizer, smooth=0))
    assert (out[0].width, out[0].height) == (853, 479)
    assert plane_view(out[0], 1).shape == (240, 427)
    assert np.array_equal(plane_view(out[1], 0), plane_view(frames[1], 0))


def test_chroma_matches_engine(colorizer: Colorizer) -> None:
    """The node's 4:4:4 chroma is close to Colorizer.colorize_ycbcr (the node's engine upsamples ab edge-aware)."""
    frame = make_frames(1, "yuv444p")[0]
    out = run_nodes([frame], ColorizeNode(colorizer, smooth=0))[0]
    y = plane_view(frame, 0)
    cb, cr = colorizer.colorize_ycbcr(y.copy(), YCbCrFormat("601", False, 8))
    for node_plane, engine_plane in ((plane_view(out, 1), cb), (plane_view(out, 2), cr)):
        diff = np.abs(node_plane.astype(int) - np.asarray(engine_plane).astype(int))
        assert diff.mean() < 1.0 and diff.max() <= 4


def test_batching_and_smoothing_delay(colorizer: Colorizer) -> None:
    node = ColorizeNode(colorizer, smooth=2, batch_size=4)
    assert node.delay == 3 + 2
    frames = make_frames(9, "yuv420p")
    ready = []
    for i, f in enumerate(frames):
        node.push(f)
        got = node.pull()
        if i < 3:
            assert got == [], "nothing leaves before the first batch is full"
        ready.extend(got)
    assert len(ready) == 6  # two batches of 4 in, minus the smoother's 2 held frames
    rest = node.flush()
    assert len(ready) + len(rest) == 9
    assert [f.pts for f in ready + rest] == [f.pts for f in frames]
    with pytest.raises(UsageError):
        node.push(frames[0])


def test_delay_bounds_when_frames_come_out(colorizer: Colorizer) -> None:
    """Frame n is out once frame n + delay is pushed (delay = the engine's lookahead), never later."""
    node = ColorizeNode(colorizer, smooth=1, batch_size=3)
    assert node.delay == node.stream.lookahead == 1 + 2
    frames = make_frames(10, "yuv420p")
    out: list[av.VideoFrame] = []
    for i, f in enumerate(frames):
        node.push(f)
        out.extend(node.pull())
        assert len(out) >= i + 1 - node.delay
    out.extend(node.flush())
    assert [f.pts for f in out] == [f.pts for f in frames]


def test_transfer_node_carries_a_keyframe_without_a_model() -> None:
    """ColorizeNode(model=None, references=...) is the keyframe-transfer node: the reference's colours, own luma."""
    frames = make_frames(6, "yuv444p", step=1)
    key_rgb = synth_rgb(64, 48, 0)
    infos: dict[int, dict[str, object]] = {}
    node = ColorizeNode(
        model=None,
        references={0: key_rgb},
        transfer="propagate",
        smooth=0,
        on_info=lambda n, info: infos.__setitem__(n, info),
    )
    assert node.colorizer is None
    out = run_nodes(frames, node)
    for n, (a, b) in enumerate(zip(frames, out, strict=True)):
        assert np.array_equal(plane_view(b, 0), plane_view(a, 0))
        err = np.abs(plane_view(b, 1).astype(int) - plane_view(a, 1).astype(int)).mean()
        neutral = np.abs(plane_view(a, 1).astype(int) - 128).mean()
        # the keyframe is the reference (to rounding); later frames drift (the synthetic hues change over time)
        assert err < (2.5 if n == 0 else 0.5 * neutral), f"frame {n}: chroma off by {err:.2f} codes"
    assert infos[0]["is_keyframe"] and infos[3]["keyframe_distance"] == 3
    with pytest.raises(UsageError, match="nothing to colour with"):
        ColorizeNode(model=None)


def test_references_past_the_end_are_reported() -> None:
    node = ColorizeNode(model=None, references={9: synth_rgb(64, 48, 0)}, smooth=0)
    for f in make_frames(3, "yuv420p"):
        node.push(f)
    with pytest.raises(InputError, match="past the end"):
        node.flush()


class HintEchoNet(torch.nn.Module):
    """A colour net that paints exactly its hints (ab where the mask is set, grey elsewhere): hints made visible."""

    accepts_hints = True

    def forward(self, l: torch.Tensor, ab_hint: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return ab_hint * mask


def test_hints_land_where_they_are_given() -> None:
    from chromaflow.core.hints import parse_hint

    echo = Colorizer(HintEchoNet(), device="cpu", size=32)
    frames = make_frames(2, "yuv444p", 160, 96)
    out = run_nodes(frames, ColorizeNode(echo, smooth=0, hints=[parse_hint("120,70,#ff0000,6")]))
    cr = plane_view(out[0], 2).astype(int) - 128
    ys, xs = np.nonzero(cr > 0.5 * cr.max())
    assert cr.max() > 20 and abs(xs.mean() - 120) < 8 and abs(ys.mean() - 70) < 8, "red sits at the hint"
    assert np.abs(cr[:40, :60]).max() <= 1, "no colour far from the hint"


class FlickerNet(torch.nn.Module):
    """A colour net whose output jumps from call to call: colour flicker on demand (seeded)."""

    accepts_hints = False

    def __init__(self) -> None:
        super().__init__()
        self.gen = torch.Generator().manual_seed(1)

    def forward(self, l: torch.Tensor, ab_hint: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        shift = torch.randn(l.shape[0], 2, 1, 1, generator=self.gen) * 15
        return torch.cat((l - 50, 50 - l), dim=1) * 0.3 + shift


def test_smoothing_reduces_flicker_not_luma() -> None:
    static = []
    for i in range(8):  # a static scene
        f = make_frames(1, "yuv444p")[0]
        f.pts = i
        static.append(f)

    def chroma_means(radius: int) -> np.ndarray:
        col = Colorizer(FlickerNet(), device="cpu", size=32)
        out = run_nodes(static, ColorizeNode(col, smooth=radius, batch_size=4))
        assert all(np.array_equal(plane_view(o, 0), plane_view(static[0], 0)) for o in out)
        return np.array([plane_view(o, 1).mean() for o in out])

    plain, smooth = chroma_means(0), chroma_means(2)
    assert np.diff(smooth).std() < 0.6 * np.diff(plain).std()


def test_size_change_mid_batch_is_refused(colorizer: Colorizer) -> None:
    frames = make_frames(1, "yuv420p") + make_frames(1, "yuv420p", 80, 60)
    with pytest.raises(InputError, match="frame 1"):
        run_nodes(frames, ColorizeNode(colorizer, smooth=0, batch_size=2))


def test_chain_with_ffmpeg_filters(colorizer: Colorizer) -> None:
    """scale/format before the node, drawbox after it (this PyAV build has no drawtext)."""
    frames = make_frames(4, "rgb24")
    before = FilterNode("scale=80:60,format=yuv420p")
    chain = NodeChain(
        [
            before,
            ColorizeNode(colorizer, smooth=0, batch_size=2),
            FilterNode("drawbox=x=0:y=0:w=16:h=16:color=white:t=fill"),
        ]
    )
    out = run_nodes(frames, chain)
    reference = run_nodes(make_frames(4, "rgb24"), FilterNode("scale=80:60,format=yuv420p"))
    assert len(out) == 4 and (out[0].width, out[0].height, out[0].format.name) == (80, 60, "yuv420p")
    y, ref_y = plane_view(out[2], 0), plane_view(reference[2], 0)
    assert (y[:16, :16] >= 230).all(), "drawbox painted after the node"
    assert np.array_equal(y[16:, :], ref_y[16:, :]), "outside the box the scaled luma is untouched"
    assert [f.pts for f in out] == [0, 3, 6, 9]


def test_graph_node_wraps_a_configured_graph(colorizer: Colorizer) -> None:
    frames = make_frames(3, "yuv420p")
    graph = av.filter.Graph()
    src = graph.add_buffer(width=64, height=48, format="yuv420p", time_base=TB)
    graph.link_nodes(src, graph.add("hflip"), graph.add("buffersink")).configure()
    out = run_nodes(frames, [GraphNode(graph), ColorizeNode(colorizer, smooth=0)])
    assert np.array_equal(plane_view(out[1], 0), plane_view(frames[1], 0)[:, ::-1])


def test_filter_node_errors() -> None:
    with pytest.raises(UsageError, match="not available"):
        FilterNode("nosuchfilter=1")
    node = FilterNode("scale=w=notanumber")
    with pytest.raises(UsageError):
        node.push(make_frames(1, "yuv420p")[0])


def test_opencv_runner(colorizer: Colorizer) -> None:
    runner = NodeRunner(ColorizeNode(colorizer, smooth=0, batch_size=2), fps=24)
    got = []
    for i in range(3):
        got += runner.process(synth_rgb(64, 48, i)[:, :, ::-1].copy())
    got += runner.process(synth_rgb(64, 48, 3).mean(axis=2).astype(np.uint8))  # a gray frame
    got += runner.flush()
    assert len(got) == 4
    assert all(g.shape == (48, 64, 3) and g.dtype == np.uint8 for g in got)
    with pytest.raises(InputError):
        runner.push(np.zeros((4, 4, 4), np.float32))


# ----------------------------------------------------------------------------------------------- deepfake


@pytest.fixture(scope="module")
def face_frames(shared) -> list[av.VideoFrame]:  # type: ignore[no-untyped-def]
    import cv2

    bgr = cv2.imread(str(shared / "data/deepfake-dev/dfdc/lynaeydofd_fr0.jpg"))
    rgb = bgr[100:580, 640:1280, ::-1].copy()  # 640x480 around one face
    frames = []
    for i in range(3):
        f = av.VideoFrame.from_ndarray(rgb, format="rgb24").reformat(format="yuv420p", dst_colorspace=1)
        f.colorspace, f.color_range = 1, 1
        f.pts, f.time_base = i, Fraction(1, 25)
        frames.append(f)
    return frames


@pytest.fixture
def meso_weights(shared, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from chromaflow.core import registry

    registry.import_file("meso4-df", shared / "models/mesonet/Meso4_DF.h5")


@pytest.mark.usefixtures("meso_weights")
def test_deepfake_node_scores_and_draws(face_frames: list[av.VideoFrame]) -> None:
    seen = []
    node = DeepfakeNode(detector="haar", classifier="meso4-df", device="cpu", every=2, on_result=seen.append)
    out = run_nodes(face_frames, node)
    assert [r.frame for r in node.results] == [0, 2] and seen == node.results
    assert node.results[0].result.faces, "the DFDC frame shows a face"
    assert node.summary().frames == 2
    assert [f.pts for f in out] == [0, 1, 2]
    y_in, y_out = plane_view(face_frames[1], 0), plane_view(out[1], 0)
    changed = y_in != y_out
    assert changed.any(), "the overlay is drawn on the frame between scored frames too"
    assert changed.mean() < 0.5, "only the overlay's pixels change"
    row = node.results[0].to_json()
    assert row["frame"] == 0 and row["time"] == 0.0 and 0.0 <= row["score"] <= 1.0


@pytest.mark.usefixtures("meso_weights")
def test_deepfake_node_without_faces_passes_frames_through() -> None:
    frames = make_frames(3, "yuv420p", 96, 64)
    node = DeepfakeNode(detector="haar", classifier="meso4-df", device="cpu", overlay=True)
    out = run_nodes(frames, node)
    assert all(r.result.score is None for r in node.results)
    assert all(
        np.array_equal(plane_view(a, i), plane_view(b, i))
        for a, b in zip(frames, out, strict=True)
        for i in range(3)
    )


def test_deepfake_every_must_be_positive() -> None:
    with pytest.raises(UsageError):
        DeepfakeNode(scorer=object(), every=0)  # type: ignore[arg-type]
