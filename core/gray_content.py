"""Gray pictures stored in a colour format: found from a clip's first frames, so deflicker can refuse them.

A gray film encoded as 4:2:0 (Cb = Cr = the neutral value everywhere) passes every pixel-format check, yet has no
colour to deflicker; run anyway it would come back unchanged and the user would not learn that it needs
colorizing. The check classifies each frame at the working resolution:

- ``colour``: some pixel's chroma ``sqrt(a*^2 + b*^2)`` reaches :data:`NEUTRAL_CHROMA` (one 8-bit chroma code step
  moves a*b* by about 1.2-1.4 units, so coding noise on a gray picture stays under it);
- ``flat``: otherwise, when the picture shows nothing (L* spans less than :data:`FLAT_LIGHTNESS`: black, white, a
  flat fade), so it says nothing either way;
- ``neutral``: a picture with content and no colour.

The verdict: with ``j`` the first frame that is not flat, frames ``0 .. max(j, radius)`` are looked at, and the clip
is gray when none of them is ``colour``. A stream knows frames ``0 .. radius`` when its first output is due, so it
refuses before giving out a frame unless the clip opens on flat frames; a colour clip that fades in from black, or
opens on a gray title that turns to colour within ``radius`` frames, is accepted. A clip without a frame of content
in its first :data:`CHECK_LIMIT` frames is accepted.
"""

from typing import Literal

import numpy as np
from numpy.typing import NDArray

from chromaflow.core.errors import InputError

NEUTRAL_CHROMA = 3.0  # a*b* units
FLAT_LIGHTNESS = 2.0  # L* units
CHECK_LIMIT = 250  # frames
GRAY_CONTENT_MESSAGE = (
    "the video is gray: its frames are stored in a colour format but their chroma is neutral everywhere "
    "(Cb = Cr = the neutral value), so there is no colour to deflicker; colorize it first with `chromaflow "
    "colorize` (its temporal smoothing already keeps the colour steady)"
)

Kind = Literal["colour", "neutral", "flat"]


def picture_kind(l_star: NDArray[np.floating], ab: NDArray[np.floating]) -> Kind:
    """``colour``, ``neutral`` or ``flat`` for one frame's L* ``(h, w)`` and ab ``(2, h, w)`` (see the module)."""
    if float(np.max(np.hypot(ab[0], ab[1]), initial=0.0)) >= NEUTRAL_CHROMA:
        return "colour"
    if float(np.ptp(l_star)) < FLAT_LIGHTNESS:
        return "flat"
    return "neutral"


class GrayContentCheck:
    """Frames go in by :meth:`add`, in order from frame 0; :meth:`settle` raises :class:`InputError` once the
    first frames show the clip is gray (module docstring), and :attr:`done` turns true once the verdict is in."""

    def __init__(self, radius: int) -> None:
        self.radius = radius
        self.seen = 0
        self.done = False
        self._content: int | None = None  # the first frame that is not flat

    def add(self, l_star: NDArray[np.floating], ab: NDArray[np.floating]) -> None:
        """Classify the next frame (nothing happens once the verdict is in)."""
        if self.done:
            return
        kind = picture_kind(l_star, ab)
        if kind == "colour":
            self.done = True
        elif kind == "neutral" and self._content is None:
            self._content = self.seen
        self.seen += 1
        if not self.done and self._content is None and self.seen >= CHECK_LIMIT:
            self.done = True  # nothing but flat frames so far: nothing to judge

    def settle(self, final: bool = False) -> None:
        """Raise when the frames seen so far show a gray clip; ``final``: no more frames will come."""
        if self.done or self._content is None:
            if final:
                self.done = True
            return
        if final or self.seen > max(self._content, self.radius):
            raise InputError(GRAY_CONTENT_MESSAGE)
