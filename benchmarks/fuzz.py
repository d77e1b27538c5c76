#!/usr/bin/env python3
"""Fuzz the PDF page reader and the image decoders with mutated seeds, each input under a deadline.

    python benchmarks/fuzz.py [--pdf 100000] [--images 100000] [--seed 0] [--timeout 5] [--workers 1]
    python benchmarks/fuzz.py --replay pdf:123      # write input 123 of the PDF run to replay.bin

Every input runs where it can be stopped: in a page worker process (``pdf/workers.py``),
killed at ``--timeout`` seconds. A PDF input goes through what ``ingest``, ``recognize`` and
the service do with a file: ``check_document`` (opening), then the text layer, the raster and
the crops of up to 3 pages (``pdf.read.pdf_file_lines`` at 50 dpi). An image input goes
through ``images.decode_grey`` (the header check, then OpenCV). Findings:

- a hang: the input ran past the deadline (its process was killed);
- a crash: the worker process died (a segfault inside MuPDF or OpenCV);
- an escape: an exception other than the project's one-line ``InputError`` left the entry
  point (``pdf_page_lines`` and ``check_document`` report bad pages and files, never raise);
- memory: a worker went past ``--memory-gb`` beyond what it started with (MemoryError).

Seeds: small generated PDFs (text, watermarks, an image-only page, a rotated page) and the
hostile structures of issue D1-D3: form XObjects nested 4 and 9 levels deep, an image
XObject claiming 60000 x 60000 pixels, a broken cross-reference table, a font whose program
is garbage, a Type3 font whose glyph draws itself, arrays nested 5,000 deep; images in every
accepted format and headers claiming huge sizes. Inputs are reproducible from ``--seed`` and
their index (``--replay``; mutations of the generated PDFs up to their creation time); the
findings' inputs are written to ``--out``, and the counts to ``benchmarks/results/fuzz.json``.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pymupdf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from bench_ingest import machine  # noqa: E402
from hostile import (  # noqa: E402
    bmp_claiming,
    gif_claiming,
    pdf_from_objects,
    png_claiming,
    tiff_claiming,
    webp_claiming,
    xobject_bomb_pdf,
)

from ocr_robust.pdf.workers import PageCrash, PageTimeout, PageWorkers  # noqa: E402


def _page(content: bytes, resources: bytes = b"<< >>") -> dict[int, bytes]:
    return {1: b"<< /Type /Catalog /Pages 2 0 R >>", 2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources %s /Contents 4 0 R >>" % resources,
            4: b"<< /Length %d >>\nstream\n%s\nendstream" % (len(content), content)}


def hostile_pdfs() -> dict[str, bytes]:
    out = {"xobjects-4-deep": xobject_bomb_pdf(4), "xobjects-9-deep": xobject_bomb_pdf(9)}
    img = _page(b"q 600 0 0 780 6 6 cm /I Do Q", b"<< /XObject << /I 5 0 R >> >>")
    pixels = b"x\x9c\x03\x00\x00\x00\x00\x01"  # an empty zlib stream
    img[5] = (b"<< /Type /XObject /Subtype /Image /Width 60000 /Height 60000 /ColorSpace /DeviceRGB "
              b"/BitsPerComponent 8 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream" % (len(pixels), pixels))
    out["image-60000x60000"] = pdf_from_objects(img)
    text = _page(b"BT /F1 12 Tf 72 700 Td (Broken cross references) Tj ET", b"<< /Font << /F1 5 0 R >> >>")
    text[5] = b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"
    out["broken-xref"] = pdf_from_objects(text, broken_xref=True)
    garbage = bytes(random.Random(1).getrandbits(8) for _ in range(3000))
    font = _page(b"BT /F1 12 Tf 72 700 Td (Garbage font program) Tj ET", b"<< /Font << /F1 5 0 R >> >>")
    font[5] = (b"<< /Type /Font /Subtype /TrueType /BaseFont /Junk /FirstChar 32 /LastChar 126 /FontDescriptor 6 0 R "
               b">>")
    font[6] = (b"<< /Type /FontDescriptor /FontName /Junk /Flags 32 /FontBBox [0 0 1000 1000] /ItalicAngle 0 "
               b"/Ascent 800 /Descent -200 /CapHeight 700 /StemV 80 /FontFile2 7 0 R >>")
    font[7] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(garbage), garbage)
    out["garbage-font"] = pdf_from_objects(font)
    t3 = _page(b"BT /F1 12 Tf 72 700 Td (aaaa) Tj ET", b"<< /Font << /F1 5 0 R >> >>")
    glyph = b"1000 0 0 0 1000 1000 d1 BT /F1 1 Tf (a) Tj ET"
    t3[5] = (b"<< /Type /Font /Subtype /Type3 /FontBBox [0 0 1000 1000] /FontMatrix [0.001 0 0 0.001 0 0] "
             b"/CharProcs << /a 6 0 R >> /Encoding << /Differences [97 /a] >> /FirstChar 97 /LastChar 97 "
             b"/Widths [1000] /Resources << /Font << /F1 5 0 R >> >> >>")
    t3[6] = b"<< /Length %d >>\nstream\n%s\nendstream" % (len(glyph), glyph)
    out["type3-recursive"] = pdf_from_objects(t3)
    nested = _page(b"BT /F1 12 Tf 72 700 Td (deep) Tj ET", b"<< /Deep " + b"[" * 5000 + b"]" * 5000 + b" >>")
    out["arrays-5000-deep"] = pdf_from_objects(nested)
    return out


def generated_pdfs(tmp: Path) -> dict[str, bytes]:
    from ocr_robust.pdf.synth import SynthConfig, synthesize

    synthesize(SynthConfig(out=str(tmp / "s"), pages=2, seed=1, watermarks="all", pages_per_doc=1), progress=False)
    out = {p.stem: p.read_bytes() for p in sorted((tmp / "s").glob("*.pdf"))}
    doc = pymupdf.open(tmp / "s" / "doc_00000.pdf")
    img = pymupdf.open()
    pix = doc[0].get_pixmap(dpi=40)
    p = img.new_page(width=doc[0].rect.width, height=doc[0].rect.height)
    p.insert_image(p.rect, pixmap=pix)
    doc[0].set_rotation(90)
    out["image-only"], out["rotated"] = img.tobytes(), doc.tobytes()
    return out


def image_seeds() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    line = np.full((32, 160), 255, np.uint8)
    cv2.putText(line, "Fuzz 0l1O", (4, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.8, 0, 2)
    colour = cv2.cvtColor(line, cv2.COLOR_GRAY2BGR)
    colour[:, :, 2] = rng.integers(0, 255, line.shape, dtype=np.uint8)
    out = {}
    for ext in (".png", ".jpg", ".tif", ".bmp", ".webp", ".pgm"):
        out["line" + ext] = cv2.imencode(ext, line)[1].tobytes()
        out["colour" + ext] = cv2.imencode(ext, colour if ext != ".pgm" else line)[1].tobytes()
    rgba = np.dstack([colour, np.full(line.shape, 128, np.uint8)])
    out["rgba.png"] = cv2.imencode(".png", rgba)[1].tobytes()
    out["16bit.png"] = cv2.imencode(".png", (line.astype(np.uint16) * 257))[1].tobytes()
    out.update({"huge.tif": tiff_claiming(20000, 20000), "huge.gif": gif_claiming(30000, 30000),
                "huge.bmp": bmp_claiming(20000, 20000), "huge.webp": webp_claiming(16000, 16000),
                "huge.png": png_claiming(20000, 20000), "small.gif": gif_claiming(40, 20)})
    return out


def mutate(data: bytes, rng: random.Random) -> bytes:
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        if not b:
            break
        kind, pos, n = rng.randrange(6), rng.randrange(len(b)), rng.randint(1, 4000)
        if kind == 0:  # flip bytes
            for k in range(pos, min(len(b), pos + min(n, 64))):
                b[k] ^= rng.randrange(1, 256)
        elif kind == 1:  # delete a run
            del b[pos:pos + n]
        elif kind == 2:  # duplicate a run
            b[pos:pos] = b[pos:pos + n]
        elif kind == 3:  # truncate
            del b[pos:]
        elif kind == 4:  # splice garbage
            b[pos:pos] = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 64)))
        else:  # a number made huge (sizes, counts, offsets)
            b[pos:pos] = str(rng.choice([2**31 - 1, 2**32 + 1, 10**9, 65535, -1, 0])).encode()
    return bytes(b)


RARE = {"xobjects-9-deep": 0.002}  # seeds that hang every time: drawn rarely, or the run would be all deadlines


def make_input(kind: str, seed: int, index: int, seeds: list[tuple[str, bytes]]) -> tuple[str, bytes]:
    """Input ``index`` of a run: reproducible from the seed and the index alone."""
    rng = random.Random(f"{seed}:{kind}:{index}")
    weights = [RARE.get(name, 1.0) for name, _ in seeds]
    name, data = rng.choices(seeds, weights)[0]
    return name, (data if rng.random() < 0.02 else mutate(data, rng))


# --- what runs in the worker processes --------------------------------------------------------

def one_thread() -> None:
    cv2.setNumThreads(1)


def read_pdf(data: bytes) -> str:
    """What the entry points do with a PDF file; the outcome in a word."""
    from ocr_robust.pdf.ingest import check_document, open_cached
    from ocr_robust.pdf.read import pdf_file_lines

    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "in.pdf"
        f.write_bytes(data)
        n, why, _ = check_document(str(f))
        if why:
            return "refused"
        errors = 0
        for pno in range(min(n, 3)):
            reading, _ = pdf_file_lines(str(f), pno, dpi=50)
            errors += reading.error is not None
        open_cached.cache_clear()
        return "pages failed" if errors else "read"


def decode_image(data: bytes) -> str:
    from ocr_robust.errors import InputError, TooLarge
    from ocr_robust.images import decode_grey

    try:
        decode_grey(data, "in")
    except TooLarge:
        return "too large"
    except InputError:
        return "refused"
    return "decoded"


# --- the run ----------------------------------------------------------------------------------

def run(kind: str, n: int, seeds: list[tuple[str, bytes]], a, workers: PageWorkers, findings: Path) -> dict:
    fn = read_pdf if kind == "pdf" else decode_image
    outcomes: Counter[str] = Counter()
    by_seed: Counter[str] = Counter()
    found: list[dict] = []
    digest = hashlib.sha256()
    t0 = time.perf_counter()

    def one(i: int):
        name, data = make_input(kind, a.seed, i, seeds)
        try:
            return i, name, data, workers.run(fn, data), None
        except PageTimeout as e:
            return i, name, data, "hang", str(e)
        except PageCrash as e:
            return i, name, data, "crash", str(e)
        except RuntimeError as e:
            return i, name, data, "memory" if "MemoryError" in str(e) else "escape", str(e)

    import concurrent.futures as cf

    with cf.ThreadPoolExecutor(a.workers) as pool:
        for i, name, data, outcome, detail in pool.map(one, range(n), chunksize=64):
            digest.update(hashlib.sha256(data).digest())
            outcomes[outcome] += 1
            if outcome in ("hang", "crash", "escape", "memory"):
                by_seed[name] += 1
                if len(found) < 200:
                    f = findings / f"{kind}-{i:06d}-{outcome}.bin"
                    f.write_bytes(data)
                    found.append({"input": i, "seed": name, "outcome": outcome, "detail": (detail or "")[:300],
                                  "file": f.name})
            if a.progress and (i + 1) % 1000 == 0:
                print(f"{kind} {i + 1}/{n}: {dict(outcomes)} ({time.perf_counter() - t0:.0f} s)", flush=True)
    return {"inputs": n, "seconds": round(time.perf_counter() - t0, 1), "outcomes": dict(outcomes.most_common()),
            "findings_by_seed": dict(by_seed.most_common()), "findings": found,
            "inputs_sha256": digest.hexdigest()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pdf", type=int, default=100_000, help="PDF inputs")
    ap.add_argument("--images", type=int, default=100_000, help="image inputs")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds per input before it counts as a hang")
    ap.add_argument("--workers", type=int, default=1, help="worker processes")
    ap.add_argument("--memory-gb", type=float, default=1.0, help="memory a worker may allocate beyond its start")
    ap.add_argument("--out", default=str(HERE / "results" / "fuzz-findings"), help="folder for the findings' inputs")
    ap.add_argument("--replay", help="KIND:INDEX: write that input to replay.bin and stop")
    ap.add_argument("--progress", action="store_true")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-"))
    pdf_seeds = sorted({**generated_pdfs(tmp), **hostile_pdfs()}.items())
    img_seeds = sorted(image_seeds().items())
    if a.replay:
        kind, index = a.replay.split(":")
        name, data = make_input(kind, a.seed, int(index), pdf_seeds if kind == "pdf" else img_seeds)
        Path("replay.bin").write_bytes(data)
        print(f"replay.bin: {kind} input {index} (seed {name}, {len(data)} bytes)")
        return 0
    findings = Path(a.out)
    findings.mkdir(parents=True, exist_ok=True)
    result = {"machine": machine(), "seed": a.seed, "timeout_s": a.timeout, "workers": a.workers,
              "memory_gb": a.memory_gb, "pdf_seeds": [n for n, _ in pdf_seeds],
              "image_seeds": [n for n, _ in img_seeds]}
    with PageWorkers(a.workers, a.timeout, initializer=one_thread, memory_mb=int(a.memory_gb * 1024)) as workers:
        result["pdf"] = run("pdf", a.pdf, pdf_seeds, a, workers, findings)
        result["images"] = run("image", a.images, img_seeds, a, workers, findings)
    out = HERE / "results" / "fuzz.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    for kind in ("pdf", "images"):
        r = result[kind]
        print(f"{kind}: {r['inputs']} inputs in {r['seconds']} s: {r['outcomes']}; findings by seed: "
              f"{r['findings_by_seed']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
