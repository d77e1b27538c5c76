#!/usr/bin/env python3
"""Ingestion throughput: pages/s and lines/s at a given dpi, serial and page-parallel.

    python benchmarks/bench_ingest.py [--pages 120] [--dpi 150] [--repeat 3]

Synthesizes a corpus once (training fonts, all watermark styles), then times ``ingest``
into both store formats (folder: one PNG file per line; LMDB: one database file), with
1 worker and with one worker per core, with and without page degradations. Prints a
Markdown table for benchmarks/RESULTS.md and writes benchmarks/results/ingest.json.
Timings are the MEDIAN of ``repeat`` wall-clock runs (the spread is large where the file
system is the bottleneck), with the min and max beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from ocr_robust.pdf.ingest import IngestConfig, ingest  # noqa: E402
from ocr_robust.pdf.synth import SynthConfig, synthesize  # noqa: E402


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pages", type=int, default=120)
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-ingest-"))
    try:
        synthesize(SynthConfig(out=str(work / "pdf"), pages=a.pages, seed=a.seed, watermarks="all"), progress=False)
        pdfs = sorted(str(p) for p in (work / "pdf").glob("*.pdf"))
        rows = []
        cores = os.cpu_count() or 1
        for lmdb in (False, True):
            for workers in sorted({1, cores}):
                for degrade in ["", "downscale,blur,noise,jpeg"]:
                    runs = []
                    for _ in range(a.repeat):
                        out = work / "lines"
                        shutil.rmtree(out, ignore_errors=True)
                        runs.append(ingest(pdfs, IngestConfig(out=str(out), dpi=a.dpi, workers=workers, lmdb=lmdb,
                                                              degrade=degrade), progress=False))
                    secs = sorted(r["seconds"] for r in runs)
                    med = statistics.median(secs)
                    s0 = runs[0]
                    rows.append({"format": "lmdb" if lmdb else "folder", "workers": workers,
                                 "degrade": degrade or "none", "pages": s0["pages_ok"], "lines": s0["lines"],
                                 "seconds": med, "min": secs[0], "max": secs[-1],
                                 "pages_per_s": round(s0["pages_ok"] / med, 2),
                                 "lines_per_s": round(s0["lines"] / med, 1)})
        result = {"machine": machine(), "dpi": a.dpi, "pages": a.pages, "repeat": a.repeat, "rows": rows,
                  "command": f"python benchmarks/bench_ingest.py --pages {a.pages} --dpi {a.dpi} --repeat {a.repeat}",
                  "timing": "median wall-clock seconds of the repeats"}
        res_dir = Path(__file__).resolve().parent / "results"
        res_dir.mkdir(exist_ok=True)
        (res_dir / "ingest.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
        print(f"Machine: {result['machine']}; {a.pages} synthetic pages at {a.dpi} dpi, median of {a.repeat}\n")
        print("| store | workers | page degradations | pages | lines | seconds (min-max) | pages/s | lines/s |")
        print("|---|---:|---|---:|---:|---:|---:|---:|")
        for r in rows:
            print(f"| {r['format']} | {r['workers']} | {r['degrade']} | {r['pages']} | {r['lines']} | "
                  f"{r['seconds']:.2f} ({r['min']:.2f}-{r['max']:.2f}) | "
                  f"{r['pages_per_s']:.2f} | {r['lines_per_s']:.0f} |")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
