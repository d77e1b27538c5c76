"""Watermark styles drawn into synthetic PDFs as vector content, and named lists of them.

A style has a *planner* (random parameters from a page's RNG and the boxes of its body
lines, so the mark lands on text) and a *painter* (draws those parameters into a page).
Planning is separate from painting so the same page can be drawn with and without its
marks (tests use this to show that watermark pixels overlap text lines).

Watermark text is always translucent or rotated: ``ingest`` keeps only opaque text whose
direction is a multiple of 90 degrees, as a person reading the page would.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import pymupdf

from .select import resolve_names

__all__ = ["Box", "Params", "WM_WORDS", "STAMP_WORDS", "GREYS", "COLOURS", "REDS", "STAMP_INKS", "SEAL_WORDS", "MONTHS",
           "NOTES", "PENS", "plan_diagonal", "plan_tiled", "plan_logo", "plan_stamp", "plan_seal", "plan_notes",
           "plan_band", "plan_header", "plan_strokes", "paint_diagonal", "paint_tiled", "paint_logo", "paint_stamp",
           "paint_seal", "paint_notes", "paint_band", "paint_header", "paint_strokes", "STYLES", "HELDOUT_STYLES",
           "style_lists", "resolve_styles", "plan_marks", "paint_layer", "marked_copy"]

Box = tuple[float, float, float, float]
Params = dict[str, Any]

WM_WORDS = ["CONFIDENTIAL", "COPY", "DRAFT", "SAMPLE", "VOID", "PAID", "DUPLICATE", "NOT VALID",
            "INTERNAL USE ONLY", "SPECIMEN", "CERTIFIED COPY", "ORIGINAL", "DO NOT COPY", "PREVIEW"]
STAMP_WORDS = ["APPROVED", "RECEIVED", "PAID", "VERIFIED", "CHECKED", "URGENT", "FILED", "CANCELLED"]
GREYS = [(0.5, 0.5, 0.5), (0.6, 0.6, 0.6), (0.35, 0.35, 0.35)]
COLOURS = GREYS + [(0.85, 0.2, 0.2), (0.2, 0.35, 0.8), (0.1, 0.55, 0.3), (0.7, 0.5, 0.1)]
REDS = [(0.85, 0.1, 0.1), (0.75, 0.05, 0.15), (0.9, 0.25, 0.2)]
STAMP_INKS = [(0.8, 0.1, 0.15), (0.15, 0.2, 0.7), (0.45, 0.15, 0.6), (0.1, 0.45, 0.25)]
SEAL_WORDS = ["RECEIVED", "ENTERED", "POSTED", "SCANNED", "FAXED", "COPY", "FOR INFORMATION", "ARCHIVED"]
MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]
NOTES = ["OK", "checked", "see p. 2", "urgent!", "paid 12/03", "approved - JD", "copy to file", "call back",
         "done", "?", "ref. 4471", "no", "fixed", "v2", "query", "x", "agreed", "sign here"]
PENS = [(0.1, 0.15, 0.6), (0.7, 0.1, 0.1), (0.15, 0.15, 0.15), (0.1, 0.45, 0.2)]


def _signed_angle(rng: random.Random, lo: float, hi: float) -> float:
    return rng.uniform(lo, hi) * rng.choice([-1, 1])


def _pick_box(rng: random.Random, boxes: list[Box], page: Box) -> Box:
    if boxes:
        return rng.choice(boxes)
    x0, y0, x1, y1 = page
    return (x0 + 0.3 * (x1 - x0), y0 + 0.4 * (y1 - y0), x0 + 0.7 * (x1 - x0), y0 + 0.45 * (y1 - y0))


def _text(page: pymupdf.Page, point, text: str, size: float, angle: float, colour, opacity: float,
          font: str = "hebo", centred: bool = False, render_mode: int = 0) -> None:
    """Text at ``point`` (its baseline start, or its centre if ``centred``), turned ``angle``
    degrees counter-clockwise about that point."""
    p = pymupdf.Point(point)
    start = p
    if centred:
        width = pymupdf.get_text_length(text, fontname=font, fontsize=size)
        start = pymupdf.Point(p.x - width / 2, p.y + 0.35 * size)
    page.insert_text(start, text, fontsize=size, fontname=font, color=colour, fill_opacity=opacity,
                     stroke_opacity=opacity, render_mode=render_mode, border_width=0.02,
                     morph=(p, pymupdf.Matrix(-angle)))


# --- planners ---------------------------------------------------------------------------

def plan_diagonal(rng: random.Random, page: Box, boxes: list[Box]) -> Params:
    x0, y0, x1, y1 = page
    word = rng.choice(WM_WORDS)
    angle = _signed_angle(rng, 25, 60)
    diag = math.hypot(x1 - x0, y1 - y0)
    font = rng.choice(["hebo", "tibo", "helv"])
    width_per_pt = pymupdf.get_text_length(word, fontname=font, fontsize=1)
    size = min(rng.uniform(0.5, 0.8) * diag / max(width_per_pt, 1e-3), 160)
    centre = (rng.uniform(x0 + 0.35 * (x1 - x0), x0 + 0.65 * (x1 - x0)),
              rng.uniform(y0 + 0.35 * (y1 - y0), y0 + 0.65 * (y1 - y0)))
    return {"word": word, "angle": angle, "size": size, "font": font, "centre": centre,
            "colour": rng.choice(COLOURS), "opacity": rng.uniform(0.12, 0.35), "outline": rng.random() < 0.25}


def plan_tiled(rng: random.Random, page: Box, boxes: list[Box]) -> Params:
    x0, y0, x1, y1 = page
    word = rng.choice(WM_WORDS + [f"user{rng.randint(100, 999)}@example.com", "printed 2025-01-07"])
    size = rng.uniform(9, 22)
    angle = 0.0 if rng.random() < 0.3 else _signed_angle(rng, 15, 45)
    step_x = pymupdf.get_text_length(word, fontname="helv", fontsize=size) + rng.uniform(20, 60)
    step_y = size * rng.uniform(3, 6)
    pts = []
    y = y0 + rng.uniform(0, step_y)
    row = 0
    while y < y1 + step_y:
        x = x0 - step_x + (row % 2) * step_x / 2 + rng.uniform(0, 10)
        while x < x1:
            pts.append((x, y))
            x += step_x
        y += step_y
        row += 1
    return {"word": word, "angle": angle, "size": size, "points": pts,
            "colour": rng.choice(COLOURS), "opacity": rng.uniform(0.08, 0.25)}


def plan_logo(rng: random.Random, page: Box, boxes: list[Box]) -> Params:
    x0, y0, x1, y1 = page
    r = rng.uniform(0.15, 0.35) * (x1 - x0)
    centre = (rng.uniform(x0 + r, x1 - r), rng.uniform(y0 + 0.25 * (y1 - y0), y0 + 0.75 * (y1 - y0)))
    shape = rng.choice(["circle", "star", "shield", "rings"])
    n = rng.choice([5, 6, 8])
    return {"shape": shape, "centre": centre, "r": r, "n": n, "rot": rng.uniform(0, 360),
            "colour": rng.choice(COLOURS), "opacity": rng.uniform(0.06, 0.22), "width": rng.uniform(2, 10),
            "initials": "".join(rng.choice("ABCDEHKLMNRSTZ") for _ in range(rng.randint(1, 3)))}


def plan_stamp(rng: random.Random, page: Box, boxes: list[Box]) -> Params:
    bx = _pick_box(rng, boxes, page)
    centre = (rng.uniform(bx[0], max(bx[0], bx[2])), (bx[1] + bx[3]) / 2 + rng.uniform(-10, 10))
    r = rng.uniform(28, 60)
    ring = rng.choice(["* CITY MEDICAL LABORATORY * QUALITY CONTROL ", "* ACCOUNTS DEPARTMENT * ",
                       "* OFFICIAL SEAL * REGISTERED ", "* NORTHGATE DIAGNOSTICS LTD * "])
    return {"centre": centre, "r": r, "ring": ring, "word": rng.choice(STAMP_WORDS), "rot": rng.uniform(-30, 30),
            "colour": rng.choice(REDS), "opacity": rng.uniform(0.55, 0.85), "width": rng.uniform(1.2, 3.0)}


def plan_seal(rng: random.Random, page: Box, boxes: list[Box]) -> Params:
    """A rectangular office stamp (a word, often a date under it) pressed over a line."""
    bx = _pick_box(rng, boxes, page)
    centre = (rng.uniform(bx[0], max(bx[0], bx[2])), (bx[1] + bx[3]) / 2 + rng.uniform(-8, 8))
    date = f"{rng.randint(1, 28):02d} {rng.choice(MONTHS)} {rng.randint(2019, 2026)}" if rng.random() < 0.7 else ""
    return {"centre": centre, "word": rng.choice(SEAL_WORDS), "date": date, "size": rng.uniform(9, 20),
            "angle": _signed_angle(rng, 2, 18), "colour": rng.choice(STAMP_INKS), "opacity": rng.uniform(0.5, 0.9),
            "double": rng.random() < 0.5, "rounded": rng.random() < 0.5, "width": rng.uniform(0.8, 2.2)}


def plan_notes(rng: random.Random, page: Box, boxes: list[Box]) -> Params:
    """Short hand-written-style remarks in pen ink, slanted across body lines."""
    notes = []
    for _ in range(rng.randint(1, 3)):
        bx = _pick_box(rng, boxes, page)
        notes.append({"text": rng.choice(NOTES), "point": (rng.uniform(bx[0], max(bx[0], bx[2] - 30)),
                                                           (bx[1] + bx[3]) / 2 + rng.uniform(-4, 10)),
                      "size": rng.uniform(9, 20), "angle": _signed_angle(rng, 3, 20),
                      "font": rng.choice(["heit", "hebi", "coit"]), "colour": rng.choice(PENS),
                      "opacity": rng.uniform(0.65, 0.9)})
    return {"notes": notes}


def plan_band(rng: random.Random, page: Box, boxes: list[Box]) -> Params:
    x0, y0, x1, y1 = page
    bx = _pick_box(rng, boxes, page)
    h = rng.uniform(8, 60)
    cy = (bx[1] + bx[3]) / 2 + rng.uniform(-5, 5)
    return {"y": cy - h / 2, "h": h, "x0": x0, "x1": x1,
            "angle": 0.0 if rng.random() < 0.6 else _signed_angle(rng, 3, 30),
            "grey": rng.uniform(0.3, 0.7), "opacity": rng.uniform(0.12, 0.4)}


def plan_header(rng: random.Random, page: Box, boxes: list[Box]) -> Params:
    x0, y0, x1, y1 = page
    top = rng.random() < 0.5
    text = rng.choice(["COPY - NOT VALID WITHOUT SIGNATURE", "Printed by user jdoe on 2025-03-02 14:07 - page 1",
                       "CONTROLLED DOCUMENT - UNCONTROLLED WHEN PRINTED", "Received 12 MAR 2024 - Accounts Payable",
                       "PRIVATE & CONFIDENTIAL", "Scanned copy - original on file"])
    size = rng.uniform(8, 16)
    ref = (sorted(boxes, key=lambda b: b[1])[0] if top else sorted(boxes, key=lambda b: b[3])[-1]) if boxes else None
    y = (ref[3] if top else ref[1] + size) if ref else (y0 + 30 if top else y1 - 30)
    y += rng.uniform(-0.6, 0.2) * size
    width = pymupdf.get_text_length(text, fontname="hebo", fontsize=size)
    x = rng.uniform(x0 + 20, max(x0 + 21, x1 - width - 20))
    return {"text": text, "x": x, "y": y, "size": size, "width": width, "boxed": rng.random() < 0.6,
            "colour": rng.choice(REDS + GREYS + [(0.2, 0.35, 0.8)]), "opacity": rng.uniform(0.45, 0.85),
            "angle": rng.uniform(-4, 4)}


def plan_strokes(rng: random.Random, page: Box, boxes: list[Box]) -> Params:
    strokes = []
    for _ in range(rng.randint(1, 4)):
        bx = _pick_box(rng, boxes, page)
        kind = rng.choice(["pen", "pen", "highlighter"])
        y = (bx[1] + bx[3]) / 2
        if kind == "highlighter":
            pts = [(bx[0], y), (bx[0] + (bx[2] - bx[0]) / 3, y + rng.uniform(-2, 2)),
                   (bx[0] + 2 * (bx[2] - bx[0]) / 3, y + rng.uniform(-2, 2)), (bx[2], y)]
            strokes.append({"kind": kind, "pts": pts, "width": (bx[3] - bx[1]) * 0.9,
                            "colour": rng.choice([(1, 0.9, 0.2), (0.5, 1, 0.5), (1, 0.6, 0.8)]), "opacity": 0.35})
        else:
            x = rng.uniform(bx[0], bx[2])
            pts = [(x + rng.uniform(-40, 40), y + rng.uniform(-40, 40)) for _ in range(4)]
            pts[1] = (x, y)  # pass through the line
            strokes.append({"kind": kind, "pts": pts, "width": rng.uniform(0.4, 1.6),
                            "colour": rng.choice([(0.1, 0.1, 0.5), (0.1, 0.1, 0.1), (0.6, 0.1, 0.1)]),
                            "opacity": rng.uniform(0.6, 1.0)})
    return {"strokes": strokes}


# --- painters ---------------------------------------------------------------------------

def paint_diagonal(page: pymupdf.Page, p: Params) -> None:
    _text(page, p["centre"], p["word"], p["size"], p["angle"], p["colour"], p["opacity"], font=p["font"],
          centred=True, render_mode=1 if p["outline"] else 0)


def paint_tiled(page: pymupdf.Page, p: Params) -> None:
    for pt in p["points"]:
        _text(page, pt, p["word"], p["size"], p["angle"], p["colour"], p["opacity"], font="helv")


def paint_logo(page: pymupdf.Page, p: Params) -> None:
    cx, cy = p["centre"]
    r, col, op = p["r"], p["colour"], p["opacity"]
    shape = page.new_shape()
    if p["shape"] == "circle":
        shape.draw_circle((cx, cy), r)
    elif p["shape"] == "rings":
        for k in range(3):
            shape.draw_circle((cx, cy), r * (1 - 0.25 * k))
    elif p["shape"] == "star":
        pts = []
        for k in range(2 * p["n"]):
            a = math.radians(p["rot"] + 180 * k / p["n"])
            rr = r if k % 2 == 0 else r * 0.45
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        shape.draw_polyline(pts + [pts[0]])
    else:  # shield
        pts = [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + 0.2 * r), (cx, cy + r), (cx - r, cy + 0.2 * r),
               (cx - r, cy - r)]
        shape.draw_polyline(pts)
    shape.finish(color=col, fill=col, width=p["width"], fill_opacity=op * 0.6, stroke_opacity=op, closePath=True)
    shape.commit()
    _text(page, (cx, cy), p["initials"], r * 0.8, 0.0, col, min(op * 1.5, 0.5), font="tibo", centred=True)


def paint_stamp(page: pymupdf.Page, p: Params) -> None:
    cx, cy = p["centre"]
    r, col, op, w = p["r"], p["colour"], p["opacity"], p["width"]
    shape = page.new_shape()
    shape.draw_circle((cx, cy), r)
    shape.draw_circle((cx, cy), r * 0.72)
    shape.finish(color=col, width=w, stroke_opacity=op)
    shape.commit()
    ring = p["ring"]
    size = r * 0.2
    for k, ch in enumerate(ring):
        a = math.radians(p["rot"] + 90 - 360 * k / len(ring))
        rr = r * 0.8
        pt = (cx + rr * math.cos(a), cy - rr * math.sin(a))
        _text(page, pt, ch, size, math.degrees(a) - 90, col, op, font="hebo")
    word = p["word"]
    wsize = min(r * 0.38, 1.25 * r / max(pymupdf.get_text_length(word, fontname="hebo", fontsize=1), 1e-3))
    _text(page, (cx, cy), word, wsize, p["rot"], col, op, font="hebo", centred=True)


def paint_seal(page: pymupdf.Page, p: Params) -> None:
    cx, cy = p["centre"]
    size, col, op, angle = p["size"], p["colour"], p["opacity"], p["angle"]
    sub = 0.55 * size
    w = max(pymupdf.get_text_length(p["word"], fontname="hebo", fontsize=size),
            pymupdf.get_text_length(p["date"], fontname="hebo", fontsize=sub)) + size
    h = size * (2.1 if p["date"] else 1.4)
    turn = (pymupdf.Point(cx, cy), pymupdf.Matrix(-angle))
    rect = pymupdf.Rect(cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2)
    rects = [rect, rect + (-3, -3, 3, 3)] if p["double"] else [rect]
    for r in rects:
        page.draw_rect(r, color=col, width=p["width"], stroke_opacity=op, radius=0.25 if p["rounded"] else None,
                       morph=turn)
    a = math.radians(angle)
    lines = [(p["word"], size, -0.35 * size), (p["date"], sub, 0.55 * size)] if p["date"] else [(p["word"], size, 0.0)]
    for text, tsize, dy in lines:  # centres above/below the stamp's centre, turned with it
        _text(page, (cx + dy * math.sin(a), cy + dy * math.cos(a)), text, tsize, angle, col, op, font="hebo",
              centred=True)


def paint_notes(page: pymupdf.Page, p: Params) -> None:
    for n in p["notes"]:
        _text(page, n["point"], n["text"], n["size"], n["angle"], n["colour"], n["opacity"], font=n["font"])


def paint_band(page: pymupdf.Page, p: Params) -> None:
    x0, x1, y, h = p["x0"], p["x1"], p["y"], p["h"]
    dy = math.tan(math.radians(p["angle"])) * (x1 - x0)
    pts = [(x0, y + dy / 2), (x1, y - dy / 2), (x1, y - dy / 2 + h), (x0, y + dy / 2 + h), (x0, y + dy / 2)]
    g = p["grey"]
    shape = page.new_shape()
    shape.draw_polyline(pts)
    shape.finish(color=None, fill=(g, g, g), fill_opacity=p["opacity"], closePath=True)
    shape.commit()


def paint_header(page: pymupdf.Page, p: Params) -> None:
    x, y, size, col, op = p["x"], p["y"], p["size"], p["colour"], p["opacity"]
    if p["boxed"]:
        r = pymupdf.Rect(x - 4, y - size, x + p["width"] + 4, y + 0.35 * size)
        page.draw_rect(r, color=col, width=1.2, stroke_opacity=op,
                       morph=(pymupdf.Point(x, y), pymupdf.Matrix(-p["angle"])))
    _text(page, (x, y), p["text"], size, p["angle"], col, op, font="hebo")


def paint_strokes(page: pymupdf.Page, p: Params) -> None:
    for s in p["strokes"]:
        a, b, c, d = (pymupdf.Point(q) for q in s["pts"])
        page.draw_bezier(a, b, c, d, color=s["colour"], width=s["width"], stroke_opacity=s["opacity"],
                         lineCap=1 if s["kind"] == "pen" else 0)


STYLES: dict[str, tuple[Callable[..., Params], Callable[[pymupdf.Page, Params], None], str]] = {
    # name: (planner, painter, layer: "under" is drawn before the body text, "over" after it)
    "diagonal": (plan_diagonal, paint_diagonal, "under"),
    "diagonal-over": (plan_diagonal, paint_diagonal, "over"),
    "tiled": (plan_tiled, paint_tiled, "under"),
    "tiled-over": (plan_tiled, paint_tiled, "over"),
    "logo": (plan_logo, paint_logo, "under"),
    "stamp": (plan_stamp, paint_stamp, "over"),
    "seal": (plan_seal, paint_seal, "over"),
    "band": (plan_band, paint_band, "over"),
    "header": (plan_header, paint_header, "over"),
    "notes": (plan_notes, paint_notes, "over"),
    "strokes": (plan_strokes, paint_strokes, "over"),
}

# Held out of every default training config; the benchmark's watermark suites use these.
# Training still sees marks drawn over the text ("tiled-over", "seal", "notes", "band",
# "strokes"), but never these three: not the big diagonal word over the text, not the round
# red seal, not the header/footer line.
HELDOUT_STYLES = ["diagonal-over", "stamp", "header"]


def style_lists() -> dict[str, list[str]]:
    names = list(STYLES)
    return {
        "all": names,
        "train": [s for s in names if s not in HELDOUT_STYLES],
        "heldout": list(HELDOUT_STYLES),
        "none": [],
    }


def resolve_styles(spec: str | list[str] | None) -> list[str]:
    """Style names from names and/or list names (``train``, ``heldout``, ``all``, ``none``)."""
    return resolve_names("train" if spec is None else spec, STYLES, style_lists(), "watermark style",
                         allow_empty=True)


def plan_marks(rng: random.Random, styles: list[str], page: Box, boxes: list[Box],
               max_styles: int = 2) -> list[tuple[str, Params]]:
    """One to ``max_styles`` of ``styles``, each planned onto the text lines ``boxes``."""
    chosen = rng.sample(styles, k=min(len(styles), rng.randint(1, max_styles)))
    return [(name, STYLES[name][0](rng, page, boxes)) for name in chosen]


def paint_layer(page: pymupdf.Page, marks: list[tuple[str, Params]], layer: str) -> None:
    for name, params in marks:
        if STYLES[name][2] == layer:
            STYLES[name][1](page, params)


def marked_copy(src: pymupdf.Document, pno: int, marks: list[tuple[str, Params]]) -> pymupdf.Document:
    """A one-page document: page ``pno`` of ``src`` with ``marks`` painted in their layers
    (``under`` marks beneath the page's own content, which is placed as a form XObject, so
    its text layer and fonts are unchanged; ``over`` marks on top)."""
    r = src[pno].rect
    doc = pymupdf.open()
    page = doc.new_page(width=r.width, height=r.height)
    paint_layer(page, marks, "under")
    page.show_pdf_page(page.rect, src, pno)
    paint_layer(page, marks, "over")
    return doc
