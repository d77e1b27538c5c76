"""The pixel contract, the one place it is defined: what a line image is for every model,
in training, attacks, export and reading.

A batch holds grey images as float32 in **0..255** (ink dark, paper light), shape
``N x 1 x HEIGHT x W``; ``W`` is the widest line of the batch rounded up to a multiple of
``WIDTH_MULTIPLE``. Each line is resized to ``HEIGHT`` keeping its aspect ratio (squeezed
to ``MAX_WIDTH`` at most) and padded on the right with its own background level. Models
normalise internally, so adversarial perturbations live in the same 0..255 pixel space. A
line of input width ``w`` has ``output_frames(w)`` output frames (the model's stride).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import cv2
import numpy as np
import torch

from .errors import InputError

__all__ = ["HEIGHT", "WIDTH_MULTIPLE", "MAX_WIDTH", "PIXEL_MAX", "STRIDE", "decode_grey", "resize_to_height",
           "pad_batch", "output_frames"]

HEIGHT = 32
WIDTH_MULTIPLE = 4
# Widest line after resizing to HEIGHT, in training and in reading alike: wider lines are
# squeezed to it, and a model trained on squeezed lines misreads unsqueezed ones (and back).
# 2048 keeps a 200-character line of 5-pt print at its own aspect.
MAX_WIDTH = 2048
PIXEL_MAX = 255.0


def decode_grey(data: bytes, where: str) -> np.ndarray:
    """Grey uint8 from PNG/JPEG/TIFF/... bytes (16-bit scaled, alpha composited onto white,
    colour converted); ``InputError`` naming ``where`` for anything that is not a usable image."""
    if not data:
        raise InputError(where, "cannot decode the image: the file is empty")
    try:
        img = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    except cv2.error as e:  # OpenCV refuses some inputs by raising (e.g. a header claiming >2^30 pixels)
        raise InputError(where, f"cannot decode the image ({str(e).strip().splitlines()[-1][:160]})") from None
    if img is None or img.size == 0:
        raise InputError(where, "cannot decode the image (corrupt or not an image)")
    if img.dtype == np.uint16:
        img = (img / 257).astype(np.uint8)
    if img.ndim == 3:
        if img.shape[2] == 4:  # composite onto white
            a = img[:, :, 3:4].astype(np.float32) / 255.0
            img = (img[:, :, :3] * a + 255 * (1 - a)).astype(np.uint8)
        img = cv2.cvtColor(img[:, :, :3], cv2.COLOR_BGR2GRAY)
    return img


def resize_to_height(img: np.ndarray, height: int = HEIGHT, max_width: int | None = None) -> np.ndarray:
    h, w = img.shape[:2]
    new_w = max(1, int(round(w * height / h)))
    if max_width:
        new_w = min(new_w, max_width)
    interp = cv2.INTER_AREA if h > height else cv2.INTER_LINEAR
    return cv2.resize(img, (new_w, height), interpolation=interp)
STRIDE = 4  # input columns per output frame of every model (models.py keeps its backbone to it)

W = TypeVar("W", int, np.ndarray, torch.Tensor)


def output_frames(widths: W) -> W:
    """Output frames of lines of these (unpadded) input widths: an int, an array or a tensor."""
    if isinstance(widths, torch.Tensor):
        return torch.clamp(widths // STRIDE, min=1)
    if isinstance(widths, np.ndarray):
        return np.maximum(widths // STRIDE, 1)
    return max(1, int(widths) // STRIDE)


def pad_batch(images: Sequence[np.ndarray], multiple: int = WIDTH_MULTIPLE) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack same-height grey images into ``N x 1 x H x W`` float 0..255, padding each on
    the right with the median of its last column (its background); also returns widths."""
    h = images[0].shape[0]
    width = max(im.shape[1] for im in images)
    width = -(-width // multiple) * multiple
    out = np.empty((len(images), 1, h, width), np.float32)
    for n, im in enumerate(images):
        out[n, 0, :, : im.shape[1]] = im
        out[n, 0, :, im.shape[1]:] = float(np.median(im[:, -1]))
    return torch.from_numpy(out), torch.tensor([im.shape[1] for im in images], dtype=torch.long)
