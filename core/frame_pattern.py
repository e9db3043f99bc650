"""FFmpeg's image-sequence numbering (``frames/%05d.png``): which file names a pattern names.

FFmpeg writes frame n of ``%0Nd`` (``%Nd`` is read the same way; ``%d`` has width 0) as n in decimal, zero-padded
to N digits, and ``%%`` is a literal ``%``. So ``%d`` and ``%01d`` name the same files, while ``%05d`` names
``00001.png`` and never ``1.png``. Comparing the files two patterns name, rather than their text, is what keeps an
output sequence off its own input frames.
"""

import re
from dataclasses import dataclass
from typing import Self

_NUMBER = re.compile(r"%(\d*)d")


@dataclass(frozen=True)
class FramePattern:
    """A file-name pattern split at its frame number: ``prefix``, zero-padding ``width``, ``suffix``."""

    prefix: str
    width: int
    suffix: str

    @classmethod
    def find(cls, name: str) -> Self | None:
        """The pattern of the file name ``name`` (no folder), or ``None`` when it holds no frame number."""
        text: list[str] = []
        i = 0
        while i < len(name):
            if name.startswith("%%", i):
                text.append("%")
                i += 2
                continue
            number = _NUMBER.match(name, i)
            if number is not None:
                return cls("".join(text), int(number.group(1) or 0), name[number.end() :].replace("%%", "%"))
            text.append(name[i])
            i += 1
        return None

    @classmethod
    def parse(cls, name: str) -> Self:
        found = cls.find(name)
        if found is None:
            raise ValueError(f"{name!r} holds no frame number such as %d or %05d")
        return found

    def name_of(self, number: int) -> str:
        """The file name of frame ``number``."""
        return f"{self.prefix}{str(number).zfill(self.width)}{self.suffix}"

    def names(self, filename: str) -> int | None:
        """The frame number whose file name is ``filename``, or ``None`` when the pattern never writes it."""
        if len(filename) <= len(self.prefix) + len(self.suffix):
            return None
        if not (filename.startswith(self.prefix) and filename.endswith(self.suffix)):
            return None
        digits = filename[len(self.prefix) : len(filename) - len(self.suffix)]
        if not (digits.isascii() and digits.isdigit()):
            return None
        number = int(digits)
        return number if self.name_of(number) == filename else None
