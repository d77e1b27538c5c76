"""Reading whole pages with a recognizer: PDF files and page images.

For a PDF page with a text layer the line boxes come from it (upright, opaque lines; the
layer's own text is returned beside the reading, so a user can check a PDF's hidden text
against what the page shows). Image-only pages, and page images, are segmented into lines
with OpenCV (:func:`ocr_robust.pdf.layout.segment_lines`, whose limits are documented
there). Pages are read one at a time, so a document of thousands of pages streams in
bounded memory; a page that fails is reported and the others are kept.

Boxes are ``[x0, y0, x1, y1]``: PDF points (1/72 inch, origin top left, unrotated page) for
PDF pages, pixels for page images.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pymupdf

from ..errors import InputError
from .ingest import IngestConfig, check_document
from .layout import PageError, crop_line, render, segment_lines, text_lines

__all__ = ["DPI", "MAX_PAGE_PIXELS", "MARGIN", "PageReading", "open_pdf", "fill", "page_image_lines", "read_page_image",
           "pdf_page_lines", "read_pdf_pages"]

# pages are read as ingest crops them: its config's defaults
DPI: int = IngestConfig.dpi
MAX_PAGE_PIXELS: int = IngestConfig.max_page_pixels
MARGIN: float = IngestConfig.margin


@dataclass
class PageReading:
    page: int  # 1-based
    source: str  # "text-layer" | "segmentation"
    width: float
    height: float
    unit: str  # "pt" | "px"
    lines: list[dict] = field(default_factory=list)  # text, confidence, box[, layer_text]
    error: str | None = None

    def as_dict(self) -> dict:
        return {"page": self.page, "source": self.source, "width": self.width, "height": self.height,
                "unit": self.unit, "lines": self.lines, "error": self.error}


def open_pdf(src: str | bytes, name: str = "<upload>") -> pymupdf.Document:
    """A readable, unencrypted PDF with pages, or one ``InputError`` saying what is wrong."""
    if isinstance(src, (bytes, bytearray)):
        if b"%PDF-" not in bytes(src[:1024]):  # MuPDF would open text or images as documents too
            raise InputError(name, "not a PDF (no %PDF- header)")
        try:
            doc = pymupdf.open(stream=bytes(src), filetype="pdf")
        except Exception as e:
            raise InputError(name, f"not a readable PDF ({type(e).__name__}: {e})") from None
        if not doc.is_pdf:
            raise InputError(name, "not a PDF")
    else:
        n, why, _ = check_document(str(src))
        if why:
            raise InputError(src, why)
        return pymupdf.open(str(src))
    if doc.needs_pass:
        raise InputError(name, "encrypted (password required)")
    if doc.page_count == 0:
        raise InputError(name, "has no pages")
    return doc


def fill(reading: PageReading, decoded: list) -> PageReading:
    """Put the recognizer's readings (one per line, in order) into the page's lines."""
    for line, d in zip(reading.lines, decoded):
        line["text"], line["confidence"] = d.text, round(d.confidence, 4)
    return reading


def _read(recognizer, reading: PageReading, crops: list[np.ndarray]) -> PageReading:
    return fill(reading, recognizer.recognize(crops) if crops else [])


def page_image_lines(grey: np.ndarray, page: int = 1) -> tuple[PageReading, list[np.ndarray]]:
    """A page image's lines (boxes in pixels, not read yet) and their crops."""
    r = PageReading(page, "segmentation", float(grey.shape[1]), float(grey.shape[0]), "px")
    boxes = segment_lines(grey)
    r.lines = [{"text": "", "confidence": 0.0, "box": list(b)} for b in boxes]
    return r, [grey[y0:y1, x0:x1] for x0, y0, x1, y1 in boxes]


def read_page_image(recognizer, grey: np.ndarray, page: int = 1) -> PageReading:
    """Segment a page image into lines and read them (boxes in pixels)."""
    return _read(recognizer, *page_image_lines(grey, page))


def pdf_page_lines(doc: pymupdf.Document, pno: int, dpi: int = DPI, max_page_pixels: int = MAX_PAGE_PIXELS,
                   margin: float = MARGIN) -> tuple[PageReading, list[np.ndarray]]:
    """Page ``pno`` (0-based): its lines (boxes in points, not read yet) and their crops;
    on failure a reading with ``error`` set and no crops. Never raises for a bad page."""
    scale = dpi / 72.0
    try:
        page = doc[pno]
        lines, _, has_text = text_lines(page)
        w, h = page.rect.width, page.rect.height
        img = render(page, dpi, max_page_pixels)
        if not has_text:
            r, crops = page_image_lines(img, pno + 1)
            r.width, r.height, r.unit = w, h, "pt"
            for line in r.lines:
                line["box"] = [round(v / scale, 2) for v in line["box"]]
            return r, crops
        r, crops = PageReading(pno + 1, "text-layer", w, h, "pt"), []
        for ln in lines:
            got = crop_line(img, ln, scale, margin)
            if got is not None and ln.text.strip():
                crops.append(got[0])
                r.lines.append({"text": "", "confidence": 0.0, "box": [round(v, 2) for v in ln.bbox],
                                "layer_text": ln.text})
        return r, crops
    except PageError as e:
        return PageReading(pno + 1, "none", 0.0, 0.0, "pt", error=str(e)), []
    except Exception as e:  # a broken page must not take the other pages with it
        return PageReading(pno + 1, "none", 0.0, 0.0, "pt", error=f"{type(e).__name__}: {e}".strip()), []


def read_pdf_pages(recognizer, doc: pymupdf.Document, dpi: int = DPI, max_page_pixels: int = MAX_PAGE_PIXELS,
                   margin: float = MARGIN) -> Iterator[PageReading]:
    """One :class:`PageReading` per page, in order (``error`` set on a page that failed)."""
    for pno in range(doc.page_count):
        yield _read(recognizer, *pdf_page_lines(doc, pno, dpi, max_page_pixels, margin))
