"""Reading whole pages with a recognizer: PDF files and page images.

For a PDF page with a text layer the line boxes come from it (upright, opaque lines; the
layer's own text is returned beside the reading, so a user can check a PDF's hidden text
against what the page shows). Image-only pages, and page images, are segmented into lines
with OpenCV (:func:`ocr_robust.pdf.layout.segment_lines`, whose limits are documented
there). Pages are read one at a time, so a document of thousands of pages streams in
bounded memory; a page that fails is reported and the others are kept. MuPDF's work runs in
page worker processes under a deadline (:class:`PageReader`, ``pdf/workers.py``).

Boxes are ``[x0, y0, x1, y1]``: PDF points (1/72 inch, origin top left, unrotated page) for
PDF pages, pixels for page images.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pymupdf

from ..errors import InputError
from .ingest import IngestConfig, check_document, open_cached
from .layout import PageError, crop_line, render, segment_lines, text_lines
from .workers import PAGE_TIMEOUT_S, PageCrash, PageTimeout, PageWorkers

__all__ = ["DPI", "MAX_PAGE_PIXELS", "MARGIN", "PageReading", "fill", "page_image_lines", "read_page_image",
           "pdf_page_lines", "pdf_file_lines", "PageReader"]

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


def pdf_file_lines(path: str, pno: int, dpi: int = DPI, max_page_pixels: int = MAX_PAGE_PIXELS,
                   margin: float = MARGIN) -> tuple[PageReading, list[np.ndarray]]:
    """:func:`pdf_page_lines` of a PDF file (opened once per process): the page task."""
    return pdf_page_lines(open_cached(path), pno, dpi, max_page_pixels, margin)


class PageReader:
    """The one page reader of the command line (``recognize``) and the service (``/v1/pdf``).

    Opening a PDF and each page's text layer and raster run in :class:`PageWorkers` under a
    deadline, so that a hostile page fails alone (``took longer than S s``) and the caller
    stays responsive; recognition runs in the caller. Owns its workers unless given some."""

    def __init__(self, workers: PageWorkers | None = None, dpi: int = DPI, max_page_pixels: int = MAX_PAGE_PIXELS,
                 margin: float = MARGIN, timeout_s: float = PAGE_TIMEOUT_S):
        self._own = workers is None
        self.workers = workers if workers is not None else PageWorkers(1, timeout_s)
        self.dpi, self.max_page_pixels, self.margin = dpi, max_page_pixels, margin

    def open(self, path: str | Path, name: str | None = None, timeout_s: float | None = None) -> int:
        """The page count of a usable PDF, or one InputError naming ``name`` (default: the path)."""
        try:
            n, why, _ = self.workers.run(check_document, str(path), timeout_s=timeout_s)
        except (PageTimeout, PageCrash, RuntimeError) as e:
            n, why = 0, f"opening it {e}" if isinstance(e, PageTimeout) else str(e)
        if why:
            raise InputError(name or path, why)
        return n

    def page(self, path: str | Path, pno: int, timeout_s: float | None = None,
             dpi: int | None = None) -> tuple[PageReading, list[np.ndarray]]:
        """Page ``pno`` (0-based): its lines, not read yet, and their crops; a page that fails,
        times out or crashes its worker comes back with ``error`` set. Never raises."""
        try:
            return self.workers.run(pdf_file_lines, str(path), pno, dpi or self.dpi, self.max_page_pixels,
                                    self.margin, timeout_s=timeout_s)
        except (PageTimeout, PageCrash, RuntimeError) as e:
            return PageReading(pno + 1, "none", 0.0, 0.0, "pt", error=str(e)), []

    def read(self, recognizer, path: str | Path) -> Iterator[PageReading]:
        """Every page of a PDF file, read, in order (InputError if the file is not usable)."""
        for pno in range(self.open(path)):
            yield _read(recognizer, *self.page(path, pno))

    def close(self) -> None:
        if self._own:
            self.workers.close()

    def __enter__(self) -> PageReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
