"""The device-resident colorize engine: its torch steps against the CPU engine's OpenCV steps, the batched stream,
the PyAV node on either engine, and (GPU-marked) CUDA against CPU."""

from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch

from chromaflow.core.colorizer import Colorizer, ycbcr_chroma, ycbcr_lightness
from chromaflow.core.colour import YCbCrFormat
from chromaflow.core.device_engine import (
    ChromaLayout,
    DeviceColorizer,
    DeviceColorizerStream,
    PlaneTransfer,
    area_shrink,
    box_mean,
    guided_upsample,
)
from chromaflow.core.errors import UsageError
from chromaflow.core.transfer import guided
from chromaflow.core.video import VideoColorizer
from chromaflow.filters.pyav import ColorizeNode, run_nodes
from chromaflow.filters.pyav.frames import plane_view

from support.pyav_synth import synth_rgb

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a))[None, None]


@pytest.fixture(scope="module")
def colorizer() -> Colorizer:
    """The built-in `base` weights at a small model input (fast on the CPU)."""
    return Colorizer("base", device="cpu", size=64)


def _luma_frames(n: int, height: int, width: int, bits: int = 8) -> list[np.ndarray]:
    rng = np.random.default_rng(7)
    peak = (1 << bits) - 1
    frames = []
    for _ in range(n):
        noise = cv2.GaussianBlur(rng.random((height, width)).astype(np.float32), (0, 0), 3)
        noise = (noise - noise.min()) / (np.ptp(noise) + 1e-6)
        codes = np.round((16 + noise * 219) * (peak / 255))
        frames.append(codes.astype(np.uint8 if bits <= 8 else np.uint16))
    return frames


@pytest.mark.parametrize("radius", [1, 4, 9])
def test_box_mean_matches_opencv_reflected_borders(radius: int) -> None:
    x = np.random.default_rng(0).random((23, 31)).astype(np.float32)
    ours = box_mean(_t(x), radius)[0, 0].numpy()
    assert np.abs(ours - guided.box(x, radius)).max() < 1e-5


@pytest.mark.parametrize(
    ("src", "dst"), [((480, 854), (270, 480)), ((1080, 1920), (270, 480)), ((37, 50), (20, 21))]
)
def test_area_shrink_matches_opencv_inter_area(src: tuple[int, int], dst: tuple[int, int]) -> None:
    x = np.random.default_rng(1).random(src).astype(np.float32) * 100
    ref = cv2.resize(x, (dst[1], dst[0]), interpolation=cv2.INTER_AREA)
    assert np.abs(area_shrink(_t(x), dst)[0, 0].numpy() - ref).max() < 1e-3


def test_guided_upsample_matches_the_cpu_filter() -> None:
    rng = np.random.default_rng(2)
    big = cv2.GaussianBlur(rng.random((60, 80)).astype(np.float32) * 100, (0, 0), 2)
    small = cv2.resize(big, (40, 30), interpolation=cv2.INTER_AREA)
    ab = rng.normal(0, 20, (30, 40, 2)).astype(np.float32)
    ref = guided.guided_upsample(small, ab, big, 4, 16.0)
    ours = guided_upsample(_t(small), torch.from_numpy(ab.transpose(2, 0, 1))[None], _t(big), 4, 16.0)
    assert np.abs(ours[0].numpy().transpose(1, 2, 0) - ref).max() < 1e-3


@pytest.mark.parametrize(
    ("bits", "factors", "size"),
    [(8, (2, 2), (120, 214)), (10, (1, 2), (96, 128))],
)
def test_device_engine_matches_the_video_engine(
    colorizer: Colorizer, bits: int, factors: tuple[int, int], size: tuple[int, int]
) -> None:
    """Same code values as VideoColorizer(smooth 0) + ycbcr_chroma, the CPU engine every host used before."""
    from chromaflow.core.transfer import PropagationParams

    params = PropagationParams(max_side=120)  # a working size below the frame size: the shrink is exercised
    fmt = YCbCrFormat("709", full_range=False, bits=bits)
    ys = _luma_frames(3, *size, bits=bits)
    layout = ChromaLayout(fmt, factors, "left")
    ours = DeviceColorizer(colorizer, params).chroma(torch.from_numpy(np.stack(ys)), layout).numpy()
    ls = [ycbcr_lightness(y, fmt).numpy() for y in ys]
    video = VideoColorizer(3, lambda n: ls[n], colorizer=colorizer, params=params)
    ref = np.stack(
        [
            ycbcr_chroma(_t(ls[n]), torch.from_numpy(video.ab(n))[None], fmt, factors, "left")[0].numpy()
            for n in range(3)
        ]
    )
    diff = np.abs(ours.astype(np.int64) - ref.astype(np.int64))
    assert ours.shape == ref.shape and diff.max() <= 1 and (diff > 0).mean() < 1e-3
    assert ref.std() > 1.0, "the model must put some colour in (else the comparison says little)"


def test_stream_batches_in_order_and_matches_one_call(colorizer: Colorizer) -> None:
    fmt = YCbCrFormat("601", full_range=False, bits=8)
    layout = ChromaLayout(fmt, (2, 2), "left")
    engine = DeviceColorizer(colorizer)
    ys = _luma_frames(7, 48, 64)
    stream = DeviceColorizerStream(engine, layout, batch_size=3)
    out: list[tuple[int, np.ndarray]] = []
    for i, y in enumerate(ys):
        ready = stream.push(i, y)
        assert all(i - k <= stream.lookahead for k, _ in ready)
        out += ready
    out += stream.flush()
    assert [k for k, _ in out] == list(range(7))
    whole = engine.chroma(torch.from_numpy(np.stack(ys)), layout).numpy()
    assert np.array_equal(np.stack([p for _, p in out]), whole.astype(np.uint8))
    assert out[0][1].dtype == np.uint8 and out[0][1].shape == (2, 24, 32)


def test_plane_transfer_keeps_16_bit_codes() -> None:
    planes = [np.array([[0, 40000], [65535, 1023]], dtype=np.uint16)] * 2
    transfer = PlaneTransfer(torch.device("cpu"))
    up = transfer.upload(planes)
    assert up.shape == (2, 2, 2)
    assert np.array_equal(transfer.download(up).result(), np.stack(planes))


def _frames(n: int, fmt: str = "yuv420p") -> list:  # type: ignore[type-arg]
    import av

    frames = []
    for i in range(n):
        frame = av.VideoFrame.from_ndarray(synth_rgb(96, 64, i), format="rgb24")
        frame = frame.reformat(format=fmt, dst_colorspace=1, dst_color_range=1)
        frame.pts, frame.time_base = i, Fraction(1, 25)
        frames.append(frame)
    return frames


@pytest.mark.parametrize("fmt", ["yuv420p", "gray", "yuv422p10le"])
def test_node_gives_the_same_frames_on_either_engine(colorizer: Colorizer, fmt: str) -> None:
    frames = _frames(5, fmt)
    infos: dict[str, list[tuple[int, dict]]] = {"device": [], "video": []}  # type: ignore[type-arg]
    outs = {}
    for engine in ("device", "video"):
        node = ColorizeNode(
            colorizer,
            smooth=0,
            batch_size=2,
            engine=engine,
            on_info=lambda n, i, e=engine: infos[e].append((n, i)),
        )
        outs[engine] = run_nodes(frames, [node])
    assert [f.pts for f in outs["device"]] == [f.pts for f in frames]
    assert infos["device"] == infos["video"]
    for a, b in zip(outs["device"], outs["video"], strict=True):
        assert a.format.name == b.format.name
        assert np.array_equal(plane_view(a, 0), plane_view(b, 0))
        for p in (1, 2):
            diff = np.abs(plane_view(a, p).astype(np.int64) - plane_view(b, p).astype(np.int64))
            assert diff.max() <= 1


def test_node_engine_choice(colorizer: Colorizer) -> None:
    assert ColorizeNode(colorizer, smooth=0).stream is not None, "auto keeps the CPU video engine on the CPU"
    assert ColorizeNode(colorizer, smooth=0, engine="device").device_engine is not None
    with pytest.raises(UsageError, match="smoothing"):
        ColorizeNode(colorizer, smooth=2, engine="device")
    with pytest.raises(UsageError, match="engine must be"):
        ColorizeNode(colorizer, engine="gpu")


@pytest.mark.gpu
@needs_cuda
@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_cuda_engine_matches_the_cpu_engine(precision: str) -> None:
    fmt = YCbCrFormat("709", full_range=False, bits=8)
    layout = ChromaLayout(fmt, (2, 2), "left")
    ys = np.stack(_luma_frames(4, 270, 480))
    cpu = DeviceColorizer(Colorizer("base", device="cpu", precision="fp32")).chroma(
        torch.from_numpy(ys), layout
    )
    gpu_engine = DeviceColorizer(Colorizer("base", device="cuda", precision=precision))
    stream = DeviceColorizerStream(gpu_engine, layout, batch_size=2)
    out = [p for i, y in enumerate(ys) for _, p in stream.push(i, y)]
    out += [p for _, p in stream.flush()]
    diff = np.abs(np.stack(out).astype(np.int64) - cpu.numpy().astype(np.int64))
    if precision == "fp32":
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-2
    else:  # bf16 keeps 8 bits of mantissa: the net's ab moves by a few units, chroma codes by a few steps
        assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 4


def test_node_engines_agree_with_hints_and_odd_sizes(colorizer: Colorizer) -> None:
    """Hints (in frame pixels) and an odd-sized 4:2:0 frame take the same course on both engines."""
    import av

    from chromaflow.core.hints import parse_hint

    frames = []
    for i in range(3):
        frame = av.VideoFrame.from_ndarray(synth_rgb(97, 65, i), format="rgb24").reformat(format="yuv420p")
        frame.pts, frame.time_base = i, Fraction(1, 25)
        frames.append(frame)
    hints = [parse_hint("20,30,#d02020,3"), parse_hint("80,10,#2040e0")]
    outs = {
        engine: run_nodes(frames, [ColorizeNode(colorizer, smooth=0, hints=hints, engine=engine)])
        for engine in ("device", "video")
    }
    plain = run_nodes(frames, [ColorizeNode(colorizer, smooth=0, engine="device")])
    assert plane_view(outs["device"][0], 1).shape == (33, 49)
    for a, b in zip(outs["device"], outs["video"], strict=True):
        for p in (1, 2):
            assert np.abs(plane_view(a, p).astype(np.int64) - plane_view(b, p).astype(np.int64)).max() <= 1
    moved = np.abs(plane_view(outs["device"][0], 2).astype(int) - plane_view(plain[0], 2).astype(int))
    assert moved[15, 10] > 5, "the red hint at (20, 30) must show in Cr where it was placed"
