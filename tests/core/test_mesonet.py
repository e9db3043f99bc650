"""MesoNet ports against the reference Keras outputs, and clear errors for bad weight files."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from chromaflow.core.errors import ModelError
from chromaflow.core.nets.mesonet import load_meso

FILES = ["Meso4_DF", "Meso4_F2F", "MesoInception_DF", "MesoInception_F2F"]


def _inputs(shared: Path, names: list[str]) -> torch.Tensor:
    image = pytest.importorskip("PIL.Image")
    arrays = []
    for name in names:
        if name.startswith("random"):
            seed = int(name.split("default_rng(")[1].split(")")[0])
            arrays.append(np.random.default_rng(seed).random((256, 256, 3), dtype=np.float32))
        else:
            im = image.open(shared / "data/deepfake-dev/mesonet-test-images" / name).convert("RGB")
            arrays.append(np.asarray(im.resize((256, 256), image.BILINEAR), dtype=np.float32) / 255)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


@pytest.mark.parametrize("name", FILES)
def test_logits_match_reference(shared: Path, name: str) -> None:
    ref = json.loads((shared / "reference/mesonet_reference_outputs.json").read_text())
    net = load_meso(None, shared / "models/mesonet" / f"{name}.h5")
    with torch.no_grad():
        logits = net(_inputs(shared, ref["inputs"])).numpy()
    np.testing.assert_allclose(logits, ref["logits"][name], atol=1e-3)
    # the DF models tell the two fake test faces from the two real ones
    if name.endswith("DF"):
        assert (logits[:2] < 0).all() and (logits[2:4] > 0).all()


def test_corrupt_file_is_a_model_error(tmp_path: Path) -> None:
    bad = tmp_path / "Meso4_DF.h5"
    bad.write_bytes(b"\x89HDF\r\n\x1a\n" + b"garbage" * 100)
    with pytest.raises(ModelError, match="download"):
        load_meso("meso4", bad)


def test_missing_file_and_wrong_architecture(shared: Path, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        load_meso("meso4", tmp_path / "none.h5")
    with pytest.raises(ModelError, match="MesoInception4 needs"):
        load_meso("mesoinception4", shared / "models/mesonet/Meso4_DF.h5")
