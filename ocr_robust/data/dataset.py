"""Torch ``Dataset`` over a line store, a padding collate and width-bucketed batching.

Pixel contract (the one place it is defined): a batch holds grey images as float32 in
**0..255** (ink dark, paper light), shape ``N x 1 x height x W``; ``W`` is the widest line of
the batch rounded up to a multiple of ``WIDTH_MULTIPLE``. Each line is resized to ``height``
keeping its aspect ratio and padded on the right with its own background level. Models
normalise internally, so adversarial perturbations live in the same 0..255 pixel space.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..charset import Charset
from ..errors import InputError
from .crop import CROP_MODES, normalise_crop
from .store import ConcatStore, FolderStore, LmdbStore, image_size, open_store

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


@dataclass
class LineDataset(Dataset):
    """Samples of a folder or LMDB line store: ``{"image": uint8 H x W, "text", "target", "index"}``.

    With a ``charset``, lines holding characters outside it are left out and counted in
    ``problems`` (the store's own problems, such as missing images, are there too).
    """

    store: FolderStore | LmdbStore | ConcatStore
    charset: Charset | None = None
    height: int = HEIGHT
    max_width: int | None = None
    transform: Callable[[np.ndarray], np.ndarray] | None = None
    crop: str = "none"  # "ink": every line through crop.normalise_crop (after ``transform``)

    def __post_init__(self) -> None:
        if self.crop not in CROP_MODES:
            raise ValueError(f"crop must be one of {', '.join(CROP_MODES)}, got {self.crop!r}")
        self.problems: list[str] = list(self.store.problems)
        self.indices: list[int] = []
        for i in range(len(self.store)):
            text = self.store.text(i)
            if self.charset is not None:
                missing = self.charset.missing(text)
                if missing:
                    self.problems.append(f"{self.store.path}: {self.store.name(i)} {text!r}: characters not in "
                                         f"charset {self.charset.name!r}: {''.join(missing)!r}; line skipped")
                    continue
            self.indices.append(i)
        self._widths: list[int] | None = None

    @classmethod
    def open(cls, path, charset: Charset | None = None, **kw) -> "LineDataset":
        return cls(open_store(path), charset, **kw)

    def __len__(self) -> int:
        return len(self.indices)

    def text(self, k: int) -> str:
        return self.store.text(self.indices[k])

    def widths(self) -> list[int]:
        """Each line's width after resizing to ``height`` (read from image headers)."""
        if self._widths is None:
            out = []
            for i in self.indices:
                data = self.store.image_bytes(i)
                size = image_size(data)
                if size is None:
                    img = decode_grey(data, f"{self.store.path}/{self.store.name(i)}")
                    size = (img.shape[1], img.shape[0])
                w, h = size
                w = max(1, round(w * self.height / max(h, 1)))
                out.append(min(w, self.max_width) if self.max_width else w)
            self._widths = out
        return self._widths

    def __getitem__(self, k: int) -> dict:
        i = self.indices[k]
        img = decode_grey(self.store.image_bytes(i), f"{self.store.path}/{self.store.name(i)}")
        if self.transform is not None:
            img = self.transform(img)
        if self.crop == "ink":
            img = normalise_crop(img)
        img = resize_to_height(img, self.height, self.max_width)
        text = self.store.text(i)
        target = self.charset.encode(text) if self.charset is not None else []
        return {"image": img, "text": text, "target": target, "index": k}


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


def collate(batch: list[dict]) -> dict:
    """Batch of samples -> images (N x 1 x H x W, 0..255), widths, concatenated CTC targets,
    target lengths, texts and dataset indices."""
    images, widths = pad_batch([b["image"] for b in batch])
    targets = torch.tensor([t for b in batch for t in b["target"]], dtype=torch.long)
    lengths = torch.tensor([len(b["target"]) for b in batch], dtype=torch.long)
    return {"images": images, "widths": widths, "targets": targets, "target_lengths": lengths,
            "texts": [b["text"] for b in batch], "indices": torch.tensor([b["index"] for b in batch])}


class BucketBatchSampler(Sampler[list[int]]):
    """Batches of lines of similar width, so short lines are not padded to the longest.

    Each epoch: sort by width with a random tie-break, cut into batches, shuffle the order
    of batches. Every index appears exactly once per epoch. Deterministic for ``seed`` and
    the epoch number (call ``set_epoch``). With ``sortagrad``, the first epoch's batches
    come narrowest first (SortaGrad, Amodei et al. 2016, "Deep Speech 2"): a model
    starting from scratch learns CTC alignments on short lines first, which are also the
    cheapest steps, and leaves the blank-only plateau sooner.
    """

    def __init__(self, widths: Sequence[int], batch_size: int, shuffle: bool = True, seed: int = 0,
                 drop_last: bool = False, sortagrad: bool = False):
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self.widths = list(widths)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        self.sortagrad = sortagrad
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[list[int]]:
        rng = random.Random(f"{self.seed}:{self.epoch}")
        keys = [(w, rng.random() if self.shuffle else 0.0, i) for i, w in enumerate(self.widths)]
        order = [i for _, _, i in sorted(keys)]
        out = [order[k : k + self.batch_size] for k in range(0, len(order), self.batch_size)]
        if self.drop_last and out and len(out[-1]) < self.batch_size:
            out.pop()
        if self.shuffle and not (self.sortagrad and self.epoch == 0):
            rng.shuffle(out)
        return out

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.batches())

    def __len__(self) -> int:
        n = len(self.widths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)
