"""The roofline script's counting: FLOPs and bytes of tiny nets and ops against hand-computed values."""

from types import ModuleType

import pytest
import torch
from torch import nn

from support.scripts import load_benchmark


@pytest.fixture(scope="module")
def roofline() -> ModuleType:
    return load_benchmark("roofline")


class TinyNet(nn.Module):
    """conv 1->4 (3x3, pad 1, no bias) -> ReLU -> conv 4->2 (1x1, with bias), on (1, 1, 8, 8)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 4, 3, padding=1, bias=False)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(4, 2, 1)
        self.unused = nn.Linear(100, 100)  # never called: its weights must not count

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.relu(self.conv1(x)))


@pytest.mark.parametrize("device", ["cpu", "meta"])
def test_flops_and_elements_of_a_tiny_conv_net(roofline: ModuleType, device: str) -> None:
    net = TinyNet().to(device)
    count = roofline.count_model(net, [torch.zeros(1, 1, 8, 8, device=device)])
    # multiply-adds: conv1 4 out x 1 in x 9 taps x 64 pixels, conv2 2 x 4 x 64; 2 FLOPs each
    assert count.flops == 2 * (4 * 1 * 9 * 64 + 2 * 4 * 64)
    # weights that ran: conv1 36, conv2 8 + 2 bias (the unused Linear's 10,100 left out)
    assert count.weight_elements == 36 + 10
    # each leaf reads its input and writes its output: conv1 64 + 256, relu 256 + 256, conv2 256 + 128
    assert count.activation_elements == (64 + 256) + (256 + 256) + (256 + 128)


def test_bytes_per_frame_amortise_weights_over_the_batch(roofline: ModuleType) -> None:
    count = roofline.ModelCount(flops=1000, weight_elements=800, activation_elements=100, eager_bytes=0)
    assert count.bytes_per_frame(4, 1) == (100 + 800) * 4
    assert count.bytes_per_frame(2, 8) == (100 + 100) * 2
    assert count.intensity(2, 8) == pytest.approx(1000 / 400)


def test_byte_count_of_a_known_conv_layer(roofline: ModuleType) -> None:
    """A 3x3 conv 16->32 on (1, 16, 32, 32) float32: input 64 KiB read, output 128 KiB written, weights 18 KiB."""
    conv = nn.Conv2d(16, 32, 3, padding=1, bias=False).to("meta")
    count = roofline.count_model(conv, [torch.zeros(1, 16, 32, 32, device="meta")])
    assert count.activation_elements * 4 == 16 * 32 * 32 * 4 + 32 * 32 * 32 * 4
    assert count.weight_elements * 4 == 32 * 16 * 9 * 4
    assert count.flops == 2 * 32 * 16 * 9 * 32 * 32


def test_traffic_counter_counts_reads_and_writes_and_skips_views(roofline: ModuleType) -> None:
    a = torch.ones(1000)
    b = torch.ones(1000)
    counter = roofline.TrafficCounter()
    with counter:
        c = a + b  # 8000 bytes read, 4000 written, 1000 elements computed
        v = c.view(10, 100).t()  # views: free
        d = torch.empty(1000)  # allocation: free
        d.copy_(a)  # 4000 read (the source), 4000 written; no FLOPs
        e = torch.ones(1, 1000).expand(50, 1000) * 2.0  # the broadcast input is one row of memory: 4000 read
    assert v.shape == (100, 10) and e.shape == (50, 1000)
    t = counter.traffic
    assert t.read == 8000 + 4000 + 4000
    assert t.written == 4000 + 4000 + 4000 + 50 * 1000 * 4  # torch.ones(1, 1000) itself is a write of 4000
    assert t.elements == 1000 + 50 * 1000  # add and mul compute; the fill and the copy do not


def test_roofline_bound_takes_the_lower_roof(roofline: ModuleType) -> None:
    # intensity 10 FLOP/B: with 100 GB/s the bandwidth roof is 1 TFLOP/s, under a 2 TFLOP/s compute roof
    assert roofline.roofline_fps(1e9, 1e8, 2e12, 1e11) == pytest.approx(1000.0)
    # intensity 100 FLOP/B: compute-bound at 2 TFLOP/s
    assert roofline.roofline_fps(1e9, 1e7, 2e12, 1e11) == pytest.approx(2000.0)
    # no FLOPs (a pure data-movement stage): bandwidth alone
    assert roofline.roofline_fps(0, 1e6, 2e12, 1e11) == pytest.approx(1e5)


def test_stage_bytes_of_the_full_resolution_steps(roofline: ModuleType) -> None:
    """Stage I/O = planes in + planes out at their dtypes; the eager count can only be larger."""
    from chromaflow.core.colour import YCbCrFormat

    fmt = YCbCrFormat("709", full_range=False, bits=8)
    y = torch.arange(8 * 16, dtype=torch.uint8).view(1, 8, 16) + 16
    ab_small = torch.full((1, 2, 4, 4), 5.0)
    stages = {s.name: s for s in roofline.count_stages(y, ab_small, fmt, torch.device("cpu"), 1)}
    assert len(stages) == 4
    assert stages["Y' -> L* (table)"].stage_io_bytes == 8 * 16 * 1 + 8 * 16 * 4  # uint8 in, float32 L* out
    assert stages["ab upsample"].stage_io_bytes == 2 * 4 * 4 * 4 + 2 * 8 * 16 * 4
    # the join reads L* and ab (float32) and writes int32 Cb/Cr at 4:2:0
    assert stages["in-gamut join -> Y'CbCr 4:2:0 (eager)"].stage_io_bytes == 3 * 8 * 16 * 4 + 2 * 4 * 8 * 4
    for stage in stages.values():
        assert stage.eager_bytes >= stage.stage_io_bytes
        assert stage.seconds > 0
