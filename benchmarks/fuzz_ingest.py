#!/usr/bin/env python3
"""Fuzz the PDF entry points with mutated real PDFs (hypothesis at a large budget).

    python benchmarks/fuzz_ingest.py [--examples 2000] [--seed 0]

Seeds: small generated PDFs (text, watermarks, an image-only page, a rotated page). Each
example mutates one seed (bytes flipped, runs deleted or duplicated, truncated, random
garbage spliced in) and feeds it to ``ingest`` (the ingestion entry point, in-process, one
worker) and to ``pdf.read.PageReader`` (the reading path of the service and ``recognize``). A crash is any exception escaping them, or a summary that loses track of the file
(neither lines nor a reported failure). Prints and writes the count of inputs tried and
crashes (benchmarks/results/fuzz-ingest.json).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import traceback
from pathlib import Path

import pymupdf
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_ingest import machine  # noqa: E402

from ocr_robust.errors import InputError  # noqa: E402
from ocr_robust.pdf.ingest import IngestConfig, ingest  # noqa: E402
from ocr_robust.pdf.read import PageReader  # noqa: E402


def seeds(tmp: Path) -> list[bytes]:
    from ocr_robust.pdf.synth import SynthConfig, synthesize

    synthesize(SynthConfig(out=str(tmp / "s"), pages=2, seed=1, watermarks="all", pages_per_doc=1), progress=False)
    out = [p.read_bytes() for p in sorted((tmp / "s").glob("*.pdf"))]
    doc = pymupdf.open(tmp / "s" / "doc_00000.pdf")
    img = pymupdf.open()
    pix = doc[0].get_pixmap(dpi=40)
    p = img.new_page(width=doc[0].rect.width, height=doc[0].rect.height)
    p.insert_image(p.rect, pixmap=pix)
    doc[0].set_rotation(90)
    out += [img.tobytes(), doc.tobytes()]
    return out


def mutate(data: bytes, ops: list[tuple[int, int, int, bytes]]) -> bytes:
    b = bytearray(data)
    for kind, pos, n, junk in ops:
        if not b:
            break
        pos %= len(b)
        if kind == 0:  # flip bytes
            for k in range(pos, min(len(b), pos + n)):
                b[k] ^= 0xFF
        elif kind == 1:  # delete a run
            del b[pos:pos + n]
        elif kind == 2:  # duplicate a run
            b[pos:pos] = b[pos:pos + n]
        elif kind == 3:  # truncate
            del b[pos:]
        else:  # splice garbage
            b[pos:pos] = junk
    return bytes(b)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--examples", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="fuzz-ingest-"))
    corpus = seeds(tmp)
    reader = PageReader(timeout_s=10)
    stats = {"tried": 0, "crashes": [], "lines": 0, "files_failed": 0, "pages_failed": 0, "open_refused": 0}
    ops = st.lists(st.tuples(st.integers(0, 4), st.integers(0, 10**6), st.integers(1, 4000), st.binary(max_size=64)),
                   min_size=1, max_size=6)

    @seed(a.seed)
    @settings(max_examples=a.examples, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(st.integers(0, len(corpus) - 1), ops)
    def run(which, mutation):
        data = mutate(corpus[which], mutation)
        stats["tried"] += 1
        f = tmp / "in.pdf"
        f.write_bytes(data)
        try:
            s = ingest([str(f)], IngestConfig(out=str(tmp / "out"), workers=1), progress=False)
            stats["lines"] += s["lines"]
            stats["files_failed"] += len(s["files_failed"])
            stats["pages_failed"] += len(s["page_failures"])
            if s["pages"] and not (s["lines"] or s["files_failed"] or s["page_failures"] or s["lines_skipped"]):
                raise AssertionError("pages read, but no lines and no reason given")
            try:
                n = reader.open(f, "in.pdf")
            except InputError:
                stats["open_refused"] += 1
            else:
                for pno in range(min(n, 3)):
                    reader.page(f, pno, dpi=50)
        except Exception:
            stats["crashes"].append({"input": which, "mutation": repr(mutation)[:300],
                                     "error": traceback.format_exc(limit=3)[-600:]})

    t0 = time.perf_counter()
    run()
    result = {"machine": machine(), "examples": a.examples, "seed": a.seed,
              "seconds": round(time.perf_counter() - t0, 1),
              **{k: v for k, v in stats.items() if k != "crashes"}, "crashes": len(stats["crashes"]),
              "crash_examples": stats["crashes"][:10]}
    out = Path(__file__).resolve().parent / "results" / "fuzz-ingest.json"
    out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "crash_examples"}, indent=2))
    for c in stats["crashes"][:5]:
        print(c["error"])
    return 1 if stats["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
