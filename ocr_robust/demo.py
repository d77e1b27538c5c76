"""``make demo``: the job end to end, from scratch, timing each stage.

Build a training corpus from real documents (a page of each document of the real-document
corpus's training split, ``benchmarks/corpus/train.txt``, half of them painted with the
training watermark styles) plus synthetic pages in the training fonts; build the
real-document test suite from the test split's documents (``benchmark build --from-pdf``,
the suite every figure in RESULTS.md is measured on) and synthetic test sets made only
with HELD-OUT fonts and styles; train the small model naturally; benchmark it on both;
export it to ONNX (``demo-output/model/``); read a few lines with the export; print the
tables, with the shipped default model (``pretrained/latin``) on the same sets beside it.
Without the documentation PDFs (``make system`` installs them) the demo runs on synthetic
pages only and says so.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from .inference import DEFAULT_MODEL
from .pdf.ingest import IngestConfig, format_summary, ingest
from .pdf.synth import SynthConfig, synthesize

__all__ = ["RECIPE", "ROOT", "CORPUS", "REAL_SETS", "Stages", "main"]

# How the demo trains (TrainConfig fields); benchmarks/bench_recipe.py compares changes to it.
# One loader process prepares (crops, augments) the next batches while the model trains.
RECIPE: dict[str, Any] = {"model": "crnn-small", "batch_size": 32, "lr": 4e-3, "workers": 1}
ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "benchmarks" / "corpus"
REAL_SETS = ("clean", "clean-tight", "watermark", "lowres-jpeg", "watermark-lowres")  # the suite's targets


def _documents(corpus: Path, split: str) -> list[str]:
    f = corpus / f"{split}.txt"
    if not f.is_file():
        return []
    return [p for p in (ln.strip() for ln in f.read_text(encoding="utf-8").splitlines()) if p and Path(p).is_file()]


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
    ap.add_argument("--train-pages", type=int, default=120)
    ap.add_argument("--test-pages", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--epochs", type=int, default=12)
    ap.add_argument("--time-limit", type=float, default=13.0, help="training budget in minutes")
    ap.add_argument("--sortagrad", action=argparse.BooleanOptionalAction, default=False,
                    help="first epoch narrowest lines first")
    ap.add_argument("--corpus", default=str(CORPUS), help="folder with the real corpus's train.txt and test.txt")
    ap.add_argument("--real-pages", type=int, default=2, help="pages of each real training document")
    ap.add_argument("--suite-lines", type=int, default=1000,
                    help="lines per condition of the demo's real-document suite (the benchmark's has 2,000)")
    a = ap.parse_args(argv)
    out = Path(a.out)
    if out.exists():
        shutil.rmtree(out)
    st = Stages()
    corpora = {
        # name: (fonts, watermark styles, clean fraction, degradations, seed offset)
        "train": ("train", "train", 0.25, "", 0),
        # the packaged held-out faces: the same test pages as every earlier demo, so figures compare
        "test-clean": ("heldout-packaged", "none", 1.0, "", 1),
        "test-watermark": ("heldout-packaged", "heldout", 0.0, "", 2),
        "test-lowres": ("heldout-packaged", "none", 1.0, "downscale:0.4-0.6,jpeg:40-60", 3),
    }
    train_docs, test_docs = _documents(Path(a.corpus), "train"), _documents(Path(a.corpus), "test")
    if not (train_docs and test_docs):
        print(f"\n== no real documents ({a.corpus}/train.txt, test.txt name no installed PDF; `make system` installs "
              "Debian's documentation PDFs): the demo trains and tests on synthetic pages only", flush=True)
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
    from .evaluation.lines import bench, format_table
    from .export import export
    from .inference import Recognizer
    from .training import TrainConfig, Trainer

    stores = ["train.lmdb"]
    if train_docs:
        s = st.run(f"ingest real training documents: {a.real_pages} page(s) of each of {len(train_docs)}, half "
                   "painted with the training watermark styles", ingest, train_docs,
                   IngestConfig(out=str(out / "lines" / "train-real.lmdb"), lmdb=True, seed=a.seed,
                                max_pages=a.real_pages, watermarks="train", watermark_fraction=0.5))
        print(format_summary(s))
        rows.append(("train-real", s))
        stores.append("train-real.lmdb")
    real_tests: list[str] = []
    if test_docs:
        from .evaluation.suite import build_suite

        d = st.run(f"build the real-document suite from {len(test_docs)} test documents", build_suite,
                   out / "suite", from_pdf=test_docs, seed=0, max_pages=2, max_lines=a.suite_lines, no_text=0,
                   conditions=[c for c in REAL_SETS if c != "clean-tight"])
        real_tests = [str(out / "suite" / c) for c in REAL_SETS if c in d["conditions"]]
    c = st.run("convert train lines to LMDB", convert, str(out / "lines" / "train"), str(out / "lines" / "train.lmdb"))
    print(f"   {c['samples']} samples -> {c['dst']}")
    (out / "lines" / "stores.txt").write_text("".join(f"{n}\n" for n in stores), encoding="utf-8")

    print("\n== ingest summary")
    print(f"{'corpus':<16}{'pages':>7}{'lines':>8}{'skipped':>9}{'pages/s':>9}{'lines/s':>9}")
    for name, s in rows:
        print(f"{name:<16}{s['pages_ok']:>7}{s['lines']:>8}{sum(s['lines_skipped'].values()):>9}"
              f"{s['pages_per_s']:>9.2f}{s['lines_per_s']:>9.1f}")

    run = out / "run"
    cfg = TrainConfig(data=str(out / "lines" / "stores.txt"), out=str(run), epochs=a.epochs, seed=a.seed,
                      time_limit_min=a.time_limit, sortagrad=a.sortagrad, **RECIPE)
    trainer = Trainer(cfg, progress=True)
    r = st.run(f"train crnn-small, natural mode ({a.epochs} epochs, at most {a.time_limit:g} min)", trainer.fit)
    print(f"   {r['epochs']} epochs, best validation word accuracy {100 * r['best_val_word_acc']:.2f}%")
    tests = [str(out / "lines" / n) for n in ("test-clean", "test-watermark", "test-lowres")]
    ex = st.run("export to ONNX", export, str(run), str(out / "model"))
    print(f"   {', '.join(ex['files'])}; parity max |diff| {ex['parity']['onnx']['max_abs_diff']:.1e}")
    model = str(out / "model")  # read with ONNX Runtime: the figures are the export's, and it is faster
    bench_rows = st.run("benchmark on held-out fonts and watermark styles", bench, model, tests)
    real_rows = st.run("benchmark on the real-document suite", bench, model, real_tests) if real_tests else []
    default_rows = []
    if DEFAULT_MODEL.is_dir():
        default_rows = st.run(f"the default model ({DEFAULT_MODEL.name}) on the same sets", bench, str(DEFAULT_MODEL),
                              real_tests + tests)
    from .data.store import open_store, read_grey

    store = open_store(tests[1])
    sample = list(range(0, len(store), max(1, len(store) // 5)))[:5]
    images = [read_grey(store, i) for i in sample]
    reads = st.run("recognize 5 watermarked lines with the exported model", Recognizer(out / "model").recognize, images)
    for i, d in zip(sample, reads):
        verdict = "OK " if d.text == store.text(i) else "ERR"
        print(f"   {verdict} {d.text!r}  (truth {store.text(i)!r}, conf {d.confidence:.2f})")

    if real_rows:
        print("\n== word accuracy on the real-document suite (test-split documents, never trained on)")
        print(format_table(real_rows))
    print("\n== word accuracy on held-out fonts (and held-out watermark styles)")
    print(format_table(bench_rows))
    if default_rows:
        print(f"\n== the shipped default model ({DEFAULT_MODEL}) on the same sets")
        print(format_table(default_rows))
    print("\nstage times:")
    for name, t in st.times:
        print(f"  {t:7.1f} s  {name}")
    print(f"  {sum(t for _, t in st.times):7.1f} s  total")
    (out / "demo.json").write_text(json.dumps({"stages": st.times, "corpora": {n: s for n, s in rows},
                                               "training": {k: v for k, v in r.items()}, "bench": bench_rows,
                                               "bench_real": real_rows, "bench_default_model": default_rows},
                                              indent=2, ensure_ascii=False), encoding="utf-8")
    print(f"\nexported model: {out / 'model'}; try: .venv/bin/ocr-robust recognize --model {out / 'model'} LINE.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
