"""``make demo``: the job end to end on the built-in synthetic corpus, timing each stage.

So far (data pipeline): synthesize a training corpus (training fonts and watermark styles)
and test corpora made only with HELD-OUT fonts and styles (clean, watermarked, low
resolution), ingest each into a line store, convert one to LMDB, and print the summary.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from .pdf.ingest import IngestConfig, format_summary, ingest
from .pdf.synth import SynthConfig, synthesize


class Stages:
    def __init__(self) -> None:
        self.times: list[tuple[str, float]] = []

    def run(self, name: str, fn, *args, **kw):
        print(f"\n== {name}", flush=True)
        t = time.perf_counter()
        out = fn(*args, **kw)
        self.times.append((name, time.perf_counter() - t))
        print(f"   ({self.times[-1][1]:.1f} s)", flush=True)
        return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m ocr_robust.demo")
    ap.add_argument("--out", default="demo-output")
    ap.add_argument("--train-pages", type=int, default=60)
    ap.add_argument("--test-pages", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    st = Stages()
    corpora = {
        # name: (fonts, watermark styles, clean fraction, degradations, seed offset)
        "train": ("train", "train", 0.25, "", 0),
        "test-clean": ("heldout", "none", 1.0, "", 1),
        "test-watermark": ("heldout", "heldout", 0.0, "", 2),
        "test-lowres": ("heldout", "none", 1.0, "downscale:0.4-0.6,jpeg:40-60", 3),
    }
    rows = []
    for name, (fonts, styles, clean, degrade, off) in corpora.items():
        pages = a.train_pages if name == "train" else a.test_pages
        pdf_dir, line_dir = out / "pdf" / name, out / "lines" / name
        st.run(f"synth {name}: {pages} pages, fonts={fonts}, watermarks={styles}", synthesize,
               SynthConfig(out=str(pdf_dir), pages=pages, seed=a.seed * 100 + off, fonts=fonts, watermarks=styles,
                           clean_fraction=clean))
        s = st.run(f"ingest {name}" + (f" (degrade {degrade})" if degrade else ""), ingest,
                   sorted(str(p) for p in pdf_dir.glob("*.pdf")),
                   IngestConfig(out=str(line_dir), degrade=degrade, seed=a.seed + off))
        print(format_summary(s))
        rows.append((name, s))
    from .data.store import convert

    c = st.run("convert train lines to LMDB", convert, str(out / "lines" / "train"), str(out / "lines" / "train.lmdb"))
    print(f"   {c['samples']} samples -> {c['dst']}")

    print("\n== summary")
    print(f"{'corpus':<16}{'pages':>7}{'lines':>8}{'skipped':>9}{'pages/s':>9}{'lines/s':>9}")
    for name, s in rows:
        print(f"{name:<16}{s['pages_ok']:>7}{s['lines']:>8}{sum(s['lines_skipped'].values()):>9}"
              f"{s['pages_per_s']:>9.2f}{s['lines_per_s']:>9.1f}")
    print("\nstage times:")
    for name, t in st.times:
        print(f"  {t:7.1f} s  {name}")
    print(f"  {sum(t for _, t in st.times):7.1f} s  total")
    (out / "demo.json").write_text(json.dumps({"stages": st.times, "corpora": {n: s for n, s in rows}}, indent=2,
                                              ensure_ascii=False), encoding="utf-8")
    print(f"\nline stores are in {out / 'lines'}; recognizer training comes with the recognizer issue.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
