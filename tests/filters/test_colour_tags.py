"""One colour-tag model for every host: the same samples with the same tags decode the same way in VapourSynth and
PyAV (the untagged rule, the refused matrices, range and chroma siting), H.273 codes round-trip, and
``cf.deepfake`` converts a clip by its own tags.

Hosts are driven through their real code paths with real frames: VapourSynth frames' properties through
:func:`chromaflow.filters.vapoursynth.colour.describe` and ``core.resize`` (zimg), PyAV frames' tags through
:mod:`chromaflow.filters.pyav.frames` and swscale.
"""

from pathlib import Path

import av
import numpy as np
import pytest
import torch

vs = pytest.importorskip("vapoursynth")

from chromaflow.core.colour import YCbCrFormat, rgb_to_ycbcr  # noqa: E402
from chromaflow.core.errors import InputError  # noqa: E402
from chromaflow.filters import vapoursynth as cf  # noqa: E402
from chromaflow.filters.pyav.frames import plane_view, rgb24_of, siting_of, ycbcr_format_of  # noqa: E402
from chromaflow.filters.vapoursynth.colour import ClipLayout, check_clip, describe  # noqa: E402
from chromaflow.filters.vapoursynth.deepfake_scoring import rgb24_clip  # noqa: E402

core = vs.core

# Sizes on both sides of the SD/HD bound (1024x576), HD crops (1280x544, 1920x800) and a portrait frame.
SIZES = [
    (720, 480),
    (720, 576),
    (1024, 576),
    (1026, 576),
    (1024, 578),
    (1280, 544),
    (1920, 800),
    (960, 720),
    (1920, 1080),
    (608, 1080),
]
# Every matrix code H.273 defines, and some it does not, for the refused-list comparison.
MATRIX_CODES = range(24)
EXPECTED_REFUSED = {0, 3, 4, 7, 8, 10, 11, 12, 13, 14} | set(range(15, 24))


def _vs_frame(width: int, height: int, family: str = "yuv", **props: int) -> tuple[vs.VideoFrame, ClipLayout]:
    """A real VapourSynth frame (8-bit, 4:4:4 or gray) with exactly ``props`` as its colour properties."""
    fmt = {"yuv": vs.YUV444P8, "gray": vs.GRAY8, "rgb": vs.RGB24}[family]
    clip = core.std.BlankClip(format=fmt, width=width, height=height, length=1)
    clip = core.std.RemoveFrameProps(clip, ["_Matrix", "_Range", "_ColorRange", "_ChromaLocation"])
    if props:
        clip = core.std.SetFrameProps(clip, **props)
    return clip.get_frame(0), check_clip(clip, "colorize")


def _vs_format(width: int, height: int, family: str = "yuv", **props: int) -> tuple[YCbCrFormat, str]:
    frame, layout = _vs_frame(width, height, family, **props)
    desc = describe(frame.props, layout, "colorize", 0)
    return desc.ycbcr(layout), desc.siting


def _av_frame(width: int, height: int, family: str = "yuv", **tags: int) -> av.VideoFrame:
    """A real PyAV frame (8-bit, 4:4:4 or gray) with exactly ``tags`` (FFmpeg numbering) set."""
    frame = av.VideoFrame(width, height, {"yuv": "yuv444p", "gray": "gray", "rgb": "rgb24"}[family])
    frame.colorspace, frame.color_range, frame.chroma_location = 2, 0, 0  # unspecified
    for name, value in tags.items():
        setattr(frame, name, value)
    return frame


def _av_format(width: int, height: int, family: str = "yuv", **tags: int) -> tuple[YCbCrFormat, str]:
    frame = _av_frame(width, height, family, **tags)
    return ycbcr_format_of(frame), siting_of(frame)


def _refused_by_vs(code: int, family: str = "yuv") -> bool:
    frame, layout = _vs_frame(64, 48, family, _Matrix=code)
    try:
        describe(frame.props, layout, "colorize", 0)
    except vs.Error as err:
        assert f"_Matrix={code} (" in str(err) and "retag" in str(err)
        return True
    return False


def _refused_by_pyav(code: int, family: str = "yuv") -> bool:
    frame = _av_frame(64, 48, family, colorspace=code)
    try:
        ycbcr_format_of(frame)
    except InputError as err:
        assert f"colorspace={code} (" in str(err) and "retag" in str(err)
        with pytest.raises(InputError):
            rgb24_of(frame)  # the deepfake path refuses it too
        return True
    return False


# ------------------------------------------------------------------------------------------------ the rule


@pytest.mark.parametrize(("width", "height"), SIZES)
def test_untagged_frames_get_the_same_matrix_in_both_hosts(width: int, height: int) -> None:
    expected = "709" if width > 1024 or height > 576 else "601"
    vs_fmt, vs_siting = _vs_format(width, height)
    av_fmt, av_siting = _av_format(width, height)
    assert vs_fmt.matrix == expected, "VapourSynth"
    assert av_fmt.matrix == expected, "PyAV"
    assert vs_fmt == av_fmt and vs_siting == av_siting == "left"


@pytest.mark.parametrize("matrix", [None, 1, 2, 5, 6, 9])
@pytest.mark.parametrize("full", [None, False, True])
@pytest.mark.parametrize("family", ["yuv", "gray"])
def test_tagged_frames_decode_alike_in_both_hosts(matrix: int | None, full: bool | None, family: str) -> None:
    for width, height in ((720, 576), (1280, 544)):
        vs_props: dict[str, int] = {}
        av_tags: dict[str, int] = {}
        if matrix is not None:
            vs_props["_Matrix"] = av_tags["colorspace"] = matrix
        if full is not None:
            vs_props["_Range"] = int(full)
            av_tags["color_range"] = 2 if full else 1
        vs_fmt, _ = _vs_format(width, height, family, **vs_props)
        av_fmt, _ = _av_format(width, height, family, **av_tags)
        assert vs_fmt == av_fmt, (width, height)
        untagged_full = family == "gray"  # untagged: limited for integer Y'CbCr, full for gray
        assert vs_fmt.full_range == (untagged_full if full is None else full)


@pytest.mark.parametrize("location", range(6))
def test_chroma_siting_is_read_alike(location: int) -> None:
    """VapourSynth numbers chroma locations as H.273 does; FFmpeg adds one (0 is unspecified)."""
    _, vs_siting = _vs_format(64, 48, _ChromaLocation=location)
    _, av_siting = _av_format(64, 48, chroma_location=location + 1)
    names = ["left", "center", "topleft", "top", "bottomleft", "bottom"]
    assert vs_siting == av_siting == names[location]


def test_a_1280x544_frame_decodes_to_the_same_rgb_in_both_hosts() -> None:
    """The real conversions (zimg through ``cf.deepfake``'s RGB path, swscale through ``rgb24_of``) of the same
    untagged Y'CbCr samples agree with each other and with the BT.709 decode; BT.601 would be far off."""
    w, h = 1280, 544
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    rgb = np.stack(
        [xx / w, yy / h, 1 - (xx + yy) / (w + h)]
    )  # saturated ramps: matrices differ strongly here
    codes = (
        rgb_to_ycbcr(torch.from_numpy(rgb), YCbCrFormat("709")).round().clamp(0, 255).numpy().astype(np.uint8)
    )
    clip = core.std.BlankClip(format=vs.YUV444P8, width=w, height=h, length=1)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        g = f.copy()
        for p in range(3):
            np.asarray(g[p])[...] = codes[p]
        return g

    clip = core.std.RemoveFrameProps(core.std.ModifyFrame(clip, clip, fill), ["_Matrix", "_Range"])
    rgb_vs = np.stack(
        [np.asarray(p) for p in rgb24_clip(clip, check_clip(clip, "deepfake"), "deepfake").get_frame(0)]
    )
    frame = av.VideoFrame(w, h, "yuv444p")
    for p in range(3):
        plane_view(frame, p)[...] = codes[p]
    rgb_av = rgb24_of(frame).transpose(2, 0, 1)
    truth = np.rint(rgb * 255).astype(int)
    assert np.abs(rgb_vs.astype(int) - truth).max() <= 3
    assert np.abs(rgb_av.astype(int) - truth).max() <= 3
    assert np.abs(rgb_vs.astype(int) - rgb_av.astype(int)).max() <= 3


# ------------------------------------------------------------------------------------------------ refused


@pytest.mark.parametrize("code", [7, 10])
def test_smpte240m_and_bt2020_constant_luminance_are_refused_by_both_hosts(code: int) -> None:
    assert _refused_by_vs(code), "VapourSynth decodes it"
    assert _refused_by_pyav(code), "PyAV decodes it"


def test_the_refused_list_is_the_same_in_both_hosts() -> None:
    vs_refused = {code for code in MATRIX_CODES if _refused_by_vs(code)}
    av_refused = {code for code in MATRIX_CODES if _refused_by_pyav(code)}
    assert vs_refused == av_refused == EXPECTED_REFUSED
    # A gray frame tagged RGB (what FFmpeg's PNG decoder gives) counts as untagged: its luma needs no matrix.
    assert not _refused_by_vs(0, "gray") and not _refused_by_pyav(0, "gray")
    from chromaflow.core.colour.tags import REFUSED_MATRICES

    assert {int(m) for m in REFUSED_MATRICES} == EXPECTED_REFUSED - {3} - set(range(15, 24))  # 3: reserved


# ------------------------------------------------------------------------------------------------ codes


def test_h273_codes_round_trip() -> None:
    from chromaflow.core.colour.tags import ChromaLocation, ColourRange, Matrix, Primaries, Transfer

    h273 = {
        Matrix: {0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14},
        Transfer: {1, 2, *range(4, 19)},
        Primaries: {1, 2, *range(4, 13), 22},
        ColourRange: {0, 1},
        ChromaLocation: set(range(6)),
    }
    for enum, codes in h273.items():
        assert {int(m) for m in enum} == codes, enum.__name__
        for code in codes:
            assert enum.from_code(code) == code and int(enum(code)) == code
        assert enum.from_code(None) is None and enum.from_code(99) is None
    for rng in ColourRange:
        assert ColourRange.from_ffmpeg(rng.ffmpeg) is rng and ColourRange.from_vs_legacy(rng.vs_legacy) is rng
    assert (ColourRange.FULL.ffmpeg, ColourRange.FULL.vs_legacy) == (2, 0)
    assert ColourRange.from_ffmpeg(0) is None
    for loc in ChromaLocation:
        assert ChromaLocation.from_ffmpeg(loc.ffmpeg) is loc and loc.ffmpeg == int(loc) + 1
    assert ChromaLocation.from_ffmpeg(0) is None
    assert {int(Matrix(c).canonical) for c in (1, 5, 6, 9)} == {1, 5, 9}


@pytest.mark.parametrize("matrix", [1, 5, 6, 9])
def test_vapoursynth_writes_back_what_it_read(matrix: int) -> None:
    """Properties written by a filter (the output's description) read back as the same tags."""
    frame, layout = _vs_frame(64, 48, _Matrix=matrix, _Range=1, _ChromaLocation=2, _Transfer=16, _Primaries=9)
    desc = describe(frame.props, layout, "colorize", 0)
    out = frame.copy()
    desc.write(out.props, vs.YUV)
    assert {
        k: int(out.props[k]) for k in ("_Matrix", "_Range", "_ChromaLocation", "_Transfer", "_Primaries")
    } == {
        "_Matrix": matrix,
        "_Range": 1,
        "_ChromaLocation": 2,
        "_Transfer": 16,
        "_Primaries": 9,
    }
    assert describe(out.props, layout, "colorize", 0) == desc


# ------------------------------------------------------------------------------------------------ deepfake


def _face_rgb(shared: Path, width: int, height: int) -> np.ndarray:
    """One of MesoNet's test faces (256 px) on a dark gray HD frame, RGB uint8 (as ``tests/core/test_deepfake.py``)."""
    import cv2

    bgr = cv2.imread(str(shared / "data/deepfake-dev/mesonet-test-images/df/df00204.jpg"))
    face = cv2.resize(bgr, (256, 256), interpolation=cv2.INTER_AREA)[:, :, ::-1]
    canvas = np.full((height, width, 3), 90, np.uint8)
    canvas[100:356, 200:456] = face
    return canvas


@pytest.mark.parametrize(
    "odd_tags",
    [
        {},
        # Tags the colour-tag model reads as "not said" (0 is reserved; a location past 5 is undefined) but that
        # core.resize cannot read: the conversion must follow chromaflow's description, not fail on them.
        {"_Transfer": 0, "_Primaries": 0},
        {"_ChromaLocation": 7},
    ],
)
def test_deepfake_converts_a_clip_by_its_own_tags(shared: Path, odd_tags: dict[str, int]) -> None:
    """An HD clip tagged BT.601 (``_Matrix=6``), full range (``_Range=1``): the scorer sees the RGB a conversion by
    those tags gives (not the untagged rule's BT.709 limited), and so the same scores and boxes."""
    meso4 = shared / "models/mesonet/Meso4_DF.h5"
    if not meso4.is_file():
        pytest.skip(f"{meso4} is absent")
    rgb = _face_rgb(shared, 1280, 720)
    blank = core.std.BlankClip(format=vs.RGB24, width=1280, height=720, length=2)

    def fill(n: int, f: vs.VideoFrame) -> vs.VideoFrame:
        g = f.copy()
        for p in range(3):
            np.asarray(g[p])[...] = rgb[:, :, p]
        return g

    src = core.std.ModifyFrame(blank, blank, fill)
    yuv = core.resize.Bicubic(src, format=vs.YUV420P8, matrix_s="170m", range_s="full")
    correct = core.resize.Bicubic(
        core.std.RemoveFrameProps(yuv, ["_Matrix", "_Range", "_ChromaLocation", "_Transfer", "_Primaries"]),
        format=vs.RGB24,
        matrix_in_s="170m",
        range_in_s="full",
        chromaloc_in_s="left",
    )
    tagged = core.std.SetFrameProps(yuv, **{"_Matrix": 6, "_Range": 1, "_ChromaLocation": 0, **odd_tags})
    seen = rgb24_clip(tagged, check_clip(tagged, "deepfake"), "deepfake")
    for n in range(2):
        for p in range(3):
            np.testing.assert_array_equal(
                np.asarray(seen.get_frame(n)[p]), np.asarray(correct.get_frame(n)[p])
            )
    got = cf.deepfake(tagged, overlay=False, classifier_path=meso4)
    want = cf.deepfake(correct, overlay=False, classifier_path=meso4)
    keys = ("ChromaflowFaces", "ChromaflowDeepfakeScore", "ChromaflowFaceBoxes", "ChromaflowFaceRawScores")
    for n in range(2):
        a, b = got.get_frame(n).props, want.get_frame(n).props
        assert a["ChromaflowFaces"] >= 1
        assert {k: a.get(k) for k in keys} == {k: b.get(k) for k in keys}
