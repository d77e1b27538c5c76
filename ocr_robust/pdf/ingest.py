"""Born-digital PDFs to labelled grey line images.

Each page is rasterised with PyMuPDF (page rotation undone, so raster and text layer share
coordinates), optionally degraded as a whole, and every text line of the text layer is
cropped with a margin and labelled with its text. Pages are processed in parallel.

What counts as a line: a run of *opaque* spans (alpha >= ``min_alpha``) in a text-layer line
whose direction is a multiple of 90 degrees (sideways and upside-down lines are rotated
upright). Translucent spans (watermark text) and lines at other angles (diagonal
watermarks) are not labels; they stay in the picture, as on the page.
"""

from __future__ import annotations

import json
import os
import random
import re
import time
import zlib
from collections import Counter
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np
import pymupdf
from tqdm import tqdm

from ..charset import Charset
from ..data.store import open_writer
from ..images import label_fits
from .degrade import degrade_page, parse_degrade
from .layout import PageError, crop_line, render, text_lines
from .watermarks import marked_copy, plan_marks, resolve_styles
from .workers import PAGE_TIMEOUT_S, PageTimeout, PageWorkers

__all__ = ["NORMALISE", "normalise_text", "IngestConfig", "PageResult", "process_page",
           "open_cached", "select_pages", "check_document", "ingest", "format_summary"]


# Characters the text layer may hold that read as something in the charset.
NORMALISE = str.maketrans({
    "\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl", "\ufb05": "st", "\ufb06": "st",
    "\u2010": "-", "\u2011": "-", "\u2212": "-", "\u00ad": "", "\u03bc": "\u00b5", "\u2024": ".",
    "\u2219": "\u00b7", "\u22c5": "\u00b7",  # bullet and dot operators: fonts that share the middle dot's glyph
})
_SPACES = re.compile(r"\s+")
NO_TEXT = "no text layer (image-only page)"

def normalise_text(text: str) -> str:
    """Expand ligatures, map look-alike code points, collapse whitespace."""
    return _SPACES.sub(" ", text.translate(NORMALISE)).strip()


@dataclass
class IngestConfig:
    out: str
    dpi: int = 150
    lmdb: bool = False
    degrade: str = ""
    charset: str = "latin"
    seed: int = 0
    workers: int = 0  # 0: one per CPU core
    margin: float = 0.2  # crop margin as a fraction of the line height, each side
    min_alpha: int = 240  # spans more transparent than this are watermark text
    min_height_px: int = 5
    max_page_pixels: int = 60_000_000  # a page whose raster would exceed this is refused
    watermarks: str = ""  # styles painted on copies of the pages before rasterising ("" none, "train", ...)
    watermark_fraction: float = 0.75  # share of pages painted when ``watermarks`` is set
    max_pages: int = 0  # per file: 0 every page, else this many pages drawn by ``pages_seed`` (big manuals)
    pages_seed: int | None = None  # which pages ``max_pages`` draws; None: ``seed``
    page_timeout: float = PAGE_TIMEOUT_S  # seconds per page (and per file opening); past it the page fails
    page_memory_mb: int = 4096  # what a page process may allocate (big pages, degradations); past it the page fails
    backgrounds: int = 0  # > 0: instead of its lines, up to this many text-free crops per page (empty labels)


@dataclass
class PageResult:
    file: str
    page: int
    lines: list[tuple[str, bytes]] = field(default_factory=list)  # (text, png)
    skipped: Counter = field(default_factory=Counter)  # lines skipped by reason
    skipped_chars: Counter = field(default_factory=Counter)
    error: str | None = None  # page failed: reason
    has_text: bool = False
    degradations: dict = field(default_factory=dict)
    watermarks: list[str] = field(default_factory=list)  # styles painted on this page


@lru_cache(maxsize=2)
def open_cached(path: str) -> pymupdf.Document:
    """A PDF opened once per process (page tasks of one file run in the same worker)."""
    return pymupdf.open(path)


@lru_cache(maxsize=4)
def _charset(name: str) -> Charset:
    return Charset.load(name)


def _page_seed(seed: int, file: str, page: int) -> int:
    return zlib.crc32(f"{seed}:{Path(file).name}:{page}".encode())


def process_page(task: tuple[str, int, dict]) -> PageResult:
    """Rasterise, degrade and crop one page (runs in a worker process)."""
    path, pno, cfgd = task
    cfg = IngestConfig(**cfgd)
    res = PageResult(file=path, page=pno)
    try:
        src = open_cached(path)
        page = src[pno]
        if cfg.watermarks:
            rng = random.Random(_page_seed(cfg.seed, path, pno))
            if rng.random() < cfg.watermark_fraction:
                if page.rotation:
                    page.set_rotation(0)
                lines, _, _ = text_lines(page, cfg.min_alpha)
                r = page.rect
                marks = plan_marks(rng, resolve_styles(cfg.watermarks), (0.0, 0.0, r.width, r.height),
                                   [ln.bbox for ln in lines])
                res.watermarks = [name for name, _ in marks]
                page = marked_copy(src, pno, marks)[0]
        lines, skipped, res.has_text = text_lines(page, cfg.min_alpha)
        res.skipped.update(skipped)
        if not res.has_text:
            res.error = NO_TEXT
            return res
        img = render(page, cfg.dpi, cfg.max_page_pixels)
        degs = parse_degrade(cfg.degrade)
        affine = None
        if degs:
            img, res.degradations, affine = degrade_page(img, degs,
                                                         np.random.default_rng(_page_seed(cfg.seed, path, pno)))
        charset = _charset(cfg.charset)
        scale = cfg.dpi / 72.0
        if cfg.backgrounds:
            bg_rng = np.random.default_rng(_page_seed(cfg.seed + 1, path, pno))
            info = page.get_text("dict", flags=pymupdf.TEXT_MEDIABOX_CLIP)
            avoid = [tuple(ln["bbox"]) for b in info["blocks"] if b.get("type") == 0 for ln in b["lines"]
                     if any(s["text"].strip() and s.get("alpha", 255) >= cfg.min_alpha for s in ln["spans"])]
            avoid += [tuple(im["bbox"]) for im in page.get_image_info()]  # may show text without a text layer
            for crop in background_crops(img, [ln.bbox for ln in lines], scale, cfg.backgrounds, bg_rng, cfg.dpi,
                                         avoid=avoid):
                ok, png = cv2.imencode(".png", crop)
                res.lines.append(("", png.tobytes()))
            return res
        for ln in lines:
            text = normalise_text(ln.text)
            if not text:
                res.skipped["empty"] += 1
                continue
            missing = charset.missing(text)
            if missing:
                res.skipped["characters outside the charset"] += 1
                res.skipped_chars.update(missing)
                continue
            got = crop_line(img, ln, scale, cfg.margin, cfg.min_height_px, affine)
            if got is None:
                res.skipped["too small"] += 1
                continue
            if not label_fits(text, (got[0].shape[1], got[0].shape[0])):
                res.skipped["label longer than its line image can hold"] += 1
                continue
            ok, png = cv2.imencode(".png", got[0])
            res.lines.append((text, png.tobytes()))
    except PageError as e:
        res.error = str(e)
    except Exception as e:  # a broken page must not take the other pages with it
        res.error = f"{type(e).__name__}: {e}".strip()
    return res


def background_crops(img: np.ndarray, boxes: list, scale: float, n: int, rng: np.random.Generator,
                     dpi: int = 150, avoid: list | None = None) -> list[np.ndarray]:
    """Up to ``n`` line-shaped crops of a page raster that no body-text line touches (each
    line's box, ``boxes`` in points, grown by half its height) nor any box of ``avoid`` (in
    points, as they are: opaque text at any angle, and the page's raster images, whose pixels
    may show text that has no text layer): margins, gaps, vector figures, and the page's
    watermark strokes and stamps, whose text is no body text. At most a third of them may
    be plain (grey-level standard deviation under 2), so most show some texture."""
    h_img, w_img = img.shape[:2]
    mask = np.zeros((h_img, w_img), bool)
    for x0, y0, x1, y1 in boxes:
        m = 0.5 * (y1 - y0) * scale
        ys, xs = max(0, int(y0 * scale - m)), max(0, int(x0 * scale - m))
        mask[ys:int(y1 * scale + m) + 1, xs:int(x1 * scale + m) + 1] = True
    for x0, y0, x1, y1 in avoid or []:
        mask[max(0, int(y0 * scale)):int(y1 * scale) + 1, max(0, int(x0 * scale)):int(x1 * scale) + 1] = True
    k = dpi / 150.0
    out: list[np.ndarray] = []
    plain = 0
    for _ in range(40 * n):
        if len(out) >= n:
            break
        h = int(rng.integers(max(8, int(14 * k)), max(9, int(40 * k)) + 1))
        w = int(rng.integers(3 * h, 16 * h + 1))
        if h >= h_img or w >= w_img:
            continue
        y, x = int(rng.integers(0, h_img - h)), int(rng.integers(0, w_img - w))
        if mask[y:y + h, x:x + w].any():
            continue
        crop = img[y:y + h, x:x + w]
        if float(crop.std()) < 2.0:
            if plain >= n // 3:
                continue
            plain += 1
        out.append(np.ascontiguousarray(crop))
    return out


def _worker_init() -> None:
    cv2.setNumThreads(1)  # one process per core already; OpenCV's own threads would oversubscribe


def select_pages(path: str, n: int, max_pages: int, seed: int) -> list[int]:
    """Page indices to ingest: all ``n``, or ``max_pages`` of them drawn by ``seed`` and the
    file's name (the same pages on every run), in page order."""
    if max_pages <= 0 or n <= max_pages:
        return list(range(n))
    return sorted(random.Random(f"pages:{seed}:{Path(path).name}").sample(range(n), max_pages))


def check_document(path: str) -> tuple[int, str | None, bool]:
    """(page count, None, repaired) for a usable PDF, else (0, reason, False); ``repaired``
    says MuPDF had to rebuild a damaged file's structure to open it."""
    if not os.path.isfile(path):
        return 0, "no such file", False
    try:
        with open(path, "rb") as f:
            if b"%PDF-" not in f.read(1024):  # MuPDF would open text or images as documents too
                return 0, "not a readable PDF (no %PDF- header)", False
    except OSError as e:
        return 0, f"cannot read it ({e.strerror})", False
    try:
        doc = pymupdf.open(path)
    except Exception as e:
        return 0, f"not a readable PDF ({type(e).__name__}: {e})", False
    try:
        if not doc.is_pdf:
            return 0, "not a PDF", False
        if doc.needs_pass:
            return 0, "encrypted (password required)", False
        n = doc.page_count
        if n == 0:
            return 0, "has no pages", False
        return n, None, bool(doc.is_repaired)
    except Exception as e:  # a damaged page tree raises from page_count (found by benchmarks/fuzz.py)
        return 0, f"not a readable PDF ({type(e).__name__}: {e})", False
    finally:
        doc.close()


def ingest(pdfs: list[str], cfg: IngestConfig, progress: bool = True) -> dict:
    """Ingest ``pdfs`` into a line store at ``cfg.out``; returns (and writes) the summary."""
    t0 = time.perf_counter()
    Charset.load(cfg.charset)  # fail early on a bad charset
    parse_degrade(cfg.degrade)
    resolve_styles(cfg.watermarks)
    if not 0.0 <= cfg.watermark_fraction <= 1.0:
        raise ValueError(f"--watermark-fraction {cfg.watermark_fraction}: expected a share between 0 and 1")
    files_failed: list[dict] = []
    tasks: list[tuple[str, int, dict]] = []
    repaired: set[str] = set()
    workers = max(1, cfg.workers or (os.cpu_count() or 1))
    summary: dict = {"out": cfg.out, "format": "lmdb" if cfg.lmdb else "folder", "files": len(pdfs),
                     "files_failed": files_failed, "pages": 0, "pages_ok": 0, "pages_failed": {},
                     "page_failures": [], "lines": 0, "lines_skipped": {}, "skipped_chars": {},
                     "watermarked_pages": {}}
    skipped: Counter[str] = Counter()
    skipped_chars: Counter[str] = Counter()
    marked: Counter[str] = Counter()
    text_pages: Counter = Counter()
    seen_pages: Counter = Counter()
    page_errors: dict[str, list[dict]] = {}
    stems: dict[str, str] = {}

    def opening_failed(args: tuple, e: Exception) -> tuple[int, str | None, bool]:
        return 0, f"opening it {e}" if isinstance(e, PageTimeout) else str(e), False

    def page_failed(args: tuple, e: Exception) -> PageResult:
        path, pno, _ = args[0]
        return PageResult(file=path, page=pno, error=str(e))

    # Page work runs in child processes under a deadline (pdf/workers.py): a hostile page
    # is killed at cfg.page_timeout and reported, and the others are kept.
    with PageWorkers(workers, cfg.page_timeout, initializer=_worker_init, memory_mb=cfg.page_memory_mb) as pool:
        checks = pool.map(check_document, [(str(p),) for p in pdfs], on_error=opening_failed)
        for p, (n, why, was_repaired) in zip(pdfs, checks):
            if why:
                files_failed.append({"file": str(p), "reason": why})
                continue
            if was_repaired:
                repaired.add(str(p))
            pick = select_pages(str(p), n, cfg.max_pages, cfg.seed if cfg.pages_seed is None else cfg.pages_seed)
            tasks += [(str(p), i, asdict(cfg)) for i in pick]
        summary["pages"] = len(tasks)
        bar = tqdm(total=len(tasks), desc="ingest", unit="page", disable=not progress)
        with open_writer(cfg.out, cfg.lmdb) as writer:
            try:
                for r in pool.map(process_page, [(t,) for t in tasks], on_error=page_failed):
                    bar.update(1)
                    seen_pages[r.file] += 1
                    text_pages[r.file] += int(r.has_text)
                    skipped.update(r.skipped)
                    skipped_chars.update(r.skipped_chars)
                    if r.error:
                        page_errors.setdefault(r.file, []).append({"file": r.file, "page": r.page + 1,
                                                                   "reason": r.error})
                        continue
                    summary["pages_ok"] += 1
                    if r.watermarks:
                        marked.update(r.watermarks)
                        marked["(pages)"] += 1
                    stem = stems.setdefault(r.file, f"{len(stems):05d}_{_safe(Path(r.file).stem)}")
                    kind = "b" if cfg.backgrounds else "l"
                    for k, (text, png) in enumerate(r.lines):
                        writer.add(f"{stem}/p{r.page + 1:04d}_{kind}{k + 1:04d}.png", text, png)
                    summary["lines"] += len(r.lines)
            finally:
                bar.close()
    # A file none of whose pages has text is reported as a file, not page by page.
    for f, errs in page_errors.items():
        if text_pages[f] == 0 and seen_pages[f] == len(errs) and all(e["reason"] == NO_TEXT for e in errs):
            reason = ("damaged PDF (truncated or corrupt; MuPDF rebuilt its structure) with no readable text"
                      if f in repaired else "image-only PDF: no page has a text layer")
            files_failed.append({"file": f, "reason": reason})
        else:
            summary["page_failures"].extend(errs)
    page_fail = Counter(e["reason"] for e in summary["page_failures"])
    dt = time.perf_counter() - t0
    summary.update({
        "pages_failed": dict(page_fail.most_common()),
        "lines_skipped": dict(skipped.most_common()),
        "skipped_chars": dict(skipped_chars.most_common()),
        "watermarked_pages": dict(marked.most_common()),
        "seconds": round(dt, 3),
        "pages_per_s": round(summary["pages_ok"] / dt, 3) if dt else None,
        "lines_per_s": round(summary["lines"] / dt, 2) if dt else None,
        "config": asdict(cfg),
    })
    Path(cfg.out, "ingest.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    return summary


def _safe(stem: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", stem)[:60] or "doc"


def format_summary(s: dict) -> str:
    lines = [f"ingested {s['lines']} lines from {s['pages_ok']}/{s['pages']} pages of {s['files']} files "
             f"into {s['out']} ({s['format']}) in {s['seconds']:.1f} s "
             f"({s['pages_per_s']} pages/s, {s['lines_per_s']} lines/s)"]
    for f in s["files_failed"]:
        lines.append(f"  skipped file {f['file']}: {f['reason']}")
    for f in s["page_failures"][:20]:
        lines.append(f"  skipped page {f['file']} p.{f['page']}: {f['reason']}")
    if len(s["page_failures"]) > 20:
        lines.append(f"  ... and {len(s['page_failures']) - 20} more failed pages (see ingest.json)")
    for reason, n in s["lines_skipped"].items():
        lines.append(f"  lines skipped, {reason}: {n}")
    if s.get("watermarked_pages"):
        marks = {k: v for k, v in s["watermarked_pages"].items() if k != "(pages)"}
        lines.append(f"  watermarked pages: {s['watermarked_pages'].get('(pages)', 0)} "
                     f"({', '.join(f'{k} x{v}' for k, v in marks.items())})")
    if s["skipped_chars"]:
        top = ", ".join(f"{c!r} x{n}" for c, n in list(s["skipped_chars"].items())[:15])
        lines.append(f"  characters outside the charset: {top}")
    return "\n".join(lines)
