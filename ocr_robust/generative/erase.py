"""Region dropout on a batch of lines: Random Erasing's rectangles (Zhong et al. 2020), the
hole filled flat, with noise, or by a patch generator (METHODS.md section 2, seed 001).

It works on a collated batch (``N x 1 x HEIGHT x W``, 0..255, see ``ocr_robust.images``),
so a generator fills every hole of a batch in one forward. A rectangle lies inside its
line's own width, never in the padding; the fill changes the pixels under it and no other.
Per line, with probability ``p``, one rectangle of ``area`` (a share of the line's own
``HEIGHT x width``) and ``aspect`` (height over width, drawn log-uniformly) is cut; a draw
that does not fit the line is drawn again, up to 10 times, as in Random Erasing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..adversarial.perturb import width_mask
from ..data.dataset import LineBatch
from ..images import PIXEL_MAX

__all__ = ["FILLS", "EraseSpec", "parse_range", "erase_boxes", "box_mask", "RegionDropout"]

FILLS = ("flat", "noise", "patchgan")
CONTEXT = 48  # pixels of the line each side of a hole that the patch generator sees
WINDOW_MULTIPLE = 16  # the generator's 4 stride-2 levels


def parse_range(value: str | tuple | list, name: str) -> tuple[float, float]:
    """``"0.02-0.1"`` (or a pair) -> (0.02, 0.1), low <= high, both > 0."""
    if isinstance(value, (tuple, list)):
        parts = [float(v) for v in value]
    else:
        try:
            parts = [float(v) for v in str(value).split("-")]
        except ValueError:
            parts = []
    if len(parts) != 2 or not 0 < parts[0] <= parts[1] or not all(map(math.isfinite, parts)):
        raise ValueError(f"{name}: expected a range LOW-HIGH with 0 < LOW <= HIGH, got {value!r}")
    return parts[0], parts[1]


@dataclass(frozen=True)
class EraseSpec:
    """Where Random Erasing cuts: the probability a line gets a hole, the hole's area as a
    share of the line, and its aspect (height / width)."""

    p: float = 0.5
    area: tuple[float, float] = (0.02, 0.1)
    aspect: tuple[float, float] = (0.3, 3.3)

    def __post_init__(self) -> None:
        if not 0 <= self.p <= 1:
            raise ValueError(f"erase probability must be in 0..1, got {self.p!r}")
        object.__setattr__(self, "area", parse_range(self.area, "erase area"))
        object.__setattr__(self, "aspect", parse_range(self.aspect, "erase aspect"))
        if self.area[1] > 1:
            raise ValueError(f"erase area is a share of the line, at most 1, got {self.area!r}")


def erase_boxes(widths: list[int], height: int, spec: EraseSpec, rng: np.random.Generator,
                always: bool = False) -> list[tuple[int, int, int, int] | None]:
    """Per line, ``(y0, y1, x0, x1)`` of its hole, or None (not drawn, or no draw fitted)."""
    lo, hi = math.log(spec.aspect[0]), math.log(spec.aspect[1])
    out: list[tuple[int, int, int, int] | None] = []
    for w in widths:
        box = None
        if always or rng.random() < spec.p:
            for _ in range(10):
                a = rng.uniform(*spec.area) * height * w
                r = math.exp(rng.uniform(lo, hi))
                h, bw = int(round(math.sqrt(a * r))), int(round(math.sqrt(a / r)))
                if 1 <= h <= height and 1 <= bw <= w:
                    y0, x0 = int(rng.integers(0, height - h + 1)), int(rng.integers(0, w - bw + 1))
                    box = (y0, y0 + h, x0, x0 + bw)
                    break
        out.append(box)
    return out


def box_mask(shape: tuple[int, ...], boxes: list[tuple[int, int, int, int] | None]) -> torch.Tensor:
    """``N x 1 x H x W`` float mask: 1 inside each line's hole."""
    m = torch.zeros(shape)
    for i, b in enumerate(boxes):
        if b is not None:
            y0, y1, x0, x1 = b
            m[i, :, y0:y1, x0:x1] = 1.0
    return m


class RegionDropout:
    """Cuts holes into a batch's lines and fills them: ``flat`` with the line's mean grey
    (Random Erasing's mean fill), ``noise`` with uniform random pixels, ``patchgan`` with a
    :class:`~ocr_robust.generative.patchgan.PatchGenerator`'s fill from the surroundings.
    The labels stay the lines' own: with distilled teachers (``--distill-folds``) the
    student learns what remains readable from their soft posteriors instead."""

    def __init__(self, fill: str, spec: EraseSpec | None = None, generator=None):
        if fill not in FILLS:
            raise ValueError(f"region dropout fill must be one of {', '.join(FILLS)}, got {fill!r}")
        if (fill == "patchgan") != (generator is not None):
            raise ValueError("the patchgan fill needs a generator, and only it takes one")
        self.fill, self.spec, self.generator = fill, spec or EraseSpec(), generator

    def __call__(self, batch: LineBatch, rng: np.random.Generator) -> LineBatch:
        x = batch["images"]
        if x.shape[0] == 0:
            return batch
        boxes = erase_boxes([int(w) for w in batch["widths"]], x.shape[2], self.spec, rng)
        if all(b is None for b in boxes):
            return batch
        mask = box_mask(tuple(x.shape), boxes).to(x.device, x.dtype)
        if self.fill == "flat":
            own = width_mask(x, batch["widths"])  # N x 1 x 1 x W: the line's own columns
            mean = (x * own).sum((1, 2, 3)) / (own.sum((1, 2, 3)) * x.shape[2]).clamp(min=1)
            fill = mean.view(-1, 1, 1, 1).expand_as(x)
        elif self.fill == "noise":
            fill = torch.from_numpy(rng.integers(0, int(PIXEL_MAX) + 1, size=tuple(x.shape)).astype(np.float32))
            fill = fill.to(x.device, x.dtype)
        else:
            fill = self._generated(x, mask, boxes, [int(w) for w in batch["widths"]])
        return {**batch, "images": x * (1 - mask) + fill * mask}

    def _generated(self, x: torch.Tensor, mask: torch.Tensor, boxes: list, widths: list[int]) -> torch.Tensor:
        """The generator's fill, run on a window around each hole only (``CONTEXT`` pixels
        of the line each side, within its own width), not on the whole padded batch: the
        cost follows the holes, not the lines' length."""
        rows = [i for i, b in enumerate(boxes) if b is not None]
        spans = []
        for i in rows:
            _, _, x0, x1 = boxes[i]
            a, b = max(0, x0 - CONTEXT), min(widths[i], x1 + CONTEXT)
            spans.append((a, b))
        wmax = -max(b - a for a, b in spans) // WINDOW_MULTIPLE * -WINDOW_MULTIPLE
        win = torch.full((len(rows), 1, x.shape[2], wmax), 0.0, device=x.device, dtype=x.dtype)
        wmask = torch.zeros_like(win)
        for k, (i, (a, b)) in enumerate(zip(rows, spans)):
            win[k, :, :, : b - a] = x[i, :, :, a:b]
            win[k, :, :, b - a:] = x[i, :, :, b - 1:b]  # the line's edge, replicated
            wmask[k, :, :, : b - a] = mask[i, :, :, a:b]
        gen = self.generator.generate(win, wmask)
        fill = x.clone()
        for k, (i, (a, b)) in enumerate(zip(rows, spans)):
            fill[i, :, :, a:b] = gen[k, :, :, : b - a]
        return fill
