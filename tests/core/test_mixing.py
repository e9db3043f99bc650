"""Two colour models as one (core/mixing.py) and the model side that follows the model (size=None, render_factor).

Nets are small random-weight ones (the same code paths as the full-size ones); a mix is checked through the whole
Y'CbCr path of the Colorizer, the one every host runs.
"""

import numpy as np
import pytest
import torch

from chromaflow.core import registry
from chromaflow.core.colorizer import DEFAULT_SIDE, Colorizer, load_sided, model_work_size
from chromaflow.core.colour import YCbCrFormat
from chromaflow.core.errors import ModelError, UsageError
from chromaflow.core.hints import Hint
from chromaflow.core.mixing import MixRule, members_of, mix_rule
from chromaflow.core.nets import builders
from chromaflow.core.nets.base import BaseColorNet
from chromaflow.core.nets.zhang import ECCV16
from chromaflow.core.options import ColorizeOptions, model_side

from support.model_cache import install_stand_in

FMT = YCbCrFormat("709", full_range=False, bits=8)


def _base(seed: int, side: int | None = None) -> BaseColorNet:
    torch.manual_seed(seed)
    net = BaseColorNet(width=8, temperature=0.03).eval()
    if side is not None:
        net.input_size = side  # type: ignore[assignment]  # a module may state its own default side
    return net


def _eccv16(seed: int = 1) -> ECCV16:
    torch.manual_seed(seed)
    net = ECCV16(width=4)
    with torch.no_grad():
        net.model8[6].weight.mul_(30)  # colours far from gray
    return net.eval()


@pytest.fixture(scope="module")
def y_planes() -> np.ndarray:
    gen = np.random.default_rng(3)
    ramp = (
        np.linspace(30, 220, 70, dtype=np.float32)[None, :]
        + np.linspace(0, -20, 50, dtype=np.float32)[:, None]
    )
    return np.stack([np.clip(ramp + gen.normal(0, 8, ramp.shape), 16, 235) for _ in range(3)]).astype(
        np.uint8
    )


def _chroma(colorizer: Colorizer, y: np.ndarray) -> np.ndarray:
    cb, cr = colorizer.colorize_ycbcr(y, FMT, factors=(2, 2))
    return np.stack([cb, cr])


def test_weight_one_is_the_first_model_and_zero_the_second_bit_for_bit(y_planes: np.ndarray) -> None:
    first, second = _base(0, side=48), _eccv16()
    alone_first = _chroma(Colorizer(first, device="cpu"), y_planes)
    alone_second = _chroma(Colorizer(second, device="cpu", size=40), y_planes)
    mixed_one = Colorizer((first, second), device="cpu", mix=1.0)
    mixed_one.members[1].size = 40
    assert mixed_one.sizes == (48, 40), "each member at its own side"
    assert np.array_equal(_chroma(mixed_one, y_planes), alone_first)
    mixed_zero = Colorizer((first, second), device="cpu", mix=0.0)
    mixed_zero.members[1].size = 40
    assert np.array_equal(_chroma(mixed_zero, y_planes), alone_second)
    half = _chroma(Colorizer((first, second), device="cpu", size=40), y_planes)
    assert not np.array_equal(half, alone_first) and not np.array_equal(half, alone_second)


def test_mean_is_the_weighted_mean_of_the_members_ab() -> None:
    first, second = _base(0, side=32), _base(5, side=24)
    l = torch.rand(2, 1, 30, 44) * 100
    a = Colorizer(first, device="cpu").predict_ab(l)
    b = Colorizer(second, device="cpu").predict_ab(l)
    mixed = Colorizer((first, second), device="cpu", mix=0.25).predict_ab(l)
    assert mixed.shape == (2, 2, 30, 44), "each member's ab is brought to the frame's size, then combined"
    torch.testing.assert_close(mixed, 0.25 * a + 0.75 * b, rtol=0, atol=1e-5)


def test_saturated_rule_picks_per_pixel_and_softness_blends() -> None:
    first = torch.tensor([[[[30.0, 0.0, -5.0]], [[0.0, 2.0, 5.0]]]])  # chroma 30, 2, 7.07
    second = torch.tensor([[[[-10.0, 20.0, 5.0]], [[10.0, 0.0, -5.0]]]])  # chroma 14.1, 20, 7.07 (a tie)
    hard = MixRule("saturated").combine(first, second)
    assert torch.equal(hard[..., 0], first[..., 0]) and torch.equal(hard[..., 1], second[..., 1])
    assert torch.equal(hard[..., 2], first[..., 2]), "ties go to the first model"
    soft = MixRule("saturated", softness=4.0).combine(first, second)
    assert torch.allclose(soft[..., 2], (first[..., 2] + second[..., 2]) / 2), "equal chroma: an even blend"
    share = torch.sigmoid(torch.tensor((30 - 200**0.5) / 4.0))
    torch.testing.assert_close(soft[..., 0], share * first[..., 0] + (1 - share) * second[..., 0])
    wide = MixRule("saturated", softness=1e6).combine(first, second)
    torch.testing.assert_close(wide, (first + second) / 2, rtol=0, atol=1e-3)


def test_hints_go_to_the_members_that_take_them() -> None:
    hinted, plain = _base(0, side=32), _eccv16()
    l = torch.full((1, 1, 32, 32), 50.0)
    hints = [Hint(16, 16, (40, 200, 60), 6)]
    alone = Colorizer(plain, device="cpu", size=32).predict_ab(l)
    only_plain = Colorizer((hinted, plain), device="cpu", size=32, mix=0.0)
    assert only_plain.accepts_hints
    assert torch.equal(only_plain.predict_ab(l, hints), alone), "the hint-less member runs without them"
    mixed = Colorizer((hinted, plain), device="cpu", size=32)
    assert not torch.equal(mixed.predict_ab(l, hints), mixed.predict_ab(l)), "the hint-aware member uses them"
    with pytest.raises(UsageError, match="neither model of the mix takes colour hints"):
        Colorizer((plain, _eccv16(2)), device="cpu", size=32).predict_ab(l, hints)


def test_the_model_side_follows_the_model(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Colorizer("base", device="cpu").size == registry.get_spec("base").input_size
    assert load_sided(_base(0))[1] == DEFAULT_SIDE, "a module that says nothing runs at 256"
    assert load_sided(_base(0, side=96))[1] == 96
    path = tmp_path / "fine-tune.pt"
    torch.save({"arch": "eccv16", "state_dict": _eccv16().state_dict()}, path)
    assert load_sided(path)[1] == builders.builder_for("eccv16").input_size, (
        "the architecture the file records"
    )
    plain = tmp_path / "plain.pt"
    torch.save(_eccv16().state_dict(), plain)
    assert load_sided(plain, "eccv16")[1] == builders.builder_for("eccv16").input_size
    install_stand_in(monkeypatch, "eccv16")
    both = Colorizer("base+eccv16", device="cpu")
    assert both.name == "base+eccv16" and both.sizes == (256, registry.get_spec("eccv16").input_size)
    assert Colorizer("base+eccv16", device="cpu", size=64).sizes == (64, 64), "--size sets every member"
    assert Colorizer("base", device="cpu", render_factor=21).size == 336


def test_render_factor_is_sixteen_times_the_side_and_not_with_size() -> None:
    assert model_side(None, None) is None and model_side(64, None) == 64 and model_side(None, 35) == 560
    with pytest.raises(UsageError, match="give one of them"):
        model_side(256, 16)
    with pytest.raises(UsageError, match="whole number >= 1"):
        ColorizeOptions(render_factor=0)
    with pytest.raises(UsageError, match="multiple of 8"):
        ColorizeOptions(size=100)
    assert ColorizeOptions(render_factor=21).new_colorizer().size == 336  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("model", "error", "message"),
    [
        ("base+eccv16+siggraph17", UsageError, r"a mix takes two: --model A\+B"),
        (("base", "eccv16", "base"), UsageError, "a mix takes two"),
        ("base+", UsageError, "empty model name"),
        ("base+meso4-df", UsageError, "is a classifier, not a colorizer: use base"),
        ("base+nosuchmodel", ModelError, "unknown model 'nosuchmodel': use one of base"),
        (("base", 3), UsageError, "a mix member must be a model name"),
    ],
)
def test_bad_mixes_say_what_to_do(model: object, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        Colorizer(model, device="cpu")  # type: ignore[arg-type]


def test_mix_options_need_a_mix_and_their_own_rule() -> None:
    with pytest.raises(UsageError, match="combine two models: give the model as A\\+B"):
        ColorizeOptions(model="base", mix=0.3)
    with pytest.raises(UsageError, match="combines two models"):
        Colorizer("base", device="cpu", mix=0.3)
    with pytest.raises(UsageError, match="saturated rule picks per pixel"):
        ColorizeOptions(model="base+eccv16", mix=0.3, mix_rule="saturated")
    with pytest.raises(UsageError, match="belongs to --mix-rule saturated"):
        mix_rule(None, "mean", 2.0)
    with pytest.raises(UsageError, match="from 0 to 1"):
        ColorizeOptions(model="base+eccv16", mix=1.5)
    with pytest.raises(UsageError, match="unknown mix rule 'max'"):
        ColorizeOptions(model=("base", "eccv16"), mix_rule="max")
    assert ColorizeOptions(model="base+eccv16", mix_rule="saturated").mix_rule_of() == MixRule("saturated")
    assert members_of("base") == ("base",) and members_of(" base + eccv16 ") == ("base", "eccv16")


def test_an_existing_file_with_a_plus_in_its_name_is_one_model(tmp_path) -> None:
    path = tmp_path / "base+tuned.pt"
    torch.save({"arch": "base", "state_dict": _base(0).state_dict()}, path)
    assert members_of(str(path)) == (str(path),)
    assert Colorizer(str(path), device="cpu", size=32).name == str(path)


def test_model_work_size_feeds_a_large_model_more_than_the_working_copy() -> None:
    assert model_work_size((1080, 1920), (270, 480), 256) == (270, 480), "256 px: the working copy as before"
    assert model_work_size((1080, 1920), (270, 480), 512) == (512, 910)
    assert model_work_size((1080, 1920), (270, 480), 2000) == (1080, 1920), "never larger than the frame"
    assert model_work_size((200, 300), (200, 300), 512) == (200, 300)


def test_both_engines_give_a_large_model_the_larger_copy_and_agree() -> None:
    """A model side above the working copy's: the video engine and the device engine both run the net on the
    frame shrunk to that side, bring its ab back to the working size, and still write the same code values."""
    import cv2

    from chromaflow.core.colorizer import ycbcr_chroma, ycbcr_lightness
    from chromaflow.core.device_engine import ChromaLayout, DeviceColorizer
    from chromaflow.core.transfer import PropagationParams
    from chromaflow.core.video import VideoColorizer

    colorizer = Colorizer(_base(0, side=96), device="cpu")
    seen: list[tuple[int, int]] = []
    predict = colorizer.predict_ab

    def spy(l: torch.Tensor, *args, **kwargs) -> torch.Tensor:  # type: ignore[no-untyped-def]
        seen.append(tuple(l.shape[-2:]))
        return predict(l, *args, **kwargs)

    colorizer.predict_ab = spy  # type: ignore[method-assign]
    params = PropagationParams(max_side=60)  # working copy 34x60 of a 120x214 frame: shorter than the side 96
    rng = np.random.default_rng(7)
    ys = [
        np.round(16 + 219 * cv2.normalize(cv2.GaussianBlur(rng.random((120, 214)).astype(np.float32), (0, 0), 3),
                                          None, 0, 1, cv2.NORM_MINMAX)).astype(np.uint8)
        for _ in range(2)
    ]  # fmt: skip
    layout = ChromaLayout(FMT, (2, 2), "left")
    ours = DeviceColorizer(colorizer, params).chroma(torch.from_numpy(np.stack(ys)), layout).numpy()
    assert seen == [(96, 171)]
    ls = [ycbcr_lightness(y, FMT).numpy() for y in ys]
    video = VideoColorizer(2, lambda n: ls[n], colorizer=colorizer, params=params)
    ref = np.stack(
        [
            ycbcr_chroma(torch.from_numpy(ls[n])[None, None], torch.from_numpy(video.ab(n))[None], FMT, (2, 2), "left")[0].numpy()
            for n in range(2)
        ]
    )  # fmt: skip
    assert seen[1:] == [(96, 171)], "the video engine's block ran the net once, on the larger copy"
    diff = np.abs(ours.astype(np.int64) - ref.astype(np.int64))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-2 and ref.std() > 1.0
