"""No-text line images (empty label) mixed into training: the model must learn not to
read text where there is none (METHODS.md section 1, S1).

Kinds: ``noise`` (Gaussian or salt-and-pepper on paper), ``solid`` (a flat grey level),
``shapes`` (random lines, rectangles, circles and arcs), ``watermark`` (a band cut through
large, faint, rotated letters and stamp rings: watermark fragments without readable text),
``rules`` (opt-in, not in DEFAULT_KINDS: what typeset pages draw between their lines: solid,
dashed and dotted rules, table borders and vertical bars, rows of small boxes, a rule's end or
a frame's corner, 1-3 px of grey ink, sometimes blurred; the marks a model misreads as ``-``,
``...``, ``I`` or ``|``).
All are grey uint8, ``height`` x ``width``, drawn from a NumPy generator.
"""

from __future__ import annotations

from collections.abc import Callable

import cv2
import numpy as np
import torch

from ..images import HEIGHT
from .dataset import LineBatch

__all__ = ["KINDS", "DEFAULT_KINDS", "make_notext", "procedural", "procedural_source", "add_notext"]

KINDS = ("noise", "solid", "shapes", "watermark", "rules")
DEFAULT_KINDS = ("noise", "solid", "shapes", "watermark")  # rules: opt-in (benchmarks/RESULTS.md, no-text rules)


def _paper(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    return np.full((h, w), rng.integers(200, 256), np.uint8)


def _rules(rng: np.random.Generator, img: np.ndarray) -> np.ndarray:
    """Rules, bars, leaders and box rows drawn on ``img`` (paper) in place; returns it."""
    h, w = img.shape
    for _ in range(int(rng.integers(1, 4))):
        c = int(rng.integers(0, 160))
        t = int(rng.integers(1, 4))
        s = int(rng.integers(5))
        x0 = int(rng.integers(0, max(1, w // 3))) if rng.random() < 0.5 else 0  # a rule may start inside
        x1 = w - 1 - (int(rng.integers(0, max(1, w // 3))) if rng.random() < 0.5 else 0)
        y = int(rng.integers(0, h))
        if s == 0:  # a solid rule (or a double one, as under a table's header)
            cv2.line(img, (x0, y), (x1, y), c, t)
            if rng.random() < 0.3:
                y2 = min(h - 1, y + t + int(rng.integers(2, 5)))
                cv2.line(img, (x0, y2), (x1, y2), c, t)
        elif s in (1, 2):  # dashed or dotted: a period and a mark length
            period = int(rng.integers(3, 13)) if s == 1 else int(rng.integers(2, 7))
            mark = max(1, int(period * rng.uniform(0.3, 0.7))) if s == 1 else t
            for x in range(x0, x1, period):
                if s == 1:
                    cv2.line(img, (x, y), (min(x1, x + mark - 1), y), c, t)
                else:
                    cv2.circle(img, (x, y), max(0, t - 1), c, -1)
        elif s == 3:  # vertical bars: table borders, a change bar, a frame's side
            for _ in range(int(rng.integers(1, 4))):
                x = int(rng.integers(0, w))
                ya, yb = sorted(int(v) for v in rng.integers(0, h, 2))
                if rng.random() < 0.6:
                    ya, yb = 0, h - 1  # bars usually cross the whole band
                cv2.line(img, (x, ya), (x, yb), c, t)
                if rng.random() < 0.3:  # a corner: the bar meets a rule
                    yc = ya if rng.random() < 0.5 else yb
                    cv2.line(img, (x, yc), (x1 if rng.random() < 0.5 else x0, yc), c, t)
        else:  # a row of small boxes or squares (a form's character cells, a checkbox list)
            side = int(rng.integers(3, max(4, h - 2)))
            gap = int(rng.integers(1, 2 * side))
            yt = int(rng.integers(0, max(1, h - side)))
            filled = rng.random() < 0.3
            for x in range(x0, x1 - side, side + gap):
                cv2.rectangle(img, (x, yt), (x + side, yt + side), c, -1 if filled else 1)
    if rng.random() < 0.3:
        img = cv2.GaussianBlur(img, (3, 3), float(rng.uniform(0.3, 1.0)))
    return img


def make_notext(rng: np.random.Generator, width: int, height: int = HEIGHT, kind: str | None = None,
                kinds: tuple[str, ...] = DEFAULT_KINDS) -> np.ndarray:
    """One no-text image of ``kind``, or of one of ``kinds`` drawn uniformly."""
    kind = kind or kinds[int(rng.integers(len(kinds)))]
    h, w = height, max(4, int(width))
    if kind == "solid":
        return np.full((h, w), rng.integers(0, 256), np.uint8)
    if kind == "noise":
        img = _paper(rng, h, w).astype(np.float32)
        if rng.random() < 0.5:
            img += rng.normal(0, rng.uniform(5, 60), (h, w))
        else:
            m = rng.random((h, w))
            p = rng.uniform(0.01, 0.15)
            img[m < p / 2] = 0
            img[m > 1 - p / 2] = 255
        return np.clip(img, 0, 255).astype(np.uint8)
    img = _paper(rng, h, w)
    if kind == "shapes":
        for _ in range(int(rng.integers(1, 6))):
            c = int(rng.integers(0, 180))
            t = int(rng.integers(1, 4))
            p1 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            p2 = (int(rng.integers(0, w)), int(rng.integers(0, h)))
            s = int(rng.integers(3))
            if s == 0:
                cv2.line(img, p1, p2, c, t)
            elif s == 1:
                cv2.rectangle(img, p1, p2, c, t)
            else:
                cv2.circle(img, p1, int(rng.integers(2, 3 * h)), c, t)
        return img
    if kind == "watermark":  # a thin band through huge letters or a stamp ring
        big_h = h * int(rng.integers(4, 9))
        big: np.ndarray = np.full((big_h, w + 2 * big_h), 255, np.uint8)
        if rng.random() < 0.5:
            text = "".join(chr(int(rng.integers(65, 91))) for _ in range(int(rng.integers(3, 9))))
            scale = big_h / 30
            cv2.putText(big, text, (0, int(big_h * 0.8)), cv2.FONT_HERSHEY_SIMPLEX, scale, 0, max(2, int(scale * 3)))
        else:
            cx, cy = int(rng.integers(0, big.shape[1])), big_h // 2
            for r in (big_h // 2 - 2, big_h // 3):
                cv2.circle(big, (cx, cy), max(3, r), 0, max(2, big_h // 25))
        rot = cv2.getRotationMatrix2D((big.shape[1] / 2, big_h / 2), float(rng.uniform(-45, 45)), 1.0)
        big = cv2.warpAffine(big, rot, (big.shape[1], big_h), borderValue=255)
        y = int(rng.integers(0, big_h - h))
        band = big[y:y + h, big_h:big_h + w].astype(np.float32)
        alpha = rng.uniform(0.1, 0.5)  # faint, as a watermark
        out = img.astype(np.float32) * (1 - alpha * (1 - band / 255.0))
        return np.clip(out, 0, 255).astype(np.uint8)
    if kind == "rules":
        return _rules(rng, img)
    raise ValueError(f"unknown no-text kind {kind!r}; choose from {', '.join(KINDS)}")


def procedural(kinds: tuple[str, ...] = DEFAULT_KINDS) -> Callable[[np.random.Generator, int, int], np.ndarray]:
    """An ``add_notext`` source drawing from ``kinds`` (each checked against KINDS)."""
    unknown = [k for k in kinds if k not in KINDS]
    if unknown or not kinds:
        raise ValueError(f"unknown no-text kind {', '.join(map(repr, unknown)) or '(none given)'}; "
                         f"choose from {', '.join(KINDS)}")
    return lambda rng, width, height: make_notext(rng, width, height, kinds=kinds)


def procedural_source(spec: str) -> Callable[[np.random.Generator, int, int], np.ndarray] | None:
    """The source of a ``notext_source`` setting that starts with ``procedural``: None (the
    default kinds) for ``procedural``, :func:`procedural` of the kinds for ``procedural:K,...``."""
    if spec == "procedural":
        return None
    if not spec.startswith("procedural:"):
        raise ValueError(f"not a procedural no-text source: {spec!r}")
    return procedural(tuple(spec[len("procedural:"):].split(",")))


def add_notext(batch: LineBatch, rate: float, rng: np.random.Generator,
               source: Callable[[np.random.Generator, int, int], np.ndarray] | None = None) -> LineBatch:
    """Append ``round(rate * N)`` (at least one with probability ``rate * N`` when that is
    below one) no-text images with empty labels to a collated batch, as wide as its lines;
    ``source(rng, width, height)`` makes them (default :func:`make_notext`; SAN's
    backgrounds with ``--notext-source san:SAN``)."""
    n = len(batch["texts"])
    expected = rate * n
    k = int(expected) + int(rng.random() < expected - int(expected))
    if k == 0:
        return batch
    x = batch["images"]
    W = x.shape[-1]
    extra, widths = [], []
    for _ in range(k):
        w = int(rng.integers(max(4, W // 4), W + 1))
        img = np.full((x.shape[-2], W), 255, np.uint8)
        img[:, :w] = (source or make_notext)(rng, w, x.shape[-2])
        img[:, w:] = int(np.median(img[:, w - 1]))
        extra.append(img)
        widths.append(w)
    out = batch.copy()
    out["images"] = torch.cat([x, torch.from_numpy(np.stack(extra)).float()[:, None]], 0)
    out["widths"] = torch.cat([batch["widths"], torch.tensor(widths, dtype=torch.long)])
    out["target_lengths"] = torch.cat([batch["target_lengths"], torch.zeros(k, dtype=torch.long)])
    out["texts"] = list(batch["texts"]) + [""] * k
    out["indices"] = torch.cat([batch["indices"], torch.full((k,), -1, dtype=torch.long)])
    return out
