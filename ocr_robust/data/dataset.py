"""Torch ``Dataset`` over a line store, a padding collate and width-bucketed batching;
the pixels follow the contract in ``images.py``."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence, TypedDict

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..charset import Charset
from ..images import HEIGHT, decode_grey, pad_batch, resize_to_height
from .crop import CROP_MODES, normalise_crop
from ..images import image_size
from .store import ConcatStore, FolderStore, LmdbStore, open_store, read_grey

__all__ = ["LineSample", "LineBatch", "LineDataset", "collate", "BucketBatchSampler"]


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

    def __getitem__(self, k: int) -> LineSample:
        i = self.indices[k]
        img = read_grey(self.store, i)
        if self.transform is not None:
            img = self.transform(img)
        if self.crop == "ink":
            img = normalise_crop(img)
        img = resize_to_height(img, self.height, self.max_width)
        text = self.store.text(i)
        target = self.charset.encode(text) if self.charset is not None else []
        return LineSample(image=img, text=text, target=target, index=k)


class LineSample(TypedDict):
    """One line from :class:`LineDataset`: the image (grey, ``HEIGHT`` rows), its text, the
    CTC target (class indices) and its index in the dataset."""

    image: np.ndarray
    text: str
    target: list[int]
    index: int


class LineBatch(TypedDict):
    """What the line loader yields: ``images`` N x 1 x H x W (0..255, padded), each line's
    ``widths``, the concatenated CTC ``targets`` with ``target_lengths``, the ``texts`` and
    the dataset ``indices`` (the hard-example sampler's keys)."""

    images: torch.Tensor
    widths: torch.Tensor
    targets: torch.Tensor
    target_lengths: torch.Tensor
    texts: list[str]
    indices: torch.Tensor


def collate(batch: list[LineSample]) -> LineBatch:
    """Batch of samples -> images (N x 1 x H x W, 0..255), widths, concatenated CTC targets,
    target lengths, texts and dataset indices."""
    images, widths = pad_batch([b["image"] for b in batch])
    targets = torch.tensor([t for b in batch for t in b["target"]], dtype=torch.long)
    lengths = torch.tensor([len(b["target"]) for b in batch], dtype=torch.long)
    return LineBatch(images=images, widths=widths, targets=targets, target_lengths=lengths,
                     texts=[b["text"] for b in batch], indices=torch.tensor([b["index"] for b in batch]))


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
