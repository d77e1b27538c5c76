"""Synthetic born-digital PDFs: documents like lab reports and invoices, watermarked.

``plan_page`` turns an RNG into a :class:`PageSpec` (text items and watermark parameters);
``draw_page`` paints a spec into a PyMuPDF page; ``synthesize`` writes a corpus of PDFs
plus ``manifest.jsonl`` (one record per page: fonts, sizes, watermark styles, lines).
The same seed gives the same corpus.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pymupdf
from tqdm import tqdm

from . import content as C
from .fonts import all_faces, load_font, resolve_fonts, text_width
from .watermarks import paint_layer, plan_marks, resolve_styles

__all__ = ["PAPER", "SIZES", "SIZE_WEIGHTS", "KINDS", "INKS", "TextItem", "PageSpec", "parse_sizes", "plan_page",
           "draw_page", "SynthConfig", "synthesize"]

PAPER = {"a4": (595.0, 842.0), "letter": (612.0, 792.0)}
SIZES = [5, 5.5, 6, 6.5, 7, 7.5, 8, 9, 10, 11, 12, 14]
SIZE_WEIGHTS = [2, 1, 2, 1, 2, 1, 3, 3, 3, 2, 2, 1]
KINDS = ["lab", "invoice", "prose", "form", "code", "mixed"]
INKS = [(0, 0, 0)] * 6 + [(0.15, 0.15, 0.15), (0.05, 0.1, 0.35), (0.25, 0.2, 0.2)]


@dataclass
class TextItem:
    x: float
    y: float  # baseline
    text: str
    font: str  # face key
    size: float
    colour: tuple[float, float, float] = (0.0, 0.0, 0.0)

    def box(self) -> tuple[float, float, float, float]:
        f = load_font(self.font)
        w = text_width(self.font, self.text, self.size)
        return (self.x, self.y - f.ascender * self.size, self.x + w, self.y - f.descender * self.size)


@dataclass
class PageSpec:
    width: float
    height: float
    kind: str
    items: list[TextItem] = field(default_factory=list)
    watermarks: list[tuple[str, dict]] = field(default_factory=list)

    @property
    def fonts(self) -> list[str]:
        return sorted({i.font for i in self.items})

    @property
    def sizes(self) -> list[float]:
        return sorted({i.size for i in self.items})


class _Layout:
    """Cursor that places lines top to bottom inside the margins."""

    def __init__(self, rng: random.Random, spec: PageSpec, margin: float, body: str, bold: str, size: float):
        self.rng, self.spec, self.margin = rng, spec, margin
        self.body, self.bold, self.size = body, bold, size
        self.leading = rng.uniform(1.15, 1.6)
        self.y = margin + size
        self.ink = rng.choice(INKS)
        self.right = spec.width - margin

    @property
    def full(self) -> bool:
        return self.y > self.spec.height - self.margin

    def width(self, text: str, font: str, size: float) -> float:
        return text_width(font, text, size)

    def line(self, text: str, font: str | None = None, size: float | None = None, x: float | None = None) -> bool:
        font, size = font or self.body, size or self.size
        x = self.margin if x is None else x
        if self.full:
            return False
        avail = self.right - x
        while text and self.width(text, font, size) > avail:  # cut at a word, else a character
            cut = text.rsplit(" ", 1)[0] if " " in text.strip() else text[:-1]
            text = cut.rstrip()
        if text.strip():
            self.spec.items.append(TextItem(x, self.y, text, font, size, self.ink))
        self.y += size * self.leading
        return True

    def gap(self, k: float = 0.6) -> None:
        self.y += self.size * k

    def paragraph(self, text: str) -> None:
        for ln in C.wrap(text, self.right - self.margin, lambda s: self.width(s, self.body, self.size)):
            if not self.line(ln):
                return

    def table(self, rows: list[list[str]], header: list[str] | None = None) -> None:
        size = self.size
        all_rows = ([header] if header else []) + rows
        ncol = max(len(r) for r in all_rows)
        gap = max(8.0, size * 1.5)
        while True:
            widths = [max(self.width(r[c], self.body, size) if c < len(r) else 0 for r in all_rows)
                      for c in range(ncol)]
            if sum(widths) + gap * (ncol - 1) <= self.right - self.margin or size <= 5:
                break
            size -= 0.5
        xs = [self.margin]
        for w in widths[:-1]:
            xs.append(xs[-1] + w + gap)
        for k, row in enumerate(all_rows):
            if self.full:
                return
            font = self.bold if header and k == 0 else self.body
            for c, cell in enumerate(row):
                if cell.strip() and xs[c] < self.right:
                    room = self.right - xs[c]
                    while cell and self.width(cell, font, size) > room:
                        cell = cell[:-1].rstrip()
                    if cell.strip():
                        self.spec.items.append(TextItem(xs[c], self.y, cell, font, size, self.ink))
            self.y += size * self.leading


def _bold_partner(rng: random.Random, body: str, fonts: list[str]) -> str:
    faces = all_faces()
    fam = faces[body].family
    bolds = [f for f in fonts if faces[f].style == "bold" and faces[f].family == fam]
    bolds = bolds or [f for f in fonts if faces[f].style == "bold"]
    return rng.choice(bolds) if bolds else body


def parse_sizes(spec: str | None) -> list[float] | None:
    """``"5-7"`` (the sizes of ``SIZES`` in that range) or ``"6,8.5"`` -> font sizes in points."""
    if not spec:
        return None
    try:
        if "-" in spec:
            lo, hi = (float(v) for v in spec.split("-", 1))
            sizes = [v for v in SIZES if lo <= v <= hi]
        else:
            sizes = [float(v) for v in spec.split(",") if v.strip()]
    except ValueError:
        raise ValueError(f"font sizes {spec!r}: expected LO-HI or a comma-separated list of points") from None
    if not sizes or min(sizes) <= 0:
        raise ValueError(f"font sizes {spec!r}: no usable size")
    return sizes


def plan_page(rng: random.Random, fonts: list[str], styles: list[str], clean_fraction: float = 0.25,
              kind: str | None = None, max_styles: int = 2, sizes: list[float] | None = None) -> PageSpec:
    """Draw one page's content, layout and watermarks from ``rng`` (``sizes``: body font
    sizes to choose from, else the default mix)."""
    w, h = PAPER[rng.choice(["a4", "a4", "letter"])]
    spec = PageSpec(w, h, kind or rng.choice(KINDS))
    body = rng.choice(fonts)
    bold = _bold_partner(rng, body, fonts)
    size = rng.choice(sizes) if sizes else rng.choices(SIZES, SIZE_WEIGHTS)[0]
    lay = _Layout(rng, spec, rng.uniform(30, 72), body, bold, size)
    head = min(14.0, size + rng.choice([1, 2, 3, 4])) if not sizes else max(sizes)
    k = spec.kind
    if k in ("lab", "invoice"):
        while not lay.full:  # one block per patient / invoice until the page is full
            if k == "lab":
                hdr, rows, cols, ftr = C.lab_header(rng), [C.lab_row(rng) for _ in range(rng.randint(6, 24))], \
                    ["Test", "Result", "Unit", "Reference range", "Flag"], C.lab_footer(rng)
            else:
                hdr, rows, cols, ftr = C.invoice_header(rng), [C.invoice_row(rng) for _ in range(rng.randint(4, 14))], \
                    ["Description", "Qty", "Unit price", "Amount"], C.invoice_footer(rng)
            lay.line(hdr[0], font=bold, size=head)
            for ln in hdr[1:]:
                lay.line(ln)
            lay.gap()
            lay.table(rows, header=cols)
            lay.gap()
            for ln in ftr:
                lay.line(ln)
            lay.gap(2.0)
    elif k == "form":
        lay.line(rng.choice(["Application form", "Claim form B-12", "Registration", "Consent form"]),
                 font=bold, size=head)
        while not lay.full:
            lay.line(C.form_line(rng))
    elif k == "code":
        lay.line(rng.choice(["Appendix A: listing", "Build log", "Configuration"]), font=bold, size=head)
        while not lay.full:
            indent = lay.margin + rng.choice([0, 0, 1, 2]) * 2 * lay.size
            lay.line(C.code_line(rng), x=indent)
    else:  # prose and mixed
        lay.line(C.sentence(rng, 3, 8).rstrip(".?!;:"), font=bold, size=head)
        while not lay.full:
            r = rng.random()
            if k == "mixed" and r < 0.25:
                lay.table([C.lab_row(rng) for _ in range(rng.randint(2, 6))])
            elif k == "mixed" and r < 0.4:
                for _ in range(rng.randint(2, 5)):
                    lay.line(C.form_line(rng))
            else:
                lay.paragraph(C.paragraph(rng))
            lay.gap()
    if styles and rng.random() >= clean_fraction:
        spec.watermarks = plan_marks(rng, styles, (0.0, 0.0, w, h), [it.box() for it in spec.items], max_styles)
    return spec


def draw_page(doc: pymupdf.Document, spec: PageSpec, watermarks: bool = True) -> pymupdf.Page:
    """Append a page drawn from ``spec``; ``watermarks=False`` leaves the marks out."""
    page = doc.new_page(width=spec.width, height=spec.height)
    marks = spec.watermarks if watermarks else []
    paint_layer(page, marks, "under")
    writers: dict[tuple, pymupdf.TextWriter] = {}
    for it in spec.items:
        tw = writers.setdefault(tuple(it.colour), pymupdf.TextWriter(page.rect))
        tw.append((it.x, it.y), it.text, font=load_font(it.font), fontsize=it.size)
    for colour, tw in writers.items():
        tw.write_text(page, color=colour)
    paint_layer(page, marks, "over")
    return page


@dataclass
class SynthConfig:
    out: str
    pages: int = 20
    seed: int = 0
    fonts: str = "train"
    watermarks: str = "train"
    clean_fraction: float = 0.25
    pages_per_doc: int = 5
    lang: str = "latin"
    sizes: str | None = None  # body font sizes, e.g. "5-7" (small print); default: the usual mix


def synthesize(cfg: SynthConfig, progress: bool = True) -> dict:
    """Write ``cfg.pages`` pages as PDFs under ``cfg.out``; return a summary."""
    if cfg.lang != "latin":
        raise ValueError(f"--lang {cfg.lang!r}: only 'latin' is available so far")
    if cfg.pages < 1:
        raise ValueError("--pages must be at least 1")
    fonts = resolve_fonts(cfg.fonts)
    styles = resolve_styles(cfg.watermarks)
    sizes = parse_sizes(cfg.sizes)
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    n_docs = (cfg.pages + cfg.pages_per_doc - 1) // cfg.pages_per_doc
    records: list[dict[str, Any]] = []
    bar = tqdm(total=cfg.pages, desc="synth", unit="page", disable=not progress)
    done = 0
    for d in range(n_docs):
        rng = random.Random(f"ocr-robust-synth:{cfg.seed}:{d}")
        doc = pymupdf.open()
        name = f"doc_{d:05d}.pdf"
        for p in range(min(cfg.pages_per_doc, cfg.pages - done)):
            spec = plan_page(rng, fonts, styles, cfg.clean_fraction, sizes=sizes)
            draw_page(doc, spec)
            records.append({
                "file": name, "page": p, "kind": spec.kind, "fonts": spec.fonts, "sizes": spec.sizes,
                "watermarks": [n for n, _ in spec.watermarks], "lines": len(spec.items),
            })
            done += 1
            bar.update(1)
        doc.subset_fonts()
        doc.set_metadata({"producer": "ocr-robust synth", "creator": "ocr-robust", "title": name,
                          "creationDate": "D:20250101000000Z", "modDate": "D:20250101000000Z"})
        doc.save(out / name, garbage=3, deflate=True, no_new_id=True)
        doc.close()
    bar.close()
    with open(out / "manifest.jsonl", "w", encoding="utf-8") as f:
        for r in records:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    summary = {
        "out": str(out), "documents": n_docs, "pages": len(records), "lines": sum(r["lines"] for r in records),
        "fonts": fonts, "watermark_styles": styles,
        "clean_pages": sum(1 for r in records if not r["watermarks"]),
        "config": asdict(cfg),
    }
    (out / "synth.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary
