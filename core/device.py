"""Device and precision policy shared by every host.

``device``: ``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``; ``None`` reads
``$CHROMAFLOW_DEVICE`` and falls back to ``"auto"``.
``precision``: ``"auto"`` (bf16 on CUDA devices that support it, else fp16; fp32 on CPU), ``"fp32"``, ``"fp16"``
or ``"bf16"``.
"""

import os
from dataclasses import dataclass

import torch

from chromaflow.core.errors import DeviceError, UsageError

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(spec: str | torch.device | None = None) -> torch.device:
    """Turn a device request into a usable :class:`torch.device`, or raise :class:`DeviceError`."""
    if isinstance(spec, torch.device):
        spec = str(spec)
    if spec is None:
        spec = os.environ.get("CHROMAFLOW_DEVICE") or "auto"
    spec = spec.strip().lower()
    if spec == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        index = 0 if spec == "cuda" else _parse_index(spec)
        if not torch.cuda.is_available():
            raise DeviceError(
                f"device {spec!r} was requested but no CUDA device is available "
                f"(torch {torch.__version__}, CUDA build {torch.version.cuda or 'none'}); "
                "use --device cpu or --device auto, or install a CUDA build of torch and an NVIDIA driver"
            )
        count = torch.cuda.device_count()
        if index >= count:
            raise DeviceError(
                f"device {spec!r} does not exist: {count} CUDA device(s) are visible (cuda:0..)"
            )
        return torch.device(f"cuda:{index}")
    raise UsageError(f"unknown device {spec!r}: use auto, cpu, cuda or cuda:N")


def _parse_index(spec: str) -> int:
    tail = spec.split(":", 1)[1]
    if not tail.isdigit():
        raise UsageError(f"unknown device {spec!r}: the CUDA index must be a number, as in cuda:0")
    return int(tail)


def resolve_precision(spec: str | None, device: torch.device) -> torch.dtype:
    """Pick the compute dtype for ``device``; fp16/bf16 on CPU are honoured when asked for explicitly."""
    spec = (spec or "auto").strip().lower()
    if spec == "auto":
        if device.type == "cuda":
            return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
        return torch.float32
    if spec not in PRECISIONS:
        raise UsageError(f"unknown precision {spec!r}: use auto, fp32, fp16 or bf16")
    return PRECISIONS[spec]


@dataclass(frozen=True)
class Placement:
    """Where and in which dtype the engine computes."""

    device: torch.device
    dtype: torch.dtype

    @classmethod
    def resolve(cls, device: str | torch.device | None = None, precision: str | None = None) -> "Placement":
        dev = resolve_device(device)
        return cls(dev, resolve_precision(precision, dev))

    def describe(self) -> str:
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else "CPU"
        return f"{self.device} ({name}), {str(self.dtype).removeprefix('torch.')}"


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generators and return a CPU generator for code that takes one explicitly."""
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    gen = torch.Generator()
    gen.manual_seed(seed)
    return gen
