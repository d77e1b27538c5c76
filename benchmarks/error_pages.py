"""Where a model's errors on a synthetic test set are: words lost per page (with the page's
fonts and marks from the synth ``manifest.jsonl``) and by kind of error.

    .venv/bin/python benchmarks/error_pages.py --model RUN --lines demo-output/lines/test-watermark \
        --pdf demo-output/pdf/test-watermark
"""

from __future__ import annotations

import argparse
import collections
import json
import re
from pathlib import Path

from ocr_robust.evaluation.lines import read_store
from ocr_robust.evaluation.metrics import aligned_matches
from ocr_robust.inference import Recognizer


def kind(truth: str, pred: str) -> str:
    if re.sub("_+", "_", truth) == re.sub("_+", "_", pred):
        return "underscore run length"
    if truth.replace(" ", "") == pred.replace(" ", ""):
        return "spacing only"
    if truth.lower() == pred.lower():
        return "case only"
    return "characters"


def tally_losses(reading, key) -> tuple[collections.Counter, collections.Counter, collections.Counter]:
    """Words and words lost (aligned word matching) per ``key(line name)`` of a store reading,
    and the words lost by kind of error."""
    words, lost, by_kind = collections.Counter(), collections.Counter(), collections.Counter()
    for name, truth, pred in zip(reading.names, reading.truths, reading.preds):
        n = len(truth.split())
        miss = n - aligned_matches(pred.text.split(), truth.split())
        words[key(name)] += n
        lost[key(name)] += miss
        if miss:
            by_kind[kind(truth, pred.text)] += miss
    return words, lost, by_kind


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--lines", required=True, help="a labels.tsv folder made by ingest from --pdf")
    ap.add_argument("--pdf", required=True, help="the synth output folder (manifest.jsonl)")
    a = ap.parse_args()
    mpath = Path(a.pdf) / "manifest.jsonl"
    try:
        manifest = {(r["file"][:-4], r["page"] + 1): r for r in map(json.loads, open(mpath, encoding="utf-8"))}
    except (OSError, ValueError, KeyError) as e:
        ap.error(f"{mpath}: not a synth manifest ({e})")
    reading = read_store(Recognizer(a.model), a.lines)
    for problem in reading.problems:
        print("skipped:", problem)

    def page_of(name: str) -> tuple[str, int]:
        parts = Path(name).parts  # images/NNNNN_doc_XXXXX/pPPPP_lLLLL.png, as ingest names them
        return parts[-2].split("_", 1)[1], int(parts[-1][1:5])

    words, lost, by_kind = tally_losses(reading, page_of)
    total = sum(words.values())
    print(f"{'page':<18} {'kind':<8} {'words':>5} {'lost':>4} {'%':>6}  fonts / marks")
    for page in sorted(words):
        r = manifest.get(page)
        if r is None:
            ap.error(f"{a.lines}: page {page[0]} p{page[1]} is not in {mpath}; --lines must be ingested from --pdf")
        print(f"{page[0]} p{page[1]:<4} {r['kind']:<8} {words[page]:>5} {lost[page]:>4} "
              f"{100 * lost[page] / words[page]:>5.1f}%  {','.join(r['fonts'])} / {','.join(r['watermarks']) or '-'}")
    print(f"\nwords lost by kind of error (of {total} words):")
    for k, v in by_kind.most_common():
        print(f"  {k:<22} {v:>4}  {100 * v / total:.2f} points")


if __name__ == "__main__":
    main()
