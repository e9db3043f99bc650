"""Colour tags: a frame's matrix, transfer, primaries, range and chroma siting as ITU-T H.273 codes, the one rule
for frames that do not say, and the one list of what chromaflow refuses. Every host reads its frames' tags here,
so the same samples with the same tags are decoded the same way in VapourSynth, PyAV, the CLI and the plugins.

Numbering. The enums carry H.273's codes, which are also FFmpeg's ``colorspace``/``color_trc``/``color_primaries``
and VapourSynth's ``_Matrix``/``_Transfer``/``_Primaries``/``_Range``/``_ChromaLocation`` (VapourSynth numbers
chroma locations as H.273 does). Two host numberings differ and are converted here, nowhere else: FFmpeg's
``color_range`` (0 unspecified, 1 limited, 2 full) and ``chroma_location`` (H.273's code + 1, 0 unspecified), and
VapourSynth's deprecated ``_ColorRange`` (0 full, 1 limited).

The rule for untagged frames (a tag that is missing, says "unspecified" (2), or holds a code H.273 does not define
for transfer, primaries, range or siting):

- Matrix: BT.709 when the frame is wider than 1024 or taller than 576; otherwise BT.601, written as SMPTE 170M (6).
  Why: standard-definition video (525/625 lines: 720x480, 720x576, and 1024x576 for square-pixel 16:9 PAL) is
  coded with BT.601 and high definition with BT.709, and a frame that fits inside 1024x576 is standard definition.
  Looking at both sides keeps HD crops HD: a 1280x544 or 1920x800 scope film is BT.709, which a height-only rule
  (``height >= 720``, what PyAV's host used) takes for SD. These are the bounds of vstools' ``Matrix.from_res``
  (the VapourSynth community's rule), applied to each side rather than as a tuple comparison; unlike vstools we
  write 6 for every SD frame, not 5 for 576 lines (same coefficients, and what chromaflow has always written).
  Large frames stay BT.709 (not BT.2020): untagged UHD is almost always SDR web video coded with BT.709.
- Range: limited for integer Y'CbCr and gray, full for RGB and float samples. H.273 infers limited range when the
  flag is absent, and zimg (VapourSynth) does the same. FFmpeg's decoders tag the full-range formats they know
  (PNG, JPEG, ``yuvj*`` pixel formats); gray written through FFmpeg's swscale is full range whatever its tag says,
  so such a file must be tagged full (``-color_range pc``) to be read as such.
- Chroma siting: left (H.273 type 0, the MPEG-2/H.264 default).
- Transfer and primaries follow the matrix (BT.709: 1/1; SMPTE 170M: 6/6; BT.470BG: 6/5; BT.2020: 14/9), and for
  RGB sRGB (13) with BT.709 primaries, the coding the colour nets assume. They are carried to the output, never
  used to decode, and never refused: an HDR (PQ, HLG) stream is processed as if it were SDR.

Refused (:data:`REFUSED_MATRICES`): every matrix but BT.601 (5, 6), BT.709 (1) and BT.2020 non-constant luminance
(9), and every code H.273 reserves or does not define (3, and 15 and up). The error says what to do: convert the
video to a supported matrix first, or retag it if the tag is wrong. A gray frame tagged RGB (0, what FFmpeg gives
gray images) counts as untagged: its luma needs no matrix.
"""

from dataclasses import dataclass
from enum import IntEnum
from typing import Literal, Self

from chromaflow.core.colour.subsampling import Siting
from chromaflow.core.colour.ycbcr import MatrixName
from chromaflow.core.errors import InputError

# The kind of samples a frame holds: planar Y'CbCr, gray (a Y' plane alone) or R'G'B'.
Family = Literal["yuv", "gray", "rgb"]

SD_MAX_WIDTH = 1024
SD_MAX_HEIGHT = 576


class _Coded(IntEnum):
    """An H.273 code list; :meth:`from_code` answers ``None`` for a missing or undefined code."""

    @classmethod
    def from_code(cls, code: int | None) -> Self | None:
        if code is None:
            return None
        try:
            return cls(int(code))
        except ValueError:
            return None


class Matrix(_Coded):
    """H.273 MatrixCoefficients: how R'G'B' become luma and colour-difference samples."""

    RGB = 0  # identity: the planes hold G, B, R
    BT709 = 1
    UNSPECIFIED = 2
    FCC = 4
    BT470BG = 5  # BT.601 as 625-line systems tag it
    SMPTE170M = 6  # BT.601 as 525-line systems tag it
    SMPTE240M = 7
    YCGCO = 8
    BT2020_NCL = 9
    BT2020_CL = 10
    SMPTE2085 = 11
    CHROMATICITY_NCL = 12
    CHROMATICITY_CL = 13
    ICTCP = 14

    @property
    def label(self) -> str:
        return matrix_label(self)

    @property
    def coefficients(self) -> MatrixName:
        """The Kr/Kb definition :mod:`chromaflow.core.colour.ycbcr` decodes this matrix with."""
        name = _COEFFICIENTS.get(self)
        if name is None:
            raise UnsupportedMatrixError(self)
        return name

    @property
    def canonical(self) -> "Matrix":
        """The one code naming these coefficients: BT.601 has two with identical Kr/Kb (5, 6); converters that
        know only one of them (FFmpeg's swscale: 5) take this."""
        return _CANONICAL[self.coefficients]


class Transfer(_Coded):
    """H.273 TransferCharacteristics (carried to the output; never used to decode)."""

    BT709 = 1
    UNSPECIFIED = 2
    BT470M = 4
    BT470BG = 5
    BT601 = 6
    SMPTE240M = 7
    LINEAR = 8
    LOG100 = 9
    LOG316 = 10
    XVYCC = 11
    BT1361E = 12
    SRGB = 13
    BT2020_10 = 14
    BT2020_12 = 15
    PQ = 16
    SMPTE428 = 17
    HLG = 18


class Primaries(_Coded):
    """H.273 ColourPrimaries (carried to the output; never used to decode)."""

    BT709 = 1
    UNSPECIFIED = 2
    BT470M = 4
    BT470BG = 5
    SMPTE170M = 6
    SMPTE240M = 7
    FILM = 8
    BT2020 = 9
    XYZ = 10
    DCI_P3 = 11
    DISPLAY_P3 = 12
    EBU3213 = 22


class ColourRange(_Coded):
    """H.273 video_full_range_flag (VapourSynth's ``_Range``)."""

    LIMITED = 0
    FULL = 1

    @classmethod
    def from_ffmpeg(cls, code: int | None) -> "ColourRange | None":
        """FFmpeg's ``color_range``: 1 limited ("MPEG"), 2 full ("JPEG"), 0 unspecified."""
        return {1: cls.LIMITED, 2: cls.FULL}.get(int(code)) if code is not None else None

    @property
    def ffmpeg(self) -> int:
        return 2 if self is ColourRange.FULL else 1

    @classmethod
    def from_vs_legacy(cls, code: int | None) -> "ColourRange | None":
        """VapourSynth's ``_ColorRange`` (before R81): 0 full, 1 limited."""
        return {0: cls.FULL, 1: cls.LIMITED}.get(int(code)) if code is not None else None

    @property
    def vs_legacy(self) -> int:
        return 0 if self is ColourRange.FULL else 1


class ChromaLocation(_Coded):
    """H.273 chroma_sample_loc_type (VapourSynth's ``_ChromaLocation`` uses the same numbers)."""

    LEFT = 0
    CENTER = 1
    TOP_LEFT = 2
    TOP = 3
    BOTTOM_LEFT = 4
    BOTTOM = 5

    @property
    def siting(self) -> Siting:
        """The name :mod:`chromaflow.core.colour.subsampling` resamples chroma at."""
        return _SITINGS[self]

    @classmethod
    def from_ffmpeg(cls, code: int | None) -> "ChromaLocation | None":
        """FFmpeg's ``chroma_location``: H.273's code + 1 (0 is unspecified)."""
        return cls.from_code(int(code) - 1) if code is not None and int(code) > 0 else None

    @property
    def ffmpeg(self) -> int:
        return int(self) + 1


_COEFFICIENTS: dict[Matrix, MatrixName] = {
    Matrix.BT709: "709",
    Matrix.BT470BG: "601",
    Matrix.SMPTE170M: "601",
    Matrix.BT2020_NCL: "2020",
}
_CANONICAL: dict[str, Matrix] = {"709": Matrix.BT709, "601": Matrix.BT470BG, "2020": Matrix.BT2020_NCL}
_SITINGS: dict[ChromaLocation, Siting] = {
    ChromaLocation.LEFT: "left",
    ChromaLocation.CENTER: "center",
    ChromaLocation.TOP_LEFT: "topleft",
    ChromaLocation.TOP: "top",
    ChromaLocation.BOTTOM_LEFT: "bottomleft",
    ChromaLocation.BOTTOM: "bottom",
}
_MATRIX_LABELS: dict[int, str] = {
    0: "RGB",
    1: "BT.709",
    2: "unspecified",
    4: "FCC",
    5: "BT.470BG / BT.601",
    6: "SMPTE 170M / BT.601",
    7: "SMPTE 240M",
    8: "YCgCo",
    9: "BT.2020 non-constant luminance",
    10: "BT.2020 constant luminance",
    11: "SMPTE ST 2085",
    12: "chromaticity-derived NCL",
    13: "chromaticity-derived CL",
    14: "ICtCp",
}

SUPPORTED_MATRICES: frozenset[Matrix] = frozenset(_COEFFICIENTS)
# What is refused, and why; codes H.273 reserves or does not define (3, 15 and up) are refused as well.
REFUSED_MATRICES: dict[Matrix, str] = {
    Matrix.RGB: "its planes hold G, B and R, not Y'CbCr",
    Matrix.FCC: "the 1953 NTSC matrix, which no current video uses",
    Matrix.SMPTE240M: "the interim 1035-line HD matrix",
    Matrix.YCGCO: "a lossless coding transform, not luma and colour differences",
    Matrix.BT2020_CL: "constant luminance: luma is not a weighted sum of R'G'B'",
    Matrix.SMPTE2085: "Y'D'zD'x, derived from XYZ",
    Matrix.CHROMATICITY_NCL: "coefficients derived from the primaries",
    Matrix.CHROMATICITY_CL: "constant luminance: luma is not a weighted sum of R'G'B'",
    Matrix.ICTCP: "an HDR colour space, not Y'CbCr",
}
SUPPORTED_TEXT = "BT.601 (5, 6), BT.709 (1) and BT.2020 non-constant luminance (9)"


def matrix_label(code: int) -> str:
    return _MATRIX_LABELS.get(int(code), "not an H.273 matrix")


class UnsupportedMatrixError(InputError):
    """A frame's matrix tag names coefficients chromaflow cannot decode (see :data:`REFUSED_MATRICES`)."""

    def __init__(self, code: int) -> None:
        self.code = int(code)
        super().__init__(
            self.explain(
                "matrix",
                "convert the video to one of them first or, if the tag is wrong, retag it",
            )
        )

    def explain(self, tag: str, fix: str) -> str:
        """``<tag>=<code> (<name>), which chromaflow cannot decode (<why>); it decodes ...: <fix>``."""
        matrix = Matrix.from_code(self.code)
        why = REFUSED_MATRICES.get(matrix) if matrix is not None else None
        why = why or "a code H.273 reserves or does not define"
        return (
            f"{tag}={self.code} ({matrix_label(self.code)}), which chromaflow cannot decode ({why}); "
            f"it decodes {SUPPORTED_TEXT}: {fix}"
        )


# ------------------------------------------------------------------------------------------------ the rule


def untagged_matrix(width: int, height: int) -> Matrix:
    """The matrix of a frame whose tag does not say: BT.709 beyond 1024x576 on either side, else BT.601."""
    return Matrix.BT709 if width > SD_MAX_WIDTH or height > SD_MAX_HEIGHT else Matrix.SMPTE170M


def untagged_range(family: Family, is_float: bool = False) -> ColourRange:
    """The range of a frame whose tag does not say: limited for integer Y'CbCr, full for the rest.

    Gray is full: gray material is mostly scans and stills (PNG, TIFF, and JPEG, whose JFIF samples are full range
    but whose FFmpeg decoder leaves the tag unset), and FFmpeg's swscale treats gray as full, so a gray frame means
    what an FFmpeg user sees. A limited-range gray clip says so with its tag (``_ColorRange=1``, ``-color_range tv``).
    """
    return ColourRange.LIMITED if family == "yuv" and not is_float else ColourRange.FULL


UNTAGGED_CHROMA_LOCATION = ChromaLocation.LEFT


def default_transfer_primaries(matrix: Matrix) -> tuple[Transfer, Primaries]:
    """Transfer and primaries of a frame whose tags do not say, following its matrix."""
    return _DEFAULT_TRANSFER_PRIMARIES[matrix]


_DEFAULT_TRANSFER_PRIMARIES: dict[Matrix, tuple[Transfer, Primaries]] = {
    Matrix.RGB: (Transfer.SRGB, Primaries.BT709),
    Matrix.BT709: (Transfer.BT709, Primaries.BT709),
    Matrix.BT470BG: (Transfer.BT601, Primaries.BT470BG),
    Matrix.SMPTE170M: (Transfer.BT601, Primaries.SMPTE170M),
    Matrix.BT2020_NCL: (Transfer.BT2020_10, Primaries.BT2020),
}


def resolve_matrix(code: int | None, family: Family, width: int, height: int) -> Matrix:
    """The matrix a frame is decoded with: its tag, or the untagged rule; :class:`UnsupportedMatrixError` if refused.

    RGB frames have none (:attr:`Matrix.RGB`); a gray frame tagged RGB counts as untagged.
    """
    if family == "rgb":
        return Matrix.RGB
    if code is None or code == Matrix.UNSPECIFIED or (family == "gray" and code == Matrix.RGB):
        return untagged_matrix(width, height)
    matrix = Matrix.from_code(code)
    if matrix is None or matrix not in SUPPORTED_MATRICES:
        raise UnsupportedMatrixError(code)
    return matrix


def coding_matrix(matrix: Matrix, width: int, height: int) -> Matrix:
    """The matrix a frame's colour is coded in as Y'CbCr: its own, or for an RGB frame the untagged rule's."""
    return untagged_matrix(width, height) if matrix == Matrix.RGB else matrix


@dataclass(frozen=True)
class ColourTags:
    """One frame's colour description after the rule for untagged values."""

    matrix: Matrix
    transfer: Transfer
    primaries: Primaries
    full_range: bool
    chroma_location: ChromaLocation = UNTAGGED_CHROMA_LOCATION

    @property
    def range(self) -> ColourRange:
        return ColourRange.FULL if self.full_range else ColourRange.LIMITED

    @property
    def siting(self) -> Siting:
        return self.chroma_location.siting


def resolve_tags(
    family: Family,
    width: int,
    height: int,
    *,
    is_float: bool = False,
    matrix: int | None = None,
    transfer: int | None = None,
    primaries: int | None = None,
    full_range: bool | None = None,
    chroma_location: int | None = None,
) -> ColourTags:
    """A frame's description from its tags (H.273 codes; ``None`` where it has none) and the untagged rule.

    Raises :class:`UnsupportedMatrixError` for a refused matrix.
    """
    m = resolve_matrix(matrix, family, width, height)
    default_t, default_p = default_transfer_primaries(m)
    t = Transfer.from_code(transfer)
    p = Primaries.from_code(primaries)
    loc = ChromaLocation.from_code(chroma_location)
    return ColourTags(
        matrix=m,
        transfer=default_t if t is None or t == Transfer.UNSPECIFIED else t,
        primaries=default_p if p is None or p == Primaries.UNSPECIFIED else p,
        full_range=untagged_range(family, is_float) == ColourRange.FULL if full_range is None else full_range,
        chroma_location=UNTAGGED_CHROMA_LOCATION if loc is None else loc,
    )
