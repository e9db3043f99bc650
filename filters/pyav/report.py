"""TranscodeReport: what one :func:`~chromaflow.filters.pyav.transcoding.transcode` run did.

The pipeline's stages fill it in as they go (frames in and out, damage found, the streams copied or dropped, the
encoder chosen); the CLI's ``--json`` prints :meth:`TranscodeReport.to_json`.
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TranscodeReport:
    """What a run did; ``to_json()`` is the CLI's ``--json`` summary."""

    input: str
    output: str
    frames_in: int = 0
    frames_out: int = 0
    decode_errors: int = 0
    corrupt_frames: int = 0
    skipped_packets: int = 0
    expected_frames: int | None = None
    warnings: list[str] = field(default_factory=list)
    width: int = 0
    height: int = 0
    codec: str = ""
    pix_fmt: str = ""
    copied_streams: list[str] = field(default_factory=list)
    dropped_streams: list[str] = field(default_factory=list)
    seconds: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def fps(self) -> float:
        return self.frames_out / self.seconds if self.seconds > 0 else 0.0

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "output": self.output,
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "decode_errors": self.decode_errors,
            "corrupt_frames": self.corrupt_frames,
            "skipped_packets": self.skipped_packets,
            "expected_frames": self.expected_frames,
            "warnings": self.warnings,
            "width": self.width,
            "height": self.height,
            "codec": self.codec,
            "pix_fmt": self.pix_fmt,
            "copied_streams": self.copied_streams,
            "dropped_streams": self.dropped_streams,
            "seconds": round(self.seconds, 3),
            "fps": round(self.fps, 2),
            **self.extra,
        }
