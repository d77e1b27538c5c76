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

import re
import struct
from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeVar

import cv2
import numpy as np

from .errors import InputError, TooLarge

if TYPE_CHECKING:  # torch is imported where tensors are made: page work (pdf/) runs without it
    import torch

__all__ = ["HEIGHT", "WIDTH_MULTIPLE", "MAX_WIDTH", "PIXEL_MAX", "STRIDE", "MAX_IMAGE_PIXELS", "IMAGE_FORMATS",
           "image_size", "checked_size", "decode_grey", "resize_to_height", "label_fits",
           "pad_batch", "output_frames"]

HEIGHT = 32
WIDTH_MULTIPLE = 4
# Widest line after resizing to HEIGHT, in training and in reading alike: wider lines are
# squeezed to it, and a model trained on squeezed lines misreads unsqueezed ones (and back).
# 2048 keeps a 200-character line of 5-pt print at its own aspect.
MAX_WIDTH = 2048
PIXEL_MAX = 255.0


MAX_IMAGE_PIXELS = 50_000_000  # the default refusal: an A4 page at 600 dpi is 35 million pixels
IMAGE_FORMATS = ("PNG", "JPEG", "TIFF", "GIF", "WebP", "BMP", "PNM")  # what decode_grey accepts


def _tiff_size(data: bytes) -> tuple[int, int] | None:
    order = "<" if data[:2] == b"II" else ">"
    if len(data) < 8:
        return None
    ifd = struct.unpack(order + "I", data[4:8])[0]
    if ifd + 2 > len(data):
        return None
    n = struct.unpack(order + "H", data[ifd : ifd + 2])[0]
    size: dict[int, int] = {}
    for k in range(n):
        e = ifd + 2 + 12 * k
        if e + 12 > len(data):
            return None
        tag, typ = struct.unpack(order + "HH", data[e : e + 4])
        if tag in (256, 257):
            fmt = {3: "H", 4: "I"}.get(typ)
            if fmt is None:
                return None
            size[tag] = struct.unpack(order + fmt, data[e + 8 : e + 8 + struct.calcsize(fmt)])[0]
    return (size[256], size[257]) if len(size) == 2 else None


def _gif_size(data: bytes) -> tuple[int, int] | None:
    if len(data) < 13:
        return None
    w, h = struct.unpack("<HH", data[6:10])
    i = 13 + (3 << ((data[10] & 7) + 1) if data[10] & 0x80 else 0)
    while i < len(data):  # the first image may be larger than the logical screen: OpenCV decodes it
        if data[i] == 0x2C:
            if i + 9 > len(data):
                return None
            iw, ih = struct.unpack("<HH", data[i + 5 : i + 9])
            return max(w, iw), max(h, ih)
        if data[i] != 0x21:
            break
        i += 2  # an extension: skip its sub-blocks
        while i < len(data) and data[i]:
            i += data[i] + 1
        i += 1
    return w, h


def _webp_size(data: bytes) -> tuple[int, int] | None:
    kind = data[12:16]
    if kind == b"VP8X" and len(data) >= 30:
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if kind == b"VP8L" and len(data) >= 25:
        b = int.from_bytes(data[21:25], "little")
        return 1 + (b & 0x3FFF), 1 + ((b >> 14) & 0x3FFF)
    if kind == b"VP8 " and len(data) >= 30:
        w, h = struct.unpack("<HH", data[26:30])
        return w & 0x3FFF, h & 0x3FFF
    return None


def _pnm_size(data: bytes) -> tuple[int, int] | None:
    fields: list[int] = []
    for tok in re.sub(rb"#[^\n]*", b" ", data[2:512]).split():
        if not tok.isdigit():
            return None
        fields.append(int(tok))
        if len(fields) == 2:
            return fields[0], fields[1]
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header of a PNG, JPEG, TIFF, GIF, WebP, BMP or PNM image,
    without decoding it; None when the format is none of them or the header is unreadable."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return struct.unpack(">II", data[16:24]) if len(data) >= 24 else None
    if data[:2] == b"\xff\xd8":
        i = 2
        while i + 9 < len(data):
            if data[i] != 0xFF:
                return None
            marker = data[i + 1]
            if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
                i += 2
                continue
            seg = struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                h, w = struct.unpack(">HH", data[i + 5 : i + 9])
                return w, h
            i += 2 + seg
        return None
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        return _tiff_size(data)
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return _gif_size(data)
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return _webp_size(data)
    if data[:2] == b"BM" and len(data) >= 26:
        w, h = struct.unpack("<ii", data[18:26])
        return abs(w), abs(h)
    if data[:1] == b"P" and data[1:2] in (b"1", b"2", b"3", b"4", b"5", b"6"):
        return _pnm_size(data)
    return None


def checked_size(data: bytes, where: str, max_pixels: int | None = MAX_IMAGE_PIXELS) -> tuple[int, int]:
    """(width, height) of an image from its header, or ``InputError`` naming ``where``: empty,
    not an accepted format, a damaged header, or more than ``max_pixels`` (``TooLarge``)."""
    if not data:
        raise InputError(where, "cannot decode the image: the file is empty")
    size = image_size(data)
    if size is None:
        raise InputError(where, f"cannot decode the image (not {', '.join(IMAGE_FORMATS)}, or a damaged header)")
    if max_pixels is not None and size[0] * size[1] > max_pixels:
        raise TooLarge(where, f"cannot decode the image: an image of {size[0]}x{size[1]} pixels exceeds the limit "
                              f"of {max_pixels} pixels")
    return size


def decode_grey(data: bytes, where: str, max_pixels: int | None = MAX_IMAGE_PIXELS) -> np.ndarray:
    """Grey uint8 from PNG/JPEG/TIFF/GIF/WebP/BMP/PNM bytes (16-bit scaled, alpha composited
    onto white, colour converted); ``InputError`` naming ``where`` for anything that is not a
    usable image. The size is read from the header first: an image of more than ``max_pixels``
    (None: no limit) is refused (:class:`~ocr_robust.errors.TooLarge`) before anything is
    allocated, and so is any other format, or a header whose size cannot be read."""
    checked_size(data, where, max_pixels)
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

W = TypeVar("W", int, np.ndarray, "torch.Tensor")


def output_frames(widths: W) -> W:
    """Output frames of lines of these (unpadded) input widths: an int, an array or a tensor."""
    if isinstance(widths, np.ndarray):
        return np.maximum(widths // STRIDE, 1)
    if isinstance(widths, (int, np.integer)):
        return max(1, int(widths) // STRIDE)
    return widths.floor_divide(STRIDE).clamp(min=1)  # a tensor


def label_fits(text: str, size: tuple[int, int], height: int = HEIGHT, max_width: int | None = MAX_WIDTH) -> bool:
    """Whether a CTC model can emit ``text`` from a line of ``size`` (width, height) pixels:
    one frame per character, and a blank between two equal characters in a row."""
    w, h = size
    width = max(1, round(w * height / max(h, 1)))
    if max_width:
        width = min(width, max_width)
    frames = output_frames(width)
    return len(text) <= frames and len(text) + sum(a == b for a, b in zip(text, text[1:])) <= frames


def pad_batch(images: Sequence[np.ndarray], multiple: int = WIDTH_MULTIPLE) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack same-height grey images into ``N x 1 x H x W`` float 0..255, padding each on
    the right with the median of its last column (its background); also returns widths."""
    import torch

    h = images[0].shape[0]
    width = max(im.shape[1] for im in images)
    width = -(-width // multiple) * multiple
    out = np.empty((len(images), 1, h, width), np.float32)
    for n, im in enumerate(images):
        out[n, 0, :, : im.shape[1]] = im
        out[n, 0, :, im.shape[1]:] = float(np.median(im[:, -1]))
    return torch.from_numpy(out), torch.tensor([im.shape[1] for im in images], dtype=torch.long)
