#!/usr/bin/env python3
"""Word accuracy with typographic variants folded: curly quotes to straight ones, en and em
dashes to hyphens, for every engine alike. The anchors emit straight quotes where TeX's text
layer has curly ones (PP-OCRv6 read ’ as ' 275 times on the clean lines), which strict
scoring counts as wrong words; this shows how much of each engine's loss that is.

    python benchmarks/fold_scores.py --suite SUITE --models pretrained/latin --conditions clean,watermark

Anchor readings come from the suite's cache (``benchmark run --compare`` fills it).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ocr_robust.evaluation.benchmark import CACHE, load_lines  # noqa: E402
from ocr_robust.evaluation.engines import normalise_reading  # noqa: E402
from ocr_robust.evaluation.metrics import Scores  # noqa: E402
from ocr_robust.inference import Recognizer  # noqa: E402

FOLD = str.maketrans({"’": "'", "‘": "'", "“": '"', "”": '"', "–": "-", "—": "-"})


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--suite", required=True)
    ap.add_argument("--models", nargs="+", required=True)
    ap.add_argument("--conditions", default="clean,watermark,lowres-jpeg,watermark-lowres")
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    suite = Path(a.suite)
    rows = []
    for cond in a.conditions.split(","):
        images, truths = load_lines(suite / cond, None)
        readers = {f"ours:{Path(m).name}": [d.text for d in Recognizer(m).recognize(images)] for m in a.models}
        for f in sorted((suite / CACHE).glob(f"*-{cond}-*.json")):
            got = json.loads(f.read_text(encoding="utf-8"))
            rest = f.name.removeprefix(f"{got['engine']}-{cond}-")  # KEY.json: not another condition's file
            if rest != f.name and len(rest) == len("0123456789abcdef.json") and len(got["preds"]) == len(truths):
                readers[got["engine"]] = got["preds"]
        for name, preds in readers.items():
            preds = [normalise_reading(p) for p in preds]
            strict = Scores().update(preds, truths)
            folded = Scores().update([p.translate(FOLD) for p in preds], [t.translate(FOLD) for t in truths])
            rows.append({"engine": name, "condition": cond, "lines": strict.lines, "word_acc": strict.word_acc,
                         "word_acc_folded": folded.word_acc})
            print(f"{cond:<18}{name:<22}{100 * strict.word_acc:>8.2f}%  folded {100 * folded.word_acc:>6.2f}%")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
