"""Where the text lines of a page are: from a PDF's text layer, or, for image-only pages and
page images, found by a line segmentation with OpenCV. Shared by ingestion (labelled crops)
and recognition (reading pages).

The segmentation (``segment_lines``) is for printed, horizontal, single-orientation text:
Otsu binarisation (dark ink on light paper), a horizontal projection profile splits the
page into text bands, and inside a band runs of ink columns separated by gaps wider than
``gap`` x the band height become separate lines (table cells, columns). Its limits: skew
over about 2 degrees merges neighbouring lines; touching lines (no blank row between them)
come out as one box; opaque dark stamps or figures that overlap text join the band they
touch; vertical and rotated text is not found; light watermarks are ignored only as long as
they are lighter than Otsu's threshold.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import pymupdf

__all__ = ["ROTATE", "PageError", "TextLine", "render", "text_lines", "crop_line", "same_line", "segment_lines"]

# Direction (rounded) -> cv2 rotation that makes the crop read left to right.
ROTATE: dict[tuple[float, float], int | None] = {(1, 0): None, (0, -1): cv2.ROTATE_90_CLOCKWISE,
                                                 (0, 1): cv2.ROTATE_90_COUNTERCLOCKWISE, (-1, 0): cv2.ROTATE_180}


class PageError(Exception):
    """A page that cannot be used; the message says why."""


@dataclass
class TextLine:
    text: str  # as in the text layer, not normalised
    bbox: tuple[float, float, float, float]  # PDF points, unrotated page
    direction: tuple[float, float]


def render(page: pymupdf.Page, dpi: int, max_pixels: int) -> np.ndarray:
    """Grey raster of the unrotated page (so that raster and text layer share coordinates)."""
    if page.rotation:
        page.set_rotation(0)
    scale = dpi / 72.0
    w_px, h_px = page.rect.width * scale, page.rect.height * scale
    if w_px * h_px > max_pixels:
        raise PageError(f"page too large to rasterise: {w_px:.0f}x{h_px:.0f} px at {dpi} dpi exceeds {max_pixels} px")
    pix = page.get_pixmap(matrix=pymupdf.Matrix(scale, scale), colorspace=pymupdf.csGRAY, alpha=False)
    return np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, : pix.width]


def text_lines(page: pymupdf.Page, min_alpha: int = 240) -> tuple[list[TextLine], dict[str, int], bool]:
    """Upright, opaque text-layer lines; the lines left out by reason; whether the page has
    any text at all. A run of opaque spans is a line: translucent spans (watermark text)
    split or drop it, lines at angles other than multiples of 90 degrees are left out."""
    if page.rotation:
        page.set_rotation(0)
    info = page.get_text("dict", flags=pymupdf.TEXT_MEDIABOX_CLIP)
    raw = [ln for b in info["blocks"] if b.get("type") == 0 for ln in b["lines"]]
    has_text = any(s["text"].strip() for ln in raw for s in ln["spans"])
    out: list[TextLine] = []
    skipped: dict[str, int] = {}
    for ln in raw:
        d = (round(ln["dir"][0], 3), round(ln["dir"][1], 3))
        if d not in ROTATE:
            skipped["not-upright (rotated text)"] = skipped.get("not-upright (rotated text)", 0) + 1
            continue
        segs = _opaque_runs(ln["spans"], min_alpha)
        if not segs:
            skipped["translucent (watermark text)"] = skipped.get("translucent (watermark text)", 0) + 1
        for spans in segs:
            bbox = (min(s["bbox"][0] for s in spans), min(s["bbox"][1] for s in spans),
                    max(s["bbox"][2] for s in spans), max(s["bbox"][3] for s in spans))
            out.append(TextLine("".join(s["text"] for s in spans), bbox, d))
    return out, skipped, has_text


def _opaque_runs(spans: list[dict], min_alpha: int) -> list[list[dict]]:
    runs: list[list[dict]] = []
    cur: list[dict] = []
    for span in spans:
        if span.get("alpha", 255) < min_alpha:
            if cur:
                runs.append(cur)
                cur = []
        else:
            cur.append(span)
    if cur:
        runs.append(cur)
    return runs


def crop_line(img: np.ndarray, line: TextLine, scale: float, margin: float, min_px: int = 5,
              affine: np.ndarray | None = None):
    """The line's crop (upright) with a margin of ``margin`` x its height on each side, and
    its pixel box; ``None`` if it is smaller than ``min_px``. ``affine`` (2x3) maps raster
    pixels to the image's when the page was rotated or sheared after rendering: the crop is
    then the box around the mapped corners."""
    x0, y0, x1, y1 = line.bbox
    height = (y1 - y0) if line.direction[1] == 0 else (x1 - x0)
    m = margin * height
    fx0, fy0, fx1, fy1 = (x0 - m) * scale, (y0 - m) * scale, (x1 + m) * scale, (y1 + m) * scale
    if affine is not None:
        corners = np.array([[fx0, fy0, 1], [fx1, fy0, 1], [fx0, fy1, 1], [fx1, fy1, 1]]) @ np.asarray(affine).T
        fx0, fy0 = corners.min(0)
        fx1, fy1 = corners.max(0)
    X0 = max(0, int(np.floor(fx0)))
    Y0 = max(0, int(np.floor(fy0)))
    X1 = min(img.shape[1], int(np.ceil(fx1)))
    Y1 = min(img.shape[0], int(np.ceil(fy1)))
    if min(X1 - X0, Y1 - Y0) < min_px:
        return None
    crop = img[Y0:Y1, X0:X1]
    rotation = ROTATE[line.direction]
    if rotation is not None:
        crop = cv2.rotate(crop, rotation)
    return np.ascontiguousarray(crop), (X0, Y0, X1, Y1)


def same_line(truth: tuple, found: tuple) -> bool:
    """Whether box ``found`` is the line ``truth`` (both ``x0, y0, x1, y1``): its centre row
    lies inside ``truth`` and the two overlap by at least half their joint width. How the
    segmentation is scored against text-layer boxes (which are taller than the ink)."""
    cy = (found[1] + found[3]) / 2
    ix = max(0, min(truth[2], found[2]) - max(truth[0], found[0]))
    return truth[1] <= cy <= truth[3] and ix / (max(truth[2], found[2]) - min(truth[0], found[0])) >= 0.5


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """[start, end) of the runs of True in a 1-D mask."""
    m = np.concatenate([[False], mask.astype(bool), [False]])
    d = np.flatnonzero(m[1:] != m[:-1])
    return list(zip(d[::2].tolist(), d[1::2].tolist()))


def segment_lines(grey: np.ndarray, min_height: int = 5, gap: float = 1.2, margin: tuple[float, float] = (0.25, 0.35),
                  max_height_share: float = 0.25) -> list[tuple[int, int, int, int]]:
    """Pixel boxes ``(x0, y0, x1, y1)`` of the text lines of a page image, in reading order
    (top to bottom, left to right within a band). ``margin`` (horizontal, vertical) is in
    units of the line's ink height: with the defaults a crop has about the proportions of a
    text-layer crop (font box plus 0.2 of it each side), which is what the models train on."""
    if grey.ndim != 2 or min(grey.shape) < min_height:
        return []
    h, w = grey.shape
    if int(grey.max()) - int(grey.min()) < 40:  # blank (or uniformly grey) page
        return []
    _, ink = cv2.threshold(grey, 0, 1, cv2.THRESH_BINARY_INV + cv2.THRESH_OTSU)
    # specks (noise, dust) of one or two pixels do not make a line
    n, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    small = stats[:, cv2.CC_STAT_AREA] < 3
    small[0] = False
    if small.any():
        ink[small[labels]] = 0
    boxes: list[tuple[int, int, int, int]] = []
    bands: list[list[int]] = []
    for y0, y1 in _runs(ink.sum(1) > 0):
        # a thin run just under a band (underscores, a rule under the text) belongs to it
        if bands and y1 - y0 < min_height and y0 - bands[-1][1] <= 3:
            bands[-1][1] = y1
        else:
            bands.append([y0, y1])
    for y0, y1 in bands:
        bh = y1 - y0
        if bh < min_height or bh > max_height_share * h:
            continue  # too thin for text, or a figure / a block of touching lines
        cols = _runs(ink[y0:y1].sum(0) > 0)
        groups: list[list[int]] = []
        for c0, c1 in cols:
            if groups and c0 - groups[-1][1] <= gap * bh:
                groups[-1][1] = c1
            else:
                groups.append([c0, c1])
        for c0, c1 in groups:
            rows = np.flatnonzero(ink[y0:y1, c0:c1].sum(1) > 0)
            ty0, ty1 = y0 + int(rows[0]), y0 + int(rows[-1]) + 1
            th = ty1 - ty0
            if th < min_height and (c1 - c0) < 2 * min_height:
                continue  # a lone mark (a dash, a dot), not a line
            mx, my = (int(round(f * max(th, min_height))) for f in margin)
            boxes.append((max(0, c0 - mx), max(0, ty0 - my), min(w, c1 + mx), min(h, ty1 + my)))
    return boxes
