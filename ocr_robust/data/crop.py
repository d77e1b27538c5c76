"""Crop geometry: one normalised crop from any line box, and random crop margins for training.

A line crop can come from anywhere: our ``ingest`` (the text layer's font box plus a margin),
another detector (boxes that touch the ink), or a loose box that shows parts of the lines
above and below. ``normalise_crop`` turns all of them into the same picture: the line's ink
band (the run of ink rows with the most ink, preferring the one through the crop's middle)
and its ink columns, with a margin of ``MARGIN`` x the band's height on each side, filled
with the background, so fragments of neighbouring lines are gone. Training and reading both
apply it (a model's run config or export says ``crop: ink``), so a model never depends on
how its crops were cut.

``CropJitter`` is the training side: before normalisation it re-cuts each stored crop with a
random margin, from touching the ink to half a line height of background, moves it up or
down a little, and sometimes paints strips of neighbouring lines into the margins above and
below (a loose box's neighbours), so the model also sees what normalisation leaves when it
is imperfect.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["MARGIN", "MIN_CONTRAST", "CROP_MODES", "is_blank", "ink_mask", "ink_band", "crop_box", "cut_crop", "normalise_crop",
           "normalise_crops", "CropJitter"]

MARGIN = 0.25  # normalised margin, as a share of the ink band's height, each side
MIN_CONTRAST = 40  # grey levels between ink and paper below which a crop is left as it is
CROP_MODES = ("none", "ink")


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.flatnonzero(m[1:] != m[:-1])
    return list(zip(d[::2].tolist(), d[1::2].tolist()))


def _median_of_counts(counts: np.ndarray) -> float:
    """``np.median`` of the values whose histogram is ``counts`` (value k occurs counts[k] times)."""
    n = int(counts.sum())
    cum = np.cumsum(counts)
    lo, hi = np.searchsorted(cum, [(n - 1) // 2, n // 2], side="right")
    return (int(lo) + int(hi)) / 2


def _background(img: np.ndarray) -> int:
    """The paper's grey level: the median of the lighter half of the pixels. From the grey
    levels' histogram (uint8 crops: the same value as ``np.median`` twice, without sorting)."""
    if img.dtype != np.uint8:
        flat = img.reshape(-1)
        return int(np.median(flat[flat >= np.median(flat)]))
    counts = np.bincount(img.reshape(-1), minlength=256)
    lighter = counts.copy()
    lighter[: int(np.ceil(_median_of_counts(counts)))] = 0
    return int(_median_of_counts(lighter))


def is_blank(img: np.ndarray) -> bool:
    """A crop without contrast: less than ``MIN_CONTRAST`` grey levels between its darkest and
    lightest pixel, so no ink to read (empty paper, a faint tint)."""
    return img.size == 0 or int(img.max()) - int(img.min()) < MIN_CONTRAST


def ink_mask(img: np.ndarray) -> np.ndarray | None:
    """Dark-on-light ink pixels (Otsu), or ``None`` for a crop without contrast (blank)."""
    if is_blank(img):
        return None
    _, ink = cv2.threshold(img, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    return ink.astype(bool)


def ink_band(ink: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(x0, y0, x1, y1)`` of the main text line in an ink mask: rows with ink form bands
    (gaps of one row are closed); the band through the middle row wins if it holds at least
    half the ink of the heaviest band, else the heaviest; columns are that band's ink extent."""
    h = ink.shape[0]
    rows = ink.sum(1)
    filled = rows > 0
    filled[1:-1] |= filled[:-2] & filled[2:]  # close one-row gaps (dots, thin joins)
    bands = _runs(filled)
    if not bands:
        return None
    mass = [int(rows[a:b].sum()) for a, b in bands]
    best = int(np.argmax(mass))
    mid = h / 2
    for k, (a, b) in enumerate(bands):
        if a <= mid < b and mass[k] >= 0.5 * mass[best]:
            best = k
            break
    y0, y1 = bands[best]
    cols = np.flatnonzero(ink[y0:y1].any(0))
    return int(cols[0]), y0, int(cols[-1]) + 1, y1


def crop_box(img: np.ndarray, margin: float = MARGIN) -> tuple[int, int, int, int, int] | None:
    """``(x0, y0, x1, y1, m)``: the ink band :func:`normalise_crop` keeps and its margin in
    pixels, or ``None`` for a crop without contrast (left unchanged)."""
    ink = ink_mask(img)
    box = None if ink is None else ink_band(ink)
    if box is None:
        return None
    x0, y0, x1, y1 = box
    return x0, y0, x1, y1, max(1, int(round(margin * (y1 - y0))))


def cut_crop(img: np.ndarray, box: tuple[int, int, int, int, int], fill: int) -> np.ndarray:
    """``img`` cut to ``box`` (from :func:`crop_box`) with its margin filled with ``fill``:
    the same geometry for a crop and anything aligned with it (a mask of its pixels)."""
    x0, y0, x1, y1, m = box
    out = np.full((y1 - y0 + 2 * m, x1 - x0 + 2 * m), fill, img.dtype)
    out[m:m + y1 - y0, m:m + x1 - x0] = img[y0:y1, x0:x1]
    return out


def normalise_crop(img: np.ndarray, margin: float = MARGIN) -> np.ndarray:
    """The crop cut to its main line's ink band plus ``margin`` x the band height each side,
    everything outside the band filled with the background (grey uint8 in, grey uint8 out).
    A crop without contrast (blank, a no-text image) is returned unchanged."""
    box = crop_box(img, margin)
    return img if box is None else cut_crop(img, box, _background(img))


def normalise_crops(images: list[np.ndarray], mode: str) -> list[np.ndarray]:
    if mode not in CROP_MODES:
        raise ValueError(f"crop mode must be one of {', '.join(CROP_MODES)}, got {mode!r}")
    return images if mode == "none" else [normalise_crop(im) for im in images]


class CropJitter:
    """Callable ``uint8 H x W -> uint8``: a stored crop re-cut with random margins (0 to
    ``max_margin`` x the ink height, each side drawn apart) and a vertical offset, and with
    probability ``neighbour_p`` strips of neighbouring lines in the margins above and below.
    Stateless (its randomness is NumPy's global generator, which checkpoints capture), so a
    resumed run sees the same crops."""

    def __init__(self, max_margin: float = 0.5, neighbour_p: float = 0.3, shift: float = 0.15, p: float = 0.8):
        self.max_margin, self.neighbour_p, self.shift, self.p = max_margin, neighbour_p, shift, p

    def __call__(self, img: np.ndarray) -> np.ndarray:
        rng = np.random
        ink = ink_mask(img)
        box = None if ink is None else ink_band(ink)
        if box is None or rng.random() >= self.p:
            return img
        x0, y0, x1, y1 = box
        # margins in line heights: the ink band's, or, for a band of dots or underscores far
        # thinner than its crop, half the stored crop's height (about the font's size)
        bh = max(y1 - y0, img.shape[0] // 2)
        bg = _background(img)
        top, bottom, left, right = (int(round(rng.uniform(0, self.max_margin) * bh)) for _ in range(4))
        dy = int(round(rng.uniform(-self.shift, self.shift) * bh))
        top, bottom = max(0, top + dy), max(0, bottom - dy)
        pad = max(top, bottom, left, right) + 1
        canvas = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=bg)
        out = canvas[pad + y0 - top: pad + y1 + bottom, pad + x0 - left: pad + x1 + right].copy()
        if rng.random() < self.neighbour_p:
            self._neighbours(out, img[y0:y1, x0:x1], top, bottom, bh)
        return out

    @staticmethod
    def _neighbours(out: np.ndarray, band: np.ndarray, top: int, bottom: int, bh: int) -> None:
        """Darken the top margin with the lower rows of a line like this one (the line above's
        descenders and letter bottoms) and the bottom margin with the upper rows (the line
        below's ascenders), shifted sideways, a gap of leading away from the line."""
        rng = np.random
        for side, room in (("top", top), ("bottom", bottom)):
            depth = room - int(round(rng.uniform(0.1, 0.3) * bh))
            if depth < 2 or rng.random() < 0.4:
                continue
            depth = min(depth, band.shape[0])
            strip = np.roll(band[-depth:] if side == "top" else band[:depth], rng.randint(0, band.shape[1]), axis=1)
            w = min(strip.shape[1], out.shape[1])
            x = rng.randint(0, out.shape[1] - w + 1)
            region = out[:depth, x:x + w] if side == "top" else out[out.shape[0] - depth:, x:x + w]
            np.minimum(region, strip[:, :w], out=region)
