"""``ocr-robust benchmark build``: fixed, versioned, seeded test suites.

A suite is a folder of line stores, one per condition, each a ``labels.tsv`` folder, plus
``suite.json`` (version, seed, what each condition is, line counts and the SHA-256 of each
``labels.tsv``). Synthetic suites use only HELD-OUT fonts and HELD-OUT watermark styles,
which no default training config uses. The same version and seed give the same bytes of
labels (and images).

``--from-pdf`` builds the same conditions from a user's own PDFs instead of synthetic ones:
the held-out watermark styles are painted on copies of their pages, the page degradations
are the same, and small print is simulated by rendering at 58 dpi (10-point text at 58 dpi
has the pixel size of 6-point text at 96 dpi). ``max_pages`` takes that many pages of each
PDF (drawn by the seed), ``max_lines`` a seeded sample of that many lines, drawn once from
the clean condition and taken by line name in the others (file, page and line number, so
conditions compare nearly line for line; a line too small to crop in one condition shifts
the numbers after it on its page). Real
suites add ``clean-tight``: the clean lines cut to the bounding box of their ink, as a
detector other than our ingest would give them.
"""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import cast

import cv2
import numpy as np
import pymupdf

from ..data.crop import ink_mask
from ..data.store import FolderWriter, open_store, read_grey
from ..pdf.ingest import IngestConfig, ingest, select_pages
from ..pdf.layout import render, text_lines
from ..pdf.synth import SynthConfig, synthesize
from ..pdf.watermarks import HELDOUT_STYLES, marked_copy, plan_marks

__all__ = ["SUITE_VERSION", "LOWRES", "SCAN", "Condition", "CONDITIONS", "TIGHT", "TIGHT_WHAT", "NO_TEXT",
           "NO_TEXT_WHAT", "FROM_PDF_SMALL_DPI", "watermark_copy", "no_text_crops", "tight_copy", "build_suite",
           "load_suite", "sample_store"]

SUITE_VERSION = 2  # 2: marks painted in their layers; --max-pages/--max-lines; clean-tight
LOWRES = "downscale:0.48-0.67,jpeg:30-50"  # 150 dpi area-downscaled to 72-100 dpi and back; JPEG 30-50
SCAN = "rotate:-0.5-0.5,skew:-0.01-0.01,shade:0.1-0.35,blur:0.6-1.2,noise:4-10"


@dataclass(frozen=True)
class Condition:
    name: str
    watermarks: bool
    degrade: str = ""
    dpi: int = IngestConfig.dpi
    sizes: str | None = None  # body font sizes of synthetic pages
    what: str = ""


CONDITIONS = [
    Condition("clean", False, what="held-out fonts, no watermark, 150 dpi"),
    Condition("watermark", True, what="held-out fonts under held-out watermark styles (diagonal text over "
                                      "the page, stamps, headers), 150 dpi"),
    Condition("small-print", False, dpi=96, sizes="5-7", what="5-7 pt body text rendered at 96 dpi"),
    Condition("lowres-jpeg", False, LOWRES, what="rendered at 150 dpi, area-downscaled to 72-100 dpi and "
                                                 "back, JPEG quality 30-50"),
    Condition("scan", False, SCAN, what="rotation up to 0.5 degrees, shear up to 0.01, uneven illumination, "
                                        "blur (sigma 0.6-1.2 px), noise (sigma 4-10 grey levels)"),
    Condition("watermark-lowres", True, LOWRES, what="held-out watermarks, then the lowres-jpeg damage"),
]
TIGHT = "clean-tight"
TIGHT_WHAT = "the clean lines cut to the bounding box of their ink (Otsu), as another detector would give them"
NO_TEXT = "no-text"
NO_TEXT_WHAT = ("line-shaped crops of watermarked pages that hold no text (watermark strokes, stamps "
                "and plain background): the measure is the share read as non-empty")
FROM_PDF_SMALL_DPI = 58


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _sha_store(folder: Path) -> str:
    """A folder store's labels and every image, in the labels' order."""
    h = hashlib.sha256((folder / "labels.tsv").read_bytes())
    for line in (folder / "labels.tsv").read_text(encoding="utf-8").splitlines():
        if line.strip():
            h.update((folder / line.split("\t", 1)[0]).read_bytes())
    return h.hexdigest()


def watermark_copy(src: str | Path, dst: Path, seed: int, max_pages: int = 0) -> None:
    """A copy of ``src`` with one or two held-out watermark styles painted on each page (with
    ``max_pages``, on the pages ingest will draw from ``dst``; the others are copied as they are)."""
    doc = pymupdf.open(str(src))
    out = pymupdf.open()
    marked = set(select_pages(dst.name, doc.page_count, max_pages, seed))
    for pno, page in enumerate(cast("Iterable[pymupdf.Page]", doc)):  # iterates by __getitem__
        if pno not in marked:
            out.insert_pdf(doc, from_page=pno, to_page=pno)
            continue
        rng = random.Random(f"ocr-robust-suite-wm:{seed}:{Path(src).name}:{pno}")
        if page.rotation:
            page.set_rotation(0)
        r = page.rect
        marks = plan_marks(rng, HELDOUT_STYLES, (0.0, 0.0, r.width, r.height), [ln.bbox for ln in text_lines(page)[0]])
        out.insert_pdf(marked_copy(doc, pno, marks))
    out.save(str(dst), garbage=3, deflate=True)
    doc.close()


def no_text_crops(pdfs: list[Path], out: Path, n: int, seed: int, dpi: int = IngestConfig.dpi) -> int:
    """``n`` line-shaped crops holding no text (away from every text-layer line, opaque or
    watermark, and from every raster image, whose pixels may show text that has no text
    layer: a screenshot, a scanned figure) from the pages of ``pdfs``; at least two thirds
    show some marking (a watermark stroke, a stamp: more than 40 grey levels of contrast),
    at most a third is plain background. Written as a store with empty labels."""
    rng = np.random.default_rng(seed)
    pages = [(f, k) for f in pdfs for k in range(pymupdf.open(str(f)).page_count)]
    count = tries = plain = 0
    scale = dpi / 72.0
    with FolderWriter(out) as w:
        while count < n and tries < 200 * n:
            f, k = pages[int(rng.integers(len(pages)))]
            page = pymupdf.open(str(f))[k]
            img = render(page, dpi, 10**8)
            info = page.get_text("dict", flags=pymupdf.TEXT_MEDIABOX_CLIP)
            mask = np.zeros(img.shape, bool)  # every text line, watermark text included, with a margin
            for b in info["blocks"]:
                for ln in b.get("lines", []):
                    if not any(s["text"].strip() for s in ln["spans"]):
                        continue
                    x0, y0, x1, y1 = (v * scale for v in ln["bbox"])
                    m = 0.5 * (y1 - y0 if abs(ln["dir"][1]) < 0.5 else x1 - x0)
                    mask[max(0, int(y0 - m)):int(y1 + m) + 1, max(0, int(x0 - m)):int(x1 + m) + 1] = True
            for im in page.get_image_info():  # raster images may hold text without a text layer
                x0, y0, x1, y1 = (v * scale for v in im["bbox"])
                mask[max(0, int(y0)):int(y1) + 1, max(0, int(x0)):int(x1) + 1] = True
            for _ in range(40):  # crops of this page
                tries += 1
                h = int(rng.integers(14, 40))
                wd = int(rng.integers(3 * h, 16 * h))
                if wd >= img.shape[1] or h >= img.shape[0]:
                    continue
                x = int(rng.integers(0, img.shape[1] - wd))
                y = int(rng.integers(0, img.shape[0] - h))
                if mask[y:y + h, x:x + wd].any():
                    continue
                crop = img[y:y + h, x:x + wd]
                marked = int(crop.max()) - int(crop.min()) > 40
                if not marked:
                    if plain >= n // 3:
                        continue
                    plain += 1
                ok, png = cv2.imencode(".png", crop)
                w.add(f"{count:05d}.png", "", png.tobytes())
                count += 1
                if count >= n:
                    break
    return count


def sample_store(src: Path, dst: Path, names: list[str] | None, n: int, seed: int) -> list[str]:
    """Copy ``src`` to ``dst`` keeping the lines named ``names`` (those that exist), or, with
    ``names=None``, a seeded sample of ``n`` of them in store order; returns the names kept."""
    store = open_store(src)
    all_names = [store.name(i) for i in range(len(store))]
    if names is None:
        keep = (set(random.Random(f"suite-lines:{seed}").sample(all_names, n)) if 0 < n < len(all_names)
                else set(all_names))
    else:
        keep = set(names)
    kept = []
    with FolderWriter(dst) as w:
        for i, name in enumerate(all_names):
            if name in keep:
                w.add(name, store.text(i), store.image_bytes(i))
                kept.append(name)
    return kept


def tight_copy(src: Path, dst: Path) -> None:
    """Each line of ``src`` cut to the bounding box of its ink (Otsu; a blank crop unchanged)."""
    store = open_store(src)
    with FolderWriter(dst) as w:
        for i in range(len(store)):
            img = read_grey(store, i)
            ink = ink_mask(img)
            if ink is not None and ink.any():
                x, y, bw, bh = cv2.boundingRect(ink.astype(np.uint8))
                img = img[y:y + bh, x:x + bw]
            ok, png = cv2.imencode(".png", img)
            w.add(store.name(i), store.text(i), png.tobytes())


def build_suite(out: str | Path, pages: int = 12, seed: int = 0, from_pdf: list[str] | None = None,
                no_text: int = 400, progress: bool = False, max_pages: int = 0, max_lines: int = 0,
                conditions: list[str] | None = None) -> dict:
    """Write the suite under ``out`` (replacing it) and return its description.

    ``conditions`` builds only these of CONDITIONS (``clean`` always: the others sample the
    same lines); each keeps the seed it has in the full suite, so its lines are the same."""
    from ..errors import InputError

    known = [c.name for c in CONDITIONS]
    wanted = set(known if conditions is None else ["clean", *conditions])
    unknown = sorted(wanted - set(known))
    if unknown:
        raise InputError(str(out), f"unknown suite condition {', '.join(unknown)} (known: {', '.join(known)})")
    out = Path(out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    src = out / "pdf"
    built: dict[str, dict] = {}
    clean_names: list[str] | None = None  # the clean condition's sampled lines, which the others follow
    user = [Path(p) for p in from_pdf] if from_pdf else None
    if user:
        missing = [str(p) for p in user if not p.is_file()]
        if missing:
            raise InputError(missing[0], "no such file")
        (src / "plain").mkdir(parents=True)
        (src / "watermarked").mkdir(parents=True)
        for k, p in enumerate(user):
            shutil.copy(p, src / "plain" / f"{k:04d}_{p.name}")
            watermark_copy(p, src / "watermarked" / f"{k:04d}_{p.name}", seed, max_pages)
    for k, c in enumerate(CONDITIONS):
        if c.name not in wanted:
            continue
        if user:
            pdf_dir = src / ("watermarked" if c.watermarks else "plain")
            dpi = FROM_PDF_SMALL_DPI if c.name == "small-print" else c.dpi
        else:
            pdf_dir, dpi = src / c.name, c.dpi
            synthesize(SynthConfig(out=str(pdf_dir), pages=pages, seed=10_000 * SUITE_VERSION + 100 * seed + k,
                                   fonts="heldout", watermarks="heldout" if c.watermarks else "none",
                                   clean_fraction=0.0 if c.watermarks else 1.0, sizes=c.sizes), progress=progress)
        cdir = out / c.name
        sampled = bool(user and max_lines)
        s = ingest(sorted(str(p) for p in pdf_dir.glob("*.pdf")),
                   IngestConfig(out=str(out / f"{c.name}.all" if sampled else cdir), dpi=dpi, degrade=c.degrade,
                                seed=100 * seed + k, workers=1, max_pages=max_pages if user else 0, pages_seed=seed),
                   progress=progress)
        lines = s["lines"]
        if sampled:
            names = sample_store(out / f"{c.name}.all", cdir, clean_names if k else None, max_lines, seed)
            clean_names = clean_names if k else names
            shutil.rmtree(out / f"{c.name}.all")
            lines = len(names)
        else:
            (cdir / "ingest.json").unlink()  # holds timings: not part of the fixed bytes
        what = c.what
        if user:  # the PDFs' own fonts, not held-out synthetic ones
            what = (what.replace("held-out fonts, no watermark", "the documents' own fonts, no watermark")
                    .replace("held-out fonts under", "the documents under")
                    .replace("5-7 pt body text rendered at 96 dpi", f"the pages rendered at {dpi} dpi (10-pt text at "
                             f"{dpi} dpi has the pixels of 6-pt text at 96 dpi)"))
        built[c.name] = {**asdict(c), "what": what, "dpi": dpi, "lines": lines, "pages": s["pages_ok"],
                              "documents": s["files"] - len(s["files_failed"]),
                              "skipped_pages": len(s["page_failures"]) + len(s["files_failed"]),
                              "labels_sha256": _sha(cdir / "labels.tsv")}
        if user and c.name == "clean":
            tight_copy(cdir, out / TIGHT)
            built[TIGHT] = {"name": TIGHT, "what": TIGHT_WHAT, "lines": lines,
                                 "labels_sha256": _sha(out / TIGHT / "labels.tsv")}
    wm_pdfs = sorted((src / ("watermarked" if user else "watermark")).glob("*.pdf"))
    n = no_text_crops(wm_pdfs, out / NO_TEXT, no_text, seed=1000 + seed)
    built[NO_TEXT] = {"name": NO_TEXT, "what": NO_TEXT_WHAT, "lines": n,
                           # its labels are all empty: the images are what identifies it (anchor caches)
                           "labels_sha256": _sha_store(out / NO_TEXT)}
    desc = {"format": "ocr-robust-suite", "version": SUITE_VERSION, "seed": seed, "pages_per_condition": pages,
            "max_pages": max_pages, "max_lines": max_lines,
            "source": ("user PDFs: " + ", ".join(p.name for p in user) if user
                       else "synthetic, held-out fonts and styles"),
            "conditions": built}
    (out / "suite.json").write_text(json.dumps(desc, indent=2, ensure_ascii=False), encoding="utf-8")
    return desc


def load_suite(path: str | Path) -> dict:
    from ..errors import InputError

    f = Path(path) / "suite.json"
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise InputError(f, f"not a benchmark suite (build one with `ocr-robust benchmark build`): {e}") from None
