"""Training images: found in a folder tree, split by a hash of their path, held in memory and cropped at random."""

import hashlib
import math
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import Tensor

from chromaflow.core.errors import InputError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".ppm", ".pgm", ".jp2", ".exr")


def list_images(folder: Path) -> list[Path]:
    """All image files under ``folder`` (recursively), sorted; raises InputError when there are none."""
    if not folder.is_dir():
        raise InputError(f"training data folder {folder} does not exist; pass a folder of images with --data")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise InputError(f"no images ({', '.join(IMAGE_SUFFIXES)}) found under {folder}")
    return files


def split_files(files: Sequence[Path], root: Path, val_fraction: float) -> tuple[list[Path], list[Path]]:
    """Deterministic train/validation split by a hash of each file's path relative to ``root``."""
    train: list[Path] = []
    val: list[Path] = []
    for f in files:
        h = int(hashlib.sha1(str(f.relative_to(root)).encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (val if h < val_fraction else train).append(f)
    if not train:
        train, val = list(val), []
    return train, val


def load_rgb(path: Path, max_side: int, min_side: int) -> np.ndarray:
    """An image as RGB uint8, scaled down so its shorter side is at most ``max_side``."""
    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if img is None:
        raise InputError(f"cannot read image {path}; remove it or convert it to PNG/JPEG")
    h, w = img.shape[:2]
    factor = max_side / min(h, w)
    if factor < 1:
        img = cv2.resize(img, (round(w * factor), round(h * factor)), interpolation=cv2.INTER_AREA)
    h, w = img.shape[:2]
    if min(h, w) < min_side:
        factor = min_side / min(h, w)
        img = cv2.resize(img, (math.ceil(w * factor), math.ceil(h * factor)), interpolation=cv2.INTER_CUBIC)
    return cv2.cvtColor(img, cv2.COLOR_BGR2RGB)


class ImageBank:
    """Images held in memory, with random crops, scales and flips drawn from a given generator."""

    def __init__(self, images: Sequence[np.ndarray], size: int) -> None:
        if not images:
            raise InputError("the training set is empty")
        self.images = list(images)
        self.size = size

    @classmethod
    def from_files(cls, files: Sequence[Path], size: int, max_side: int) -> "ImageBank":
        return cls([load_rgb(f, max_side, size) for f in files], size)

    def sample(self, rng: np.random.Generator, batch: int) -> Tensor:
        """(batch, 3, size, size) sRGB in [0, 1]: random image, scale, crop and horizontal flip."""
        out = np.empty((batch, self.size, self.size, 3), dtype=np.uint8)
        for i in range(batch):
            out[i] = self.crop(self.images[int(rng.integers(len(self.images)))], rng)
        return torch.from_numpy(out).permute(0, 3, 1, 2).float() / 255.0

    def crop(self, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """One augmented (size, size, 3) uint8 crop of ``img``: random scale, position and horizontal flip."""
        h, w = img.shape[:2]
        low = self.size / min(h, w)
        factor = float(rng.uniform(low, max(low, 1.0)))
        if factor != 1.0:
            nw, nh = max(self.size, round(w * factor)), max(self.size, round(h * factor))
            img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_LINEAR)
        y = int(rng.integers(img.shape[0] - self.size + 1))
        x = int(rng.integers(img.shape[1] - self.size + 1))
        crop = img[y : y + self.size, x : x + self.size]
        return crop[:, ::-1] if rng.random() < 0.5 else crop

    def centre_crops(self) -> Tensor:
        """Every image scaled to the crop size on its shorter side and centre-cropped (for validation)."""
        crops = []
        for img in self.images:
            h, w = img.shape[:2]
            f = self.size / min(h, w)
            img = cv2.resize(
                img, (max(self.size, round(w * f)), max(self.size, round(h * f))), interpolation=3
            )
            y, x = (img.shape[0] - self.size) // 2, (img.shape[1] - self.size) // 2
            crops.append(img[y : y + self.size, x : x + self.size])
        return torch.from_numpy(np.stack(crops)).permute(0, 3, 1, 2).float() / 255.0
