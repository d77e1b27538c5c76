"""The word-accuracy difference between two of our models on the same suite lines, with a
paired 95% bootstrap interval (lines drawn with replacement, the same draw for both models),
which is much tighter than comparing the two models' own intervals.

    python benchmarks/paired_diff.py --suite benchmarks/work/real-suite --base pretrained/latin \
        --model runs/nt-b --conditions clean,watermark,scan [--json OUT]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from ocr_robust.evaluation.lines import read_store
from ocr_robust.evaluation.metrics import Scores
from ocr_robust.inference import Recognizer


def paired_ci(a: Scores, b: Scores, resamples: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """B's word accuracy minus a's, and its 95% percentile interval, both scored on the same lines."""
    ma, mb = np.array(a.per_line, np.float64), np.array(b.per_line, np.float64)
    if ma.shape != mb.shape or not np.array_equal(ma[:, 1], mb[:, 1]):
        raise ValueError("the two scores are not on the same lines")
    idx = np.random.default_rng(seed).integers(0, len(ma), size=(resamples, len(ma)))
    words = np.maximum(ma[idx, 1].sum(1), 1)
    diff = (mb[idx, 0].sum(1) - ma[idx, 0].sum(1)) / words
    lo, hi = np.quantile(diff, [0.025, 0.975])
    return b.word_acc - a.word_acc, float(lo), float(hi)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--suite", required=True)
    ap.add_argument("--base", required=True, help="the model compared against")
    ap.add_argument("--model", required=True)
    ap.add_argument("--conditions", default="clean,watermark,small-print,lowres-jpeg,scan,watermark-lowres")
    ap.add_argument("--json")
    a = ap.parse_args()
    recs = [Recognizer(a.base), Recognizer(a.model)]
    rows = []
    for cond in a.conditions.split(","):
        scores = [Scores().update([p.text for p in r.preds], r.truths)
                  for r in (read_store(rec, Path(a.suite) / cond) for rec in recs)]
        d, lo, hi = paired_ci(*scores)
        rows.append({"condition": cond, "base": scores[0].word_acc, "model": scores[1].word_acc, "diff": d,
                     "ci": [lo, hi]})
        print(f"{cond:18s} {100 * scores[0].word_acc:6.2f}% -> {100 * scores[1].word_acc:6.2f}%  "
              f"{100 * d:+.2f} [{100 * lo:+.2f}, {100 * hi:+.2f}]", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"suite": a.suite, "base": a.base, "model": a.model, "rows": rows},
                                           indent=1))


if __name__ == "__main__":
    main()
