"""Device and precision policy."""

import pytest
import torch

from chromaflow.core.device import Placement, resolve_device, resolve_precision
from chromaflow.core.errors import DeviceError, UsageError

needs_no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks behaviour without CUDA")


def test_auto_and_cpu() -> None:
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    assert resolve_device("cpu") == torch.device("cpu")


def test_environment_variable_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHROMAFLOW_DEVICE", "cpu")
    assert resolve_device(None) == torch.device("cpu")


@needs_no_cuda
def test_cuda_requested_without_cuda_says_what_to_do() -> None:
    with pytest.raises(DeviceError, match="--device cpu"):
        resolve_device("cuda")
    with pytest.raises(DeviceError):
        resolve_device("cuda:1")


def test_unknown_device_and_precision() -> None:
    with pytest.raises(UsageError, match="unknown device"):
        resolve_device("tpu")
    with pytest.raises(UsageError, match="as in cuda:0"):
        resolve_device("cuda:x")
    with pytest.raises(UsageError, match="unknown precision"):
        resolve_precision("int8", torch.device("cpu"))


def test_precision_policy() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == torch.float32
    assert resolve_precision(None, cpu) == torch.float32
    assert resolve_precision("bf16", cpu) == torch.bfloat16
    assert resolve_precision("fp16", cpu) == torch.float16
    placement = Placement.resolve("cpu", "fp32")
    assert placement.dtype == torch.float32 and "CPU" in placement.describe()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_precision_on_cuda_is_reduced() -> None:
    placement = Placement.resolve("cuda", "auto")
    assert placement.dtype in (torch.bfloat16, torch.float16)
