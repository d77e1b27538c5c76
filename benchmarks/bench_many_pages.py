#!/usr/bin/env python3
"""Memory of ingestion and recognition on PDFs of many pages: is it bounded by the page, not
the document?

    python benchmarks/bench_many_pages.py [--pages 300 3000] [--model demo-output/model]

For each page count, one PDF of that many pages (three text lines each) is ingested into an
LMDB store with ``ocr-robust ingest`` and, with ``--model``, read with ``ocr-robust
recognize --output tsv``, each in its own process; the peak resident memory of that
process (``ru_maxrss``) and the time are recorded. Writes benchmarks/results/many-pages.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pymupdf

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_ingest import machine  # noqa: E402


def make_pdf(path: Path, pages: int) -> None:
    doc = pymupdf.open()
    for k in range(pages):
        page = doc.new_page(width=595, height=842)
        for j in range(3):
            page.insert_text((72, 100 + 30 * j), f"Page {k + 1} line {j + 1}: ferritin 41 ng/mL (30-400)",
                             fontname="helv", fontsize=11)
    doc.save(path, garbage=3, deflate=True)


_WRAP = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, "
         "stderr=subprocess.PIPE, text=True); sys.stderr.write(r.stderr[-500:]); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")


def peak(cmd: list[str]) -> dict:
    """Run ``cmd`` as the only child of a fresh wrapper process: its peak RSS (MB) and wall time."""
    t = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", _WRAP, *cmd], capture_output=True, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed: {r.stderr}")
    return {"seconds": round(time.perf_counter() - t, 1), "peak_rss_mb": round(int(r.stdout.split()[-1]) / 1024, 1)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, nargs="+", default=[300, 3000])
    ap.add_argument("--model")
    a = ap.parse_args()
    exe = [sys.executable, "-m", "ocr_robust.cli"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in sorted(a.pages):
            pdf = Path(tmp) / f"{n}.pdf"
            make_pdf(pdf, n)
            row = {"pages": n, "pdf_mb": round(pdf.stat().st_size / 2**20, 2)}
            row["ingest"] = peak([*exe, "ingest", str(pdf), "--out", f"{tmp}/lines{n}", "--lmdb", "--workers", "1",
                                  "--quiet"])
            if a.model:
                row["recognize"] = peak([*exe, "recognize", "--model", a.model, str(pdf), "--output", "tsv"])
            rows.append(row)
            print(json.dumps(row), flush=True)
    out = Path(__file__).resolve().parent / "results" / "many-pages.json"
    out.write_text(json.dumps({"machine": machine(), "rows": rows}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
