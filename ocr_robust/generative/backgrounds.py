"""SAN backgrounds in training (seed 002): composited behind text lines (``--augment
san:SAN``) and used as no-text images (``--notext-source san:SAN``).

A line of width ``w`` gets ``ceil(w / BG_WIDTH)`` SAN samples side by side, cut to ``w``.
The composite keeps the line's ink and lays the background's paper, texture and marks under
it: ``multiply`` (``line * bg / 255``, as ink on a printed form) or ``darken`` (``min(line,
bg)``), drawn per line; the padding is never touched.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..data.dataset import LineBatch
from ..images import PIXEL_MAX
from .san import BG_WIDTH, SAN

__all__ = ["BLENDS", "SANBackgrounds", "BackgroundComposite"]

BLENDS = ("multiply", "darken")


class SANBackgrounds:
    """Backgrounds of any width from a trained SAN, seeded by the caller's generator."""

    def __init__(self, san: SAN):
        self.san = san.eval()

    @torch.no_grad()
    def draw(self, widths: list[int], height: int, rng: np.random.Generator) -> list[torch.Tensor]:
        """One ``height x w`` background (0..255, float) per width."""
        tiles = [max(1, math.ceil(w / BG_WIDTH)) for w in widths]
        z = torch.from_numpy(rng.standard_normal((sum(tiles), self.san.cfg.z_dim)).astype(np.float32))
        dev = next(self.san.parameters()).device
        imgs = self.san.G(z.to(dev)).cpu()[:, 0]  # n x HEIGHT x BG_WIDTH
        if imgs.shape[1] != height:
            imgs = torch.nn.functional.interpolate(imgs[:, None], size=(height, BG_WIDTH), mode="bilinear",
                                                   align_corners=False)[:, 0]
        out, k = [], 0
        for w, t in zip(widths, tiles):
            out.append(torch.cat(list(imgs[k:k + t]), 1)[:, :w])
            k += t
        return out

    def notext(self, rng: np.random.Generator, width: int, height: int) -> np.ndarray:
        """A no-text image: a background alone (``add_notext``'s ``source``)."""
        return self.draw([max(4, int(width))], height, rng)[0].round().clamp(0, 255).byte().numpy()


class BackgroundComposite:
    """Lays a SAN background under each line with probability ``p``."""

    def __init__(self, backgrounds: SANBackgrounds, p: float = 0.5, blend: str = "random"):
        if blend not in BLENDS + ("random",):
            raise ValueError(f"blend must be one of {', '.join(BLENDS)} or random, got {blend!r}")
        if not 0 <= p <= 1:
            raise ValueError(f"composite probability must be in 0..1, got {p!r}")
        self.backgrounds, self.p, self.blend = backgrounds, p, blend

    def __call__(self, batch: LineBatch, rng: np.random.Generator) -> LineBatch:
        x = batch["images"]
        rows = [i for i in range(x.shape[0]) if rng.random() < self.p]
        if not rows:
            return batch
        widths = [int(batch["widths"][i]) for i in rows]
        bgs = self.backgrounds.draw(widths, x.shape[2], rng)
        out = x.clone()
        for i, w, bg in zip(rows, widths, bgs):
            line = out[i, 0, :, :w]
            blend = self.blend if self.blend != "random" else BLENDS[int(rng.integers(len(BLENDS)))]
            bg = bg.to(line.device, line.dtype)
            out[i, 0, :, :w] = line * bg / PIXEL_MAX if blend == "multiply" else torch.minimum(line, bg)
        return {**batch, "images": out}
