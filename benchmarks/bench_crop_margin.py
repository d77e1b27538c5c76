#!/usr/bin/env python3
"""Word accuracy over crop margins: the same real lines cut with margins from 0 to 50% of the
line height (text-layer boxes, the neighbouring lines showing in the loose ones), plus the
ink-tight crops of the suite's ``clean-tight`` condition, read by each model.

    python benchmarks/bench_crop_margin.py --suite SUITE --models pretrained/latin [RUN ...] \
        [--margins 0,0.1,0.2,0.3,0.4,0.5] [--json benchmarks/results/crop-margin.json]

SUITE is a real-document suite (``benchmark build --from-pdf``): its clean PDFs are ingested
again at each margin with the suite's page choice, and the suite's sampled clean lines are
kept, so every margin reads the same lines. The issue's target: within 1 point across margins.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocr_robust.data.store import open_store  # noqa: E402
from ocr_robust.evaluation.lines import bench  # noqa: E402
from ocr_robust.evaluation.suite import TIGHT, load_suite, sample_store  # noqa: E402
from ocr_robust.pdf.ingest import IngestConfig, ingest  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", required=True)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--margins", default="0,0.1,0.2,0.3,0.4,0.5")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    suite = Path(a.suite)
    desc = load_suite(suite)
    clean = open_store(suite / "clean")
    # the suite's lines by document folder and line file (its store adds an "images/" level)
    names = ["images/" + "/".join(Path(clean.name(i)).parts[-2:]) for i in range(len(clean))]
    pdfs = sorted(str(p) for p in (suite / "pdf" / "plain").glob("*.pdf"))
    margins = [float(m) for m in a.margins.split(",")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="crop-margin-") as tmp:
        sets = {}
        for m in margins:
            full, kept = Path(tmp) / f"all-{m}", Path(tmp) / f"m{m}"
            ingest(pdfs, IngestConfig(out=str(full), margin=m, max_pages=desc.get("max_pages", 0),
                                      pages_seed=desc["seed"], seed=100 * desc["seed"]), progress=False)
            got = sample_store(full, kept, names, 0, 0)
            shutil.rmtree(full)
            sets[f"margin {m:.0%}"] = (kept, len(got))
        sets["ink-tight"] = (suite / TIGHT, len(names))
        for model in a.models:
            res = bench(model, [str(p) for p, _ in sets.values()])
            for (label, (_, n)), r in zip(sets.items(), res):
                rows.append({"model": model, "crop": label, "lines": r["lines"], "word_acc": r["word_acc"],
                             "cer": r["cer"]})
    print(f"{'model':<28}{'crop':<14}{'lines':>7}{'word acc':>10}{'CER':>8}")
    for r in rows:
        print(f"{r['model'][-27:]:<28}{r['crop']:<14}{r['lines']:>7}"
              f"{100 * r['word_acc']:>9.2f}%{100 * r['cer']:>7.2f}%")
    for model in a.models:
        accs = [r["word_acc"] for r in rows if r["model"] == model]
        print(f"{model}: spread over crops {100 * (max(accs) - min(accs)):.2f} points (target: within 1)")
    if a.json:
        Path(a.json).write_text(json.dumps({"suite": str(suite), "margins": margins, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
