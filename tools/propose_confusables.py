#!/usr/bin/env python3
"""Propose visually confusable pairs from glyph renderings, for review into ocr_robust/charsets/confusables.tsv.

Every character of the charset (and, with --bigrams, two-character strings of the thin
letters and digits) is rendered in every font face at the same size and baseline, into a
fixed box, so size and position count (``o`` vs ``O``). Bitmaps are blurred a little (as
print at low resolution is) and compared by normalised ink distance; the distance of a pair
is its median over fonts, and the list gives each string's nearest neighbours.

    python tools/propose_confusables.py --top 3 --max-dist 0.35 --new-only > proposals.tsv

Output columns: source, target, distance (0 = identical), fonts where the two are nearest
neighbours, and ``new`` if the pair is not in the current table. A person reviews the list
and copies the good pairs, with weights, into ocr_robust/charsets/confusables.tsv.
"""

from __future__ import annotations

import argparse
import itertools
import sys
from pathlib import Path

import cv2
import numpy as np
import pymupdf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ocr_robust.charset import Charset, ConfusableTable  # noqa: E402
from ocr_robust.pdf.fonts import load_font, resolve_fonts  # noqa: E402

SIZE = 24.0  # font size in points, rendered at 72 dpi: 1 pt = 1 px
BIGRAM_CHARS = "acdeilnortuvwIl1|"


def render_strings(strings: list[str], font_key: str, box_w: float) -> np.ndarray:
    """Render each string into its own box (same baseline); returns N x H x W float ink maps."""
    font = load_font(font_key)
    box_h = SIZE * 1.6
    cols = 16
    rows = -(-len(strings) // cols)
    doc = pymupdf.open()
    page = doc.new_page(width=cols * box_w, height=rows * box_h)
    tw = pymupdf.TextWriter(page.rect)
    for k, s in enumerate(strings):
        r, c = divmod(k, cols)
        tw.append((c * box_w + 2, r * box_h + SIZE * 1.15), s, font=font, fontsize=SIZE)
    tw.write_text(page)
    pix = page.get_pixmap(colorspace=pymupdf.csGRAY, alpha=False)
    img = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, : pix.width]
    ink = 1.0 - img.astype(np.float32) / 255.0
    bw, bh = int(box_w), int(box_h)
    cells = []
    for k in range(len(strings)):
        r, c = divmod(k, cols)
        cell = ink[int(r * box_h): int(r * box_h) + bh, int(c * box_w): int(c * box_w) + bw]
        cells.append(cv2.GaussianBlur(cell, (0, 0), 1.2))
    return np.stack(cells)


def distances(cells: np.ndarray) -> np.ndarray:
    """Pairwise normalised L2 distance between ink maps: |a-b| / (|a| + |b|)."""
    flat = cells.reshape(len(cells), -1).astype(np.float64)
    norms = np.linalg.norm(flat, axis=1)
    sq = (flat**2).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * flat @ flat.T, 0)
    denom = norms[:, None] + norms[None, :]
    with np.errstate(divide="ignore", invalid="ignore"):
        d = np.sqrt(d2) / np.where(denom > 0, denom, 1)
    d[denom == 0] = 1.0
    return d


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--charset", default="latin")
    ap.add_argument("--fonts", default="all", help="font faces or lists (see ocr-robust synth --list)")
    ap.add_argument("--table", default="confusables", help="the current table, to mark proposals as new or known")
    ap.add_argument("--top", type=int, default=3, help="nearest neighbours per string")
    ap.add_argument("--max-dist", type=float, default=0.4)
    ap.add_argument("--bigrams", action="store_true", help=f"also two-character strings of {BIGRAM_CHARS!r}")
    ap.add_argument("--new-only", action="store_true")
    a = ap.parse_args(argv)

    charset = Charset.load(a.charset)
    table = ConfusableTable.load(a.table)
    known = {(e.source, e.target) for e in table.entries}
    strings = [c for c in charset.chars if c.strip()]
    if a.bigrams:
        strings += ["".join(p) for p in itertools.product(BIGRAM_CHARS, repeat=2)]
    fonts = resolve_fonts(a.fonts)
    per_font = []
    nearest_votes = np.zeros((len(strings), len(strings)), np.int32)
    for f in fonts:
        d = distances(render_strings(strings, f, box_w=SIZE * 1.6))
        np.fill_diagonal(d, np.inf)
        per_font.append(d)
        nn = np.argsort(d, axis=1)[:, : a.top]
        for i, js in enumerate(nn):
            nearest_votes[i, js] += 1
    med = np.median(np.stack(per_font), axis=0)
    print("source\ttarget\tdistance\tfonts_nearest\tstatus")
    for i, s in enumerate(strings):
        if len(s) > 1:  # a bigram is only interesting as a look-alike of a single character
            cand = [j for j in np.argsort(med[i]) if len(strings[j]) == 1][: a.top]
        else:
            cand = list(np.argsort(med[i])[: a.top])
        for j in cand:
            t = strings[j]
            if med[i, j] > a.max_dist:
                continue
            status = "known" if (s, t) in known else "new"
            if a.new_only and status == "known":
                continue
            print(f"{s}\t{t}\t{med[i, j]:.3f}\t{nearest_votes[i, j]}/{len(fonts)}\t{status}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
