"""Classic augmentation for grey text-line crops (albumentations), applied before resizing.

Only transforms that keep the label true: small rotations, shear and scale (no flips, no
large crops), blur, noise, JPEG, down-up scaling, contrast and brightness, thin/thick ink.
"""

from __future__ import annotations

import albumentations as A
import cv2
import numpy as np


def _ink_weight(img: np.ndarray, **_) -> np.ndarray:
    """Thicken or thin strokes by one pixel (ink is dark, so erode thickens)."""
    k = np.ones((2, 2), np.uint8)
    if np.random.random() < 0.5:
        return cv2.erode(img, k)
    return cv2.dilate(img, k)


def line_augmenter(strength: float = 1.0, seed: int | None = None) -> A.Compose:
    s = strength
    return A.Compose([
        A.Affine(rotate=(-1.5 * s, 1.5 * s), shear={"x": (-8 * s, 8 * s), "y": (0, 0)}, scale=(1 - 0.08 * s, 1 + 0.04 * s),
                 border_mode=cv2.BORDER_REPLICATE, p=0.5),
        A.OneOf([
            A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.3, 1.0 * s + 0.3)),
            A.MotionBlur(blur_limit=(3, 3)),
            A.Downscale(scale_range=(max(0.3, 1 - 0.6 * s), 0.9),
                        interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}),
        ], p=0.4),
        A.Lambda(image=_ink_weight, p=0.15),
        A.RandomBrightnessContrast(brightness_limit=0.2 * s, contrast_limit=0.3 * s, p=0.5),
        A.GaussNoise(std_range=(0.01, 0.05 * s + 0.01), p=0.3),
        A.ImageCompression(quality_range=(max(20, int(90 - 60 * s)), 95), p=0.3),
    ], seed=seed)


class Augment:
    """Callable ``uint8 H x W -> uint8 H x W`` for ``LineDataset.transform``."""

    def __init__(self, strength: float = 1.0, seed: int | None = None):
        self.pipeline = line_augmenter(strength, seed)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        return self.pipeline(image=img)["image"]
