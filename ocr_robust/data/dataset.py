"""Torch ``Dataset`` over a line store, a padding collate and width-bucketed batching;
the pixels follow the contract in ``images.py``."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Callable, Iterator, NotRequired, Sequence, TypedDict

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from ..charset import Charset
from ..errors import InputError
from ..images import HEIGHT, WIDTH_MULTIPLE, checked_size, label_fits, pad_batch, resize_to_height
from .crop import CROP_MODES, normalise_crop
from .store import ConcatStore, FolderStore, LmdbStore, open_store, read_grey

__all__ = ["LineSample", "LineBatch", "LineDataset", "collate", "BucketBatchSampler", "ShardedBatches",
           "split_for_world"]


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
        sizes: list[tuple[int, int]] = []
        for i in range(len(self.store)):
            text = self.store.text(i)
            where = f"{self.store.path}: {self.store.name(i)}"
            if self.charset is not None:
                missing = self.charset.missing(text)
                if missing:
                    self.problems.append(f"{where} {text[:60]!r}: characters not in charset {self.charset.name!r}: "
                                         f"{''.join(missing)[:40]!r}; line skipped")
                    continue
                # a labelled line is checked against its image's header: readable, and long enough
                # for CTC to emit its label (a 10-MB label on a 126-px line is refused here)
                try:
                    size = checked_size(self.store.image_bytes(i), where, None)
                except InputError as e:
                    self.problems.append(f"{e}; line skipped")
                    continue
                if not label_fits(text, size, self.height, self.max_width):
                    self.problems.append(f"{where}: a label of {len(text)} characters is longer than its "
                                         f"{size[0]}x{size[1]} image can hold; line skipped")
                    continue
                sizes.append(size)
            self.indices.append(i)
        self._sizes = sizes if self.charset is not None else None
        self._widths: list[int] | None = None
        self.unreadable = 0  # lines whose image failed to decode when read (this process's count)

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
            for k, i in enumerate(self.indices):
                if self._sizes is not None:
                    size = self._sizes[k]
                else:
                    size = checked_size(self.store.image_bytes(i), f"{self.store.path}/{self.store.name(i)}", None)
                w, h = size
                w = max(1, round(w * self.height / max(h, 1)))
                out.append(min(w, self.max_width) if self.max_width else w)
            self._widths = out
        return self._widths

    def __getitem__(self, k: int) -> LineSample:
        """The sample; when its image does not decode (a truncated PNG in the store) a sample
        with ``problem`` set and no image, which :func:`collate` leaves out and reports."""
        i = self.indices[k]
        try:
            img = read_grey(self.store, i)
        except InputError as e:
            self.unreadable += 1
            return LineSample(image=None, text=self.store.text(i), target=[], index=k, problem=str(e))
        if self.transform is not None:
            img = self.transform(img)
        if self.crop == "ink":
            img = normalise_crop(img)
        img = resize_to_height(img, self.height, self.max_width)
        text = self.store.text(i)
        target = self.charset.encode(text) if self.charset is not None else []
        return LineSample(image=img, text=text, target=target, index=k, problem=None)


class LineSample(TypedDict):
    """One line from :class:`LineDataset`: the image (grey, ``HEIGHT`` rows), its text, the
    CTC target (class indices) and its index in the dataset."""

    image: np.ndarray | None  # None when ``problem`` says why it could not be read
    text: str
    target: list[int]
    index: int
    problem: NotRequired[str | None]  # set (and no image) when the line's image did not decode


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
    unreadable: list[str]  # lines of the batch left out: their images did not decode
    region: NotRequired[torch.Tensor]  # N x 1 x H x W, 1 where an attack may change a pixel (attack_store)
    soft: NotRequired[Any]  # the teachers' SoftTargets for the batch (training.distill), when distilling


def collate(batch: list[LineSample]) -> LineBatch:
    """Batch of samples -> images (N x 1 x H x W, 0..255), widths, concatenated CTC targets,
    target lengths, texts and dataset indices; unreadable samples are left out and listed."""
    bad = [p for b in batch if (p := b.get("problem")) is not None]
    batch = [b for b in batch if b.get("problem") is None]
    if not batch:
        empty = torch.zeros(0, dtype=torch.long)
        return LineBatch(images=torch.zeros((0, 1, HEIGHT, WIDTH_MULTIPLE)), widths=empty, targets=empty,
                         target_lengths=empty, texts=[], indices=empty, unreadable=bad)
    images, widths = pad_batch([b["image"] for b in batch if b["image"] is not None])
    targets = torch.tensor([t for b in batch for t in b["target"]], dtype=torch.long)
    lengths = torch.tensor([len(b["target"]) for b in batch], dtype=torch.long)
    return LineBatch(images=images, widths=widths, targets=targets, target_lengths=lengths,
                     texts=[b["text"] for b in batch], indices=torch.tensor([b["index"] for b in batch]),
                     unreadable=bad)


def split_for_world(batches: list[list[int]], world_size: int) -> list[list[int]]:
    """``batches`` with the largest split in two until their number is a multiple of
    ``world_size``: every rank then gets as many batches (a rank with fewer would wait for the
    others' all-reduce), and every line still comes exactly once. Rank ``r`` takes
    ``out[r::world_size]``; with one process (or a count that divides) nothing changes."""
    out = [list(b) for b in batches]
    while out and len(out) % world_size:
        k = max(range(len(out)), key=lambda i: len(out[i]))
        if len(out[k]) < 2:
            raise ValueError(f"{sum(map(len, out))} lines cannot fill a batch on each of {world_size} processes")
        half = len(out[k]) // 2
        out[k:k + 1] = [out[k][:half], out[k][half:]]
    return out


class ShardedBatches:
    """What both batch samplers share: the epoch's batches for all ranks (``batches()``), and
    this rank's disjoint share of them (iteration, ``len``)."""

    rank: int = 0
    world_size: int = 1

    def batches(self) -> list[list[int]]:
        raise NotImplementedError

    def set_world(self, rank: int, world_size: int) -> None:
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not in a world of {world_size}")
        self.rank, self.world_size = rank, world_size

    def shard(self, batches: list[list[int]]) -> list[list[int]]:
        """This rank's batches of the epoch's ``batches`` (all ranks' list, split to fit)."""
        return split_for_world(batches, self.world_size)[self.rank::self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self.shard(self.batches()))


class BucketBatchSampler(ShardedBatches, Sampler[list[int]]):
    """Batches of lines of similar width, so short lines are not padded to the longest.

    Each epoch: sort by width with a random tie-break, cut into batches, shuffle the order
    of batches. Every index appears exactly once per epoch. Deterministic for ``seed`` and
    the epoch number (call ``set_epoch``). With ``sortagrad``, the first epoch's batches
    come narrowest first (SortaGrad, Amodei et al. 2016, "Deep Speech 2"): a model
    starting from scratch learns CTC alignments on short lines first, which are also the
    cheapest steps, and leaves the blank-only plateau sooner.

    Under ``torchrun`` (``set_world``), each rank iterates over a disjoint share of the one
    epoch's batches: every line once per epoch over all ranks.
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

    def __len__(self) -> int:
        n = len(self.widths)
        total = n // self.batch_size if self.drop_last else -(-n // self.batch_size)
        return -(-total // self.world_size)
