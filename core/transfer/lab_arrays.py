"""numpy-facing Lab helpers: images in, L* / ab planes out, and back (keyframe transfer, and the hosts' image I/O).

Conventions: an RGB image is ``(H, W, 3)`` sRGB (uint8, uint16 or float in [0, 1]), the image I/O layout; L* is an
``(H, W)`` float32 plane in [0, 100]; ab is channels-first ``(2, H, W)`` float32, as everywhere in core. The
transfer maths works on OpenCV's ``(H, W, 2)`` layout and converts with :func:`hwc` / :func:`chw` at its own edges.
The colour maths is :mod:`chromaflow.core.colour` (torch, D65), run on the CPU.
"""

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from chromaflow.core.arrays import F32
from chromaflow.core.colour import lab_to_rgb, rgb_to_lab
from chromaflow.core.errors import InputError
from chromaflow.core.image_files import imread_capped


def as_rgb_float(image: NDArray[np.generic]) -> F32:
    """An RGB (or gray, replicated) image as float32 ``(H, W, 3)`` in [0, 1]."""
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 4:
        arr = arr[..., :3]
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    if arr.ndim != 3 or arr.shape[2] != 3:
        raise InputError(f"expected an RGB image of shape (H, W, 3), got shape {np.shape(image)}")
    if arr.dtype == np.uint8:
        return arr.astype(np.float32) / np.float32(255.0)
    if arr.dtype == np.uint16:
        return arr.astype(np.float32) / np.float32(65535.0)
    if np.issubdtype(arr.dtype, np.floating):
        return np.clip(arr.astype(np.float32), 0.0, 1.0)
    raise InputError(f"unsupported image sample type {arr.dtype}: use uint8, uint16 or float in [0, 1]")


def hwc(ab: F32) -> F32:
    """Channels-first ab ``(2, H, W)`` as the transfer maths' ``(H, W, 2)`` (contiguous; values and type kept)."""
    return np.ascontiguousarray(ab.transpose(1, 2, 0))


def chw(ab: F32) -> F32:
    """The transfer maths' ab ``(H, W, 2)`` as channels-first ``(2, H, W)`` (contiguous; values and type kept)."""
    return np.ascontiguousarray(ab.transpose(2, 0, 1))


def rgb_to_lab_planes(image: NDArray[np.generic]) -> tuple[F32, F32]:
    """``(L* (H, W), ab (2, H, W))`` of an RGB image."""
    rgb = torch.from_numpy(np.ascontiguousarray(as_rgb_float(image).transpose(2, 0, 1)))
    lab = rgb_to_lab(rgb).numpy()
    return np.ascontiguousarray(lab[0], dtype=np.float32), np.ascontiguousarray(lab[1:], dtype=np.float32)


def lab_planes_to_rgb(l_star: NDArray[np.floating], ab: NDArray[np.floating], fast: bool = True) -> F32:
    """sRGB float32 ``(H, W, 3)`` in [0, 1] from L* ``(H, W)`` and ab ``(2, H, W)`` (clipped to the gamut).

    ``fast`` uses OpenCV's conversion; ``fast=False`` the reference torch one (:func:`.colour.lab_to_rgb`).
    """
    l_arr = np.asarray(l_star, dtype=np.float32)
    ab_arr = np.asarray(ab, dtype=np.float32)
    if ab_arr.shape != (2, *l_arr.shape):
        raise InputError(
            f"ab of shape {ab_arr.shape} does not match L* of shape {l_arr.shape}; give ab as (2, H, W)"
        )
    if fast:
        # OpenCV's float Lab->RGB uses the same D65 white and sRGB matrix as chromaflow.core.colour and agrees
        # with it to about 1e-4 (tests/core/test_transfer.py checks); it is faster on the CPU.
        lab_hwc = np.empty((*l_arr.shape, 3), dtype=np.float32)
        lab_hwc[..., 0] = l_arr
        lab_hwc[..., 1:] = ab_arr.transpose(1, 2, 0)
        rgb_hwc = cv2.cvtColor(lab_hwc, cv2.COLOR_Lab2RGB)
        return np.asarray(np.clip(rgb_hwc, 0.0, 1.0, out=rgb_hwc), dtype=np.float32)
    lab = np.concatenate((l_arr[None], ab_arr), axis=0)
    rgb = lab_to_rgb(torch.from_numpy(np.ascontiguousarray(lab))).numpy()
    return np.ascontiguousarray(rgb.transpose(1, 2, 0), dtype=np.float32)


@lru_cache(maxsize=4)
def _gray_lut(levels: int) -> F32:
    """L* of every code value of an sRGB-encoded gray plane with ``levels`` code values."""
    v = torch.linspace(0.0, 1.0, levels, dtype=torch.float64).view(1, 1, levels).expand(3, 1, levels)
    return rgb_to_lab(v.contiguous())[0, 0].numpy().astype(np.float32)


def to_lightness(frame: NDArray[np.generic]) -> F32:
    """L* ``(H, W)`` of a frame given as L* float, an sRGB gray plane (uint8/uint16), or an RGB image.

    Float ``(H, W)`` planes are taken as L* in [0, 100]; integer planes as sRGB-encoded gray; ``(H, W, 3)`` as RGB.
    """
    arr = np.asarray(frame)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[..., 0]
    if arr.ndim == 3:
        return rgb_to_lab_planes(arr)[0]
    if arr.ndim != 2 or arr.size == 0:
        raise InputError(f"expected a luma plane (H, W) or an RGB frame (H, W, 3), got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return _gray_lut(256)[arr]
    if arr.dtype == np.uint16:
        return _gray_lut(65536)[arr]
    if np.issubdtype(arr.dtype, np.floating):
        return np.ascontiguousarray(arr, dtype=np.float32)
    raise InputError(f"unsupported luma sample type {arr.dtype}: use float L* in [0, 100], uint8 or uint16")


def resize_plane(plane: NDArray[np.generic], size: tuple[int, int]) -> F32:
    """A ``(H, W)`` or (OpenCV's layout) ``(H, W, C)`` float plane resized to ``size = (height, width)`` (area when
    shrinking); channels-first planes: :func:`resize_chw`."""
    arr = np.asarray(plane, dtype=np.float32)
    if arr.shape[:2] == tuple(size):
        return arr
    shrink = size[0] * size[1] < arr.shape[0] * arr.shape[1]
    out = cv2.resize(arr, (size[1], size[0]), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return np.asarray(out, dtype=np.float32).reshape(size[0], size[1], *arr.shape[2:])


def resize_chw(planes: F32, size: tuple[int, int]) -> F32:
    """Channels-first planes ``(C, H, W)`` resized to ``size = (height, width)`` like :func:`resize_plane`."""
    return chw(resize_plane(hwc(planes), size))


def load_rgb(path: str | Path) -> F32:
    """An image file as float32 RGB ``(H, W, 3)`` in [0, 1] (whatever OpenCV reads; 8 or 16 bit; alpha dropped)."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"reference image {p} does not exist; check the path")
    img = imread_capped(p)
    if img is None:
        raise InputError(f"cannot read reference image {p}; use a PNG, JPEG or TIFF file")
    if img.ndim == 3 and img.shape[2] == 4:
        img = img[..., :3]
    if img.ndim == 3:
        img = img[..., ::-1]
    return as_rgb_float(np.ascontiguousarray(img))
