"""Classic augmentation for grey text-line crops (albumentations), applied before resizing.

Only transforms that keep the label true: small rotations, shear and scale (no flips, no
large crops), blur, noise, JPEG, down-up scaling, contrast and brightness, thin/thick ink.

The geometry is our own (``_geometry``) because a label must survive it on a line of any
length: the canvas grows to hold the sheared and scaled line, so no character at either end
is cut off, and the rotation is bounded by the line's aspect, so the two ends of a long line
do not leave the crop's height (1.5 degrees moves the ends of a 1,000-px line by 13 px, which
is most of a 17-px crop of 5-pt print).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np

__all__ = ["MIN_SIDE", "line_augmenter", "Augment", "AugmentPlan", "parse_augment"]

MIN_SIDE = 8  # pixels; down-scaling a thinner image by 0.3 leaves nothing (OpenCV refuses an empty size)


def _ink_weight(img: np.ndarray, **_) -> np.ndarray:
    """Thicken or thin strokes by one pixel (ink is dark, so erode thickens)."""
    k = np.ones((2, 2), np.uint8)
    if np.random.random() < 0.5:
        return cv2.erode(img, k)
    return cv2.dilate(img, k)


def _geometry(s: float):
    """Random rotation, x-shear and separate x/y scale about the line's centre (``s``: strength).

    x and y are scaled apart (glyphs narrower or wider than any training face: condensed,
    mono). The output is as wide as the transformed line; its height is the input's, and the
    rotation is at most what moves the line's ends by 12% of its height.
    """

    def apply(img: np.ndarray, **_) -> np.ndarray:
        h, w = img.shape[:2]
        rng = np.random
        limit = min(1.5 * s, math.degrees(math.atan(0.24 * h / max(w, 1))))
        angle = math.radians(rng.uniform(-limit, limit))
        shear = math.tan(math.radians(rng.uniform(-8 * s, 8 * s)))
        sx, sy = rng.uniform(1 - 0.15 * s, 1 + 0.15 * s), rng.uniform(1 - 0.08 * s, 1 + 0.04 * s)
        c, si = math.cos(angle), math.sin(angle)
        lin = np.array([[c, -si], [si, c]]) @ np.array([[1, shear], [0, 1]]) @ np.diag([sx, sy])
        corners = (np.array([[0, 0], [w, 0], [0, h], [w, h]], float) - [w / 2, h / 2]) @ lin.T
        out_w = max(1, int(math.ceil(corners[:, 0].max() - corners[:, 0].min())))
        m = np.hstack([lin, (np.array([out_w / 2, h / 2]) - lin @ [w / 2, h / 2])[:, None]])
        return cv2.warpAffine(img, m, (out_w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)

    return apply


def line_augmenter(strength: float = 1.0, seed: int | None = None) -> A.Compose:
    s = strength
    return A.Compose([
        A.Lambda(image=_geometry(s), p=0.5),
        A.OneOf([
            A.GaussianBlur(blur_limit=(3, 3), sigma_limit=(0.3, 1.0 * s + 0.3)),
            A.MotionBlur(blur_limit=(3, 3)),
            A.Downscale(scale_range=(max(0.3, 1 - 0.6 * s), 0.9),
                        interpolation_pair={"downscale": cv2.INTER_AREA, "upscale": cv2.INTER_LINEAR}),
        ], p=0.4),
        A.Lambda(image=_ink_weight, p=0.3),  # bolder and lighter strokes than the training faces'
        A.RandomBrightnessContrast(brightness_limit=0.2 * s, contrast_limit=0.3 * s, p=0.5),
        A.GaussNoise(std_range=(0.01, 0.05 * s + 0.01), p=0.3),
        A.ImageCompression(quality_range=(max(20, int(90 - 60 * s)), 95), p=0.3),
    ], seed=seed)


class Augment:
    """Callable ``uint8 H x W -> uint8 H x W`` for ``LineDataset.transform``."""

    def __init__(self, strength: float = 1.0, seed: int | None = None):
        self.pipeline = line_augmenter(strength, seed)

    def __call__(self, img: np.ndarray) -> np.ndarray:
        if min(img.shape[:2]) < MIN_SIDE:  # a line of dots or underscores cut to its ink: too small to degrade
            return img
        return self.pipeline(image=img)["image"]


@dataclass(frozen=True)
class AugmentPlan:
    """What ``--augment`` asks for: the classic strength (this module's pipeline, per line,
    0: off) and region dropout (``ocr_robust.generative.erase``, per batch): its fill
    (``flat``, ``noise``, ``patchgan``) and, for ``patchgan``, the generator's folder; SAN
    backgrounds composited behind the lines (``ocr_robust.generative.backgrounds``, per
    batch): the SAN's folder."""

    strength: float = 1.0
    dropout: str | None = None
    generator: str | None = None
    background: str | None = None


def parse_augment(value: float | int | str) -> AugmentPlan:
    """``1.0`` -> classic only; ``"cutout"``, ``"cutout:noise"``, ``"patchgan:GEN"``,
    ``"san:SAN"``, alone or after a strength (``"0.5,patchgan:gen,san:san"``); with no
    strength given it stays 1.0."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return AugmentPlan(float(value))
    strength, dropout, generator, background = 1.0, None, None, None
    for item in (x.strip() for x in str(value).split(",") if x.strip()):
        kind, _, arg = item.partition(":")
        try:
            strength = float(item)
            continue
        except ValueError:
            pass
        if kind == "san" and arg and background is None:
            background = arg
            continue
        if dropout is not None and kind in ("cutout", "patchgan"):
            raise ValueError(f"augment {value!r}: one region dropout at a time, got {dropout} and {item}")
        if kind == "cutout" and arg in ("", "flat", "noise"):
            dropout = arg or "flat"
        elif kind == "patchgan" and arg:
            dropout, generator = "patchgan", arg
        else:
            raise ValueError(f"augment {value!r}: {item!r} is not a strength, cutout, cutout:noise, patchgan:GEN "
                             "or san:SAN (once)")
    if strength < 0:
        raise ValueError(f"augment {value!r}: a negative strength")
    return AugmentPlan(strength, dropout, generator, background)
