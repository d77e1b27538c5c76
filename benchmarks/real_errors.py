#!/usr/bin/env python3
"""Where a model's errors on a real-document suite are: words lost per document (with the
document's producer and its most used fonts), per font family, by kind of error, and the
most frequent character confusions.

    .venv/bin/python benchmarks/real_errors.py --model pretrained/latin --suite SUITE \
        [--conditions clean,watermark] [--json out.json] [--top 15]

SUITE is a real-document suite (``benchmark build --from-pdf``); line names carry their
document (``images/NNNNN_DOC/pPPPP_lLLLL.png``), and the document's PDF is in SUITE/pdf/plain.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import sys
from pathlib import Path

import pymupdf

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from error_pages import tally_losses  # noqa: E402

from ocr_robust.evaluation.lines import read_store  # noqa: E402
from ocr_robust.evaluation.metrics import confusion_counts  # noqa: E402
from ocr_robust.inference import Recognizer  # noqa: E402
from ocr_robust.pdf.ingest import _safe  # noqa: E402


def doc_fonts(pdf: Path, pages: set[int]) -> list[str]:
    """The document's fonts on ``pages`` (1-based), most text first: base font names without
    the subset prefix and weight suffixes (``ABCDEF+CMR10`` -> ``CMR10``)."""
    count: collections.Counter = collections.Counter()
    with pymupdf.open(pdf) as doc:
        for p in pages:
            if 1 <= p <= doc.page_count:
                for b in doc[p - 1].get_text("dict")["blocks"]:
                    for ln in b.get("lines", []):
                        for s in ln["spans"]:
                            count[s["font"].split("+")[-1]] += len(s["text"])
    return [f for f, _ in count.most_common()]


def family(font: str) -> str:
    """A font's family for grouping: ``CMR10`` -> ``CM``, ``LMRoman10-Regular`` -> ``LMRoman``,
    ``NimbusRomNo9L-Regu`` -> ``NimbusRomNo9L``, ``Times-Roman`` -> ``Times``."""
    name = re.split(r"[-,]", font)[0]
    tex = re.match(r"^(CM|EC|TC|LM)[A-Z]*?\d", name)
    if tex:
        return "CM/EC (TeX)" if tex.group(1) in ("CM", "EC", "TC") else "LM (TeX)"
    return re.sub(r"\d+$", "", name) or font


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="default: the shipped pretrained/latin")
    ap.add_argument("--suite", required=True)
    ap.add_argument("--conditions", default="clean,watermark,lowres-jpeg,watermark-lowres")
    ap.add_argument("--top", type=int, default=15)
    ap.add_argument("--json")
    a = ap.parse_args(argv)
    from ocr_robust.inference import default_model

    rec = Recognizer(a.model or default_model())
    suite = Path(a.suite)
    plain = {_safe(p.stem): p for p in (suite / "pdf" / "plain").glob("*.pdf")}  # ingest's stems: NNNNN_<safe stem>
    report = {}
    for cond in a.conditions.split(","):
        r = read_store(rec, suite / cond)
        words, lost, kinds = tally_losses(r, lambda name: Path(name).parts[-2])  # per document
        pages: dict[str, set[int]] = collections.defaultdict(set)
        for name in r.names:
            parts = Path(name).parts
            pages[parts[-2]].add(int(parts[-1][1:5]))
        fams_words, fams_lost = collections.Counter(), collections.Counter()
        docs = []
        for doc in sorted(words, key=lambda d: -lost[d]):
            pdf = plain.get(doc.split("_", 1)[1]) if "_" in doc else None
            fonts = doc_fonts(pdf, pages[doc]) if pdf else []
            fam = family(fonts[0]) if fonts else "?"
            fams_words[fam] += words[doc]
            fams_lost[fam] += lost[doc]
            producer = (pymupdf.open(pdf).metadata or {}).get("producer", "") if pdf else ""
            docs.append({"document": doc, "words": words[doc], "lost": lost[doc], "producer": producer[:40],
                         "fonts": fonts[:4], "family": fam})
        total = sum(words.values())
        conf = confusion_counts([p.text for p in r.preds], r.truths)
        report[cond] = {"words": total, "lost": sum(lost.values()), "documents": docs,
                        "families": {f: {"words": fams_words[f], "lost": fams_lost[f]} for f in fams_words},
                        "kinds": dict(kinds.most_common()), "confusions": conf.most_common(40)}
        print(f"\n== {cond}: {sum(lost.values())} of {total} words lost "
              f"({100 * (1 - sum(lost.values()) / max(1, total)):.2f}% aligned word accuracy)")
        print(f"{'document':<44}{'words':>6}{'lost':>5}{'%':>7}  producer / fonts")
        for d in docs[:a.top]:
            print(f"{d['document'][:43]:<44}{d['words']:>6}{d['lost']:>5}{100 * d['lost'] / max(1, d['words']):>6.1f}%"
                  f"  {d['producer'][:20]} / {', '.join(d['fonts'][:3])}")
        print("by the document's main font family:")
        for f in sorted(fams_words, key=lambda f: -fams_lost[f])[:a.top]:
            print(f"  {f:<28}{fams_words[f]:>6} words {fams_lost[f]:>5} lost "
                  f"({100 * fams_lost[f] / max(1, fams_words[f]):.1f}%)")
        print("by kind of error: " + ", ".join(f"{k} {v}" for k, v in kinds.most_common()))
        print("top confusions (truth -> read): "
              + ", ".join(f"{t!r}->{p!r} x{n}" for (t, p), n in conf.most_common(a.top)))
    if a.json:
        Path(a.json).write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
