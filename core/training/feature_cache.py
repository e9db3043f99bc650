"""Frozen-encoder features of augmented training crops, computed once and kept on disk.

Why: ``base-v2``'s encoder (ImageNet MobileNetV2) stays frozen up to its stride-16 stages, so on a CPU most of a
training step would recompute the same maps. The cache holds ``crops_per_image`` augmented crops of every training
image (uint8 sRGB, drawn from generators seeded with ``(seed, image, crop)``) and their stride 4, 8 and 16 maps
(float16, memory-mapped ``.npy`` files); the trainer then runs only the stride-32 stages and the decoder. Stride 32
is recomputed from the cached stride-16 map every step, which is what lets the last stages be fine-tuned on the same
cache.

A cache is reused only when its ``meta.json`` matches the crop size, crop count, seed, the images' pixels and the
frozen encoder blocks' weights; otherwise it is rebuilt. It is written into a temporary folder and renamed into
place, so an interrupted build leaves no half cache.
"""

import hashlib
import json
import logging
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from numpy.lib.format import open_memmap
from torch import Tensor

from chromaflow.core.colour import rgb_to_lab
from chromaflow.core.errors import OutputError
from chromaflow.core.nets.base_v2 import FINETUNE_FROM, BaseV2ColorNet
from chromaflow.core.nets.mobilenet_v2 import CHANNELS, imagenet_gray
from chromaflow.core.training.data import ImageBank

log = logging.getLogger(__name__)

CACHE_FORMAT = "chromaflow-feature-cache-1"
CACHED_STRIDES = (4, 8, 16)
_CROP_STREAM = 7_000_003  # keeps the crop generators apart from the batch generators (seed, step)


def frozen_digest(net: BaseV2ColorNet) -> str:
    """SHA-256 of the encoder blocks whose output the cache holds (those before :data:`FINETUNE_FROM`)."""
    h = hashlib.sha256()
    for i in range(FINETUNE_FROM):
        for key, value in net.encoder.features[i].state_dict().items():
            h.update(f"{i}.{key}".encode())
            h.update(value.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def images_digest(bank: ImageBank) -> str:
    """SHA-256 of the bank's pixels and shapes, in order."""
    h = hashlib.sha256()
    for img in bank.images:
        h.update(str(img.shape).encode())
        h.update(np.ascontiguousarray(img).tobytes())
    return h.hexdigest()


class FeatureCache:
    """An opened cache: ``len(cache)`` crops, :meth:`batch` reads some of them."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.meta = json.loads((self.folder / "meta.json").read_text())
        self.rgb = np.load(self.folder / "rgb.npy", mmap_mode="r")
        self.maps = {s: np.load(self.folder / f"f{s}.npy", mmap_mode="r") for s in CACHED_STRIDES}

    def __len__(self) -> int:
        return int(self.rgb.shape[0])

    def batch(self, index: np.ndarray) -> tuple[Tensor, dict[int, Tensor]]:
        """sRGB crops (B, 3, S, S) in [0, 1] and their float32 maps ``{4, 8, 16: (B, C, h, w)}``."""
        order = np.asarray(index, dtype=np.int64)
        rgb = torch.from_numpy(np.ascontiguousarray(self.rgb[order])).permute(0, 3, 1, 2).float() / 255.0
        maps = {s: torch.from_numpy(np.ascontiguousarray(m[order])).float() for s, m in self.maps.items()}
        return rgb, maps


def open_or_build(
    folder: Path,
    net: BaseV2ColorNet,
    bank: ImageBank,
    crops_per_image: int,
    seed: int,
    device: torch.device,
    chunk: int = 32,
    progress: bool = True,
) -> FeatureCache:
    """The cache at ``folder`` for these images, crops and frozen encoder, built first when absent or stale."""
    folder = Path(folder)
    wanted = {
        "format": CACHE_FORMAT,
        "size": bank.size,
        "crops_per_image": crops_per_image,
        "seed": seed,
        "images": len(bank.images),
        "images_sha256": images_digest(bank),
        "encoder_sha256": frozen_digest(net),
    }
    meta = folder / "meta.json"
    if meta.is_file():
        try:
            if json.loads(meta.read_text()) == wanted:
                cache = FeatureCache(folder)
                if len(cache) == len(bank.images) * crops_per_image:
                    return cache
        except (OSError, ValueError):  # unreadable or truncated: rebuilt below
            pass
        log.info("feature cache %s is stale; rebuilding it", folder)
    elif folder.exists() and (not folder.is_dir() or any(folder.iterdir())):
        raise OutputError(
            f"{folder} exists and is not a feature cache; give --feature-cache an empty or new folder"
        )
    if not folder.parent.is_dir():
        raise OutputError(
            f"folder {folder.parent} does not exist; create it or choose another --feature-cache"
        )
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.part")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        tmp.mkdir()
        _write(tmp, net, bank, crops_per_image, seed, device, chunk, progress)
        (tmp / "meta.json").write_text(json.dumps(wanted, indent=1))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except OSError as err:
        raise OutputError(
            f"cannot write the feature cache {folder}: {err}; free some space (about "
            f"{_bytes_per_crop(bank.size) * len(bank.images) * crops_per_image / 1e9:.1f} GB) or choose another "
            "--feature-cache"
        ) from err
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return FeatureCache(folder)


def _bytes_per_crop(size: int) -> int:
    """Disk bytes of one cached crop: its uint8 pixels and float16 maps."""
    return size * size * 3 + sum(2 * CHANNELS[s] * (size // s) ** 2 for s in CACHED_STRIDES)


def _write(
    tmp: Path,
    net: BaseV2ColorNet,
    bank: ImageBank,
    crops_per_image: int,
    seed: int,
    device: torch.device,
    chunk: int,
    progress: bool,
) -> None:
    from tqdm import tqdm

    size, total = bank.size, len(bank.images) * crops_per_image
    rgb_out = open_memmap(tmp / "rgb.npy", mode="w+", dtype=np.uint8, shape=(total, size, size, 3))
    maps_out = {
        s: open_memmap(
            tmp / f"f{s}.npy", mode="w+", dtype=np.float16, shape=(total, CHANNELS[s], size // s, size // s)
        )
        for s in CACHED_STRIDES
    }
    for i, img in enumerate(bank.images):
        for k in range(crops_per_image):
            rgb_out[i * crops_per_image + k] = bank.crop(
                img, np.random.default_rng([seed, _CROP_STREAM, i, k])
            )
    was_training = net.training
    net.eval()
    with (
        torch.no_grad(),
        tqdm(total=total, file=sys.stderr, disable=not progress, unit="crop", leave=False) as bar,
    ):
        for start in range(0, total, chunk):
            rgb = torch.from_numpy(np.ascontiguousarray(rgb_out[start : start + chunk]))
            l = rgb_to_lab(rgb.permute(0, 3, 1, 2).float().div(255.0))[:, :1].to(device)
            maps = net.encoder(imagenet_gray(l), CACHED_STRIDES)
            for s in CACHED_STRIDES:
                maps_out[s][start : start + chunk] = maps[s].half().cpu().numpy()
            bar.update(rgb.shape[0])
    net.train(was_training)
    rgb_out.flush()
    for m in maps_out.values():
        m.flush()
    del rgb_out, maps_out
