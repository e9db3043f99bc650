"""Synthetic colour sequences with known motion for the keyframe-transfer tests (tiny, seeded)."""

import cv2
import numpy as np

from chromaflow.core.transfer import lab_planes_to_rgb
from chromaflow.core.transfer.matching import FeatureEncoder


def smooth_noise(rng: np.random.Generator, size: tuple[int, int], sigma: float) -> np.ndarray:
    n = rng.standard_normal(size).astype(np.float32)
    n = cv2.GaussianBlur(n, (0, 0), sigma)
    return n / (np.abs(n).max() + 1e-6)


def textured_canvas(seed: int, size: tuple[int, int] = (200, 260)) -> tuple[np.ndarray, np.ndarray]:
    """``(L*, ab)`` of a canvas: textured lightness, large smooth colour regions (a known ground truth)."""
    rng = np.random.default_rng(seed)
    l = 50 + 22 * smooth_noise(rng, size, 2.0) + 12 * smooth_noise(rng, size, 6.0)
    ab = np.stack([45 * smooth_noise(rng, size, 14.0), 45 * smooth_noise(rng, size, 14.0)], axis=-1)
    return np.clip(l, 5, 95).astype(np.float32), ab.astype(np.float32)


def translated_sequence(
    n: int = 8, size: tuple[int, int] = (72, 96), step: tuple[int, int] = (2, 1), seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames (L*, ab) of a window moving over the canvas by ``step = (dx, dy)`` pixels per frame."""
    l, ab = textured_canvas(seed)
    h, w = size
    ls, abs_ = [], []
    for t in range(n):
        x0, y0 = 10 + t * step[0], 10 + t * step[1]
        ls.append(l[y0 : y0 + h, x0 : x0 + w].copy())
        abs_.append(ab[y0 : y0 + h, x0 : x0 + w].copy())
    return ls, abs_


def occluder_sequence(
    n: int = 10, size: tuple[int, int] = (72, 96), seed: int = 1
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """A static background with a square object (its own texture, a saturated colour) sliding across it.

    Returns the frames' L*, ab and the object's masks.
    """
    bg_l, bg_ab = textured_canvas(seed)
    h, w = size
    bg_l, bg_ab = bg_l[:h, :w], bg_ab[:h, :w]
    rng = np.random.default_rng(seed + 100)
    side = 24
    obj_l = np.clip(70 + 20 * smooth_noise(rng, (side, side), 1.5), 5, 95).astype(np.float32)
    obj_ab = np.zeros((side, side, 2), np.float32)
    obj_ab[..., 0], obj_ab[..., 1] = -40.0, 40.0
    ls, abs_, masks = [], [], []
    for t in range(n):
        x0 = 4 + 6 * t
        y0 = 24
        l, ab = bg_l.copy(), bg_ab.copy()
        m = np.zeros((h, w), bool)
        x1 = min(w, x0 + side)
        l[y0 : y0 + side, x0:x1] = obj_l[:, : x1 - x0]
        ab[y0 : y0 + side, x0:x1] = obj_ab[:, : x1 - x0]
        m[y0 : y0 + side, x0:x1] = True
        ls.append(l)
        abs_.append(ab)
        masks.append(m)
    return ls, abs_, masks


def rgb_of(l: np.ndarray, ab: np.ndarray) -> np.ndarray:
    """The RGB image of L* ``(H, W)`` and ab ``(H, W, 2)`` (the layout these sequences keep their truth in)."""
    return lab_planes_to_rgb(l, ab.transpose(2, 0, 1))


def reentry_sequence(
    n: int = 8, size: tuple[int, int] = (96, 128), seed: int = 2
) -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """A static background and a saturated, striped object that leaves the frame fast and comes back.

    The object runs off the right edge (32 px per frame) and re-enters in the last two frames 40 px lower and 24 px
    further left than in frame 0. Returns the frames' L*, ab and the object's masks.
    """
    bg_l, bg_ab = textured_canvas(seed)
    h, w = size
    bg_l, bg_ab = bg_l[:h, :w], bg_ab[:h, :w] * 0.3
    side = 32
    yy, xx = np.mgrid[0:side, 0:side]
    obj_l = (30 + 45 * ((xx + yy) // 6 % 2)).astype(np.float32)
    home = (16, 40)  # (y, x)
    back = (home[0] + 40, home[1] - 24)
    spots = [(home[0], home[1] + 32 * t) for t in range(n - 2)] + [back, back]
    ls, abs_, masks = [], [], []
    for t in range(n):
        l, ab = bg_l.copy(), bg_ab.copy()
        m = np.zeros((h, w), bool)
        y0, x0 = spots[t]
        if x0 < w:
            x1 = min(w, x0 + side)
            l[y0 : y0 + side, x0:x1] = obj_l[:, : x1 - x0]
            ab[y0 : y0 + side, x0:x1] = (55.0, -45.0)
            m[y0 : y0 + side, x0:x1] = True
        ls.append(l.astype(np.float32))
        abs_.append(ab.astype(np.float32))
        masks.append(m)
    return ls, abs_, masks


def seeded_matching_encoder(seed: int = 0) -> FeatureEncoder:
    """The ``auto`` transfer's matching encoder on MobileNetV2 with torchvision's initialisation (He normal, fan
    out), seeded: tests stay independent of the ImageNet file, on the same code paths."""
    import torch
    from torch import nn

    from chromaflow.core.nets.mobilenet_v2 import MobileNetV2Features

    torch.manual_seed(seed)
    net = MobileNetV2Features()
    for mod in net.modules():
        if isinstance(mod, nn.Conv2d):
            nn.init.kaiming_normal_(mod.weight, mode="fan_out")
    return FeatureEncoder(net.eval())
