#!/usr/bin/env python3
"""The real-document corpus: public born-digital PDFs from Debian's documentation packages,
split by document into training and test lists.

    python benchmarks/real_corpus.py --out benchmarks/corpus

lists every PDF with a text layer under the documentation folders (``/usr/share/doc``,
TeX Live's ``texmf-dist/doc``; ``make real-docs`` installs the packages), one entry per
document (symlinked copies and same-named files count once), and writes ``train.txt`` and
``test.txt``: a document is a test document when the CRC-32 of its file name falls in the
test share (``--test-share``, default 20%), so the split never depends on which other
documents a machine has. ``corpus.json`` records each document's pages, producer and split.

Kept out entirely (never trained, tuned or tested on here; they are the independent check):
the R manuals (Debian ``r-doc-pdf``) and the Chinese Debian documentation PDFs
(``debian-edu-doc-zh-cn``, ``debian-edu-doc-legacy-zh-cn``, ``debian-reference-zh-cn``,
``maint-guide-zh-cn``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import zlib
from pathlib import Path

import pymupdf

ROOTS = ["/usr/share/doc", "/usr/share/texlive/texmf-dist/doc", "/usr/share/texmf/doc"]
# the independent evaluation documents: never part of any list this script writes
KEPT_OUT = re.compile(r"r-doc-pdf|/R/doc/manual/|/R-(intro|admin|data|exts|FAQ|ints|lang)\b|zh[-_]cn|zh_CN", re.I)
MIN_TEXT_CHARS = 200  # over the first pages: less than this is an image-only or empty document


def is_kept_out(path: str) -> bool:
    return bool(KEPT_OUT.search(path))


def split_of(name: str, test_share: float) -> str:
    return "test" if zlib.crc32(name.encode()) % 1000 < 1000 * test_share else "train"


def list_documents(roots: list[str]) -> list[Path]:
    seen_real, seen_name, out = set(), set(), []
    for root in roots:
        if not Path(root).is_dir():
            continue
        for p in sorted(Path(root).rglob("*.pdf")):
            if is_kept_out(str(p)) or not p.is_file():
                continue
            real = p.resolve()
            if real in seen_real or p.name in seen_name:
                continue
            seen_real.add(real)
            seen_name.add(p.name)
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="benchmarks/corpus")
    ap.add_argument("--roots", nargs="+", default=ROOTS)
    ap.add_argument("--test-share", type=float, default=0.2)
    a = ap.parse_args(argv)
    docs = []
    for p in list_documents(a.roots):
        try:
            with pymupdf.open(p) as d:
                if d.needs_pass or d.page_count == 0:
                    continue
                text = sum(len(d[k].get_text()) for k in range(min(3, d.page_count)))
                producer = (d.metadata or {}).get("producer") or ""
                pages = d.page_count
        except Exception:  # damaged file: not part of the corpus
            continue
        if text < MIN_TEXT_CHARS:
            continue
        docs.append({"path": str(p), "pages": pages, "producer": producer[:60],
                     "split": split_of(p.name, a.test_share)})
    if not docs:
        print("no documentation PDFs found: run `make real-docs` (Debian's documentation packages) first",
              file=sys.stderr)
        return 1
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        (out / f"{split}.txt").write_text("".join(d["path"] + "\n" for d in docs if d["split"] == split))
    summary = {split: {"documents": sum(d["split"] == split for d in docs),
                       "pages": sum(d["pages"] for d in docs if d["split"] == split)} for split in ("train", "test")}
    (out / "corpus.json").write_text(json.dumps({"test_share": a.test_share, "summary": summary, "documents": docs},
                                                indent=1, ensure_ascii=False))
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
