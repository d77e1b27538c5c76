"""The ``ocr-robust`` command."""

from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

from . import __version__
from .errors import InputError


def _expand_pdfs(items: list[str]) -> list[str]:
    """PDF paths from files, folders (their *.pdf, recursively) and glob patterns."""
    out: list[str] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(str(f) for f in p.rglob("*") if f.suffix.lower() == ".pdf" and f.is_file())
        elif any(ch in item for ch in "*?[") and not p.exists():
            out += sorted(glob.glob(item, recursive=True))
        else:
            out.append(item)
    return out


def cmd_synth(a: argparse.Namespace) -> int:
    from .pdf.fonts import font_lists
    from .pdf.synth import SynthConfig, synthesize
    from .pdf.watermarks import style_lists

    if a.list:
        print("font lists:")
        for k, v in font_lists().items():
            print(f"  {k}: {', '.join(v)}")
        print("watermark style lists:")
        for k, v in style_lists().items():
            print(f"  {k}: {', '.join(v) or '(no watermarks)'}")
        return 0
    if not a.out:
        raise SystemExit("ocr-robust synth: --out is required")
    s = synthesize(SynthConfig(out=a.out, pages=a.pages, seed=a.seed, fonts=a.fonts, watermarks=a.watermarks,
                               clean_fraction=a.clean_fraction, pages_per_doc=a.pages_per_doc, lang=a.lang),
                   progress=not a.quiet)
    print(f"wrote {s['pages']} pages ({s['lines']} text lines, {s['clean_pages']} without watermarks) "
          f"in {s['documents']} PDFs to {s['out']}; per-page record in manifest.jsonl")
    return 0


def cmd_ingest(a: argparse.Namespace) -> int:
    from .pdf.ingest import IngestConfig, format_summary, ingest

    pdfs = _expand_pdfs(a.pdfs)
    if not pdfs:
        raise InputError(" ".join(a.pdfs), "no PDF file found")
    cfg = IngestConfig(out=a.out, dpi=a.dpi, lmdb=a.lmdb, degrade=a.degrade or "", charset=a.charset, seed=a.seed,
                       workers=a.workers, margin=a.margin, max_page_pixels=a.max_page_pixels)
    s = ingest(pdfs, cfg, progress=not a.quiet)
    print(format_summary(s))
    if a.json:
        Path(a.json).write_text(json.dumps(s, indent=2, ensure_ascii=False), encoding="utf-8")
    return 0 if s["lines"] > 0 else 1


def cmd_convert(a: argparse.Namespace) -> int:
    from .data.store import convert

    to_lmdb = {"lmdb": True, "folder": False, "auto": None}[a.to]
    s = convert(a.src, a.dst, to_lmdb)
    for p in s["problems"][:20]:
        print(f"skipped: {p}", file=sys.stderr)
    print(f"converted {s['samples']} samples from {s['src']} to {s['dst']} ({s['format']})"
          + (f"; {s['skipped']} bad lines skipped" if s["skipped"] else ""))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="ocr-robust", description="Robust OCR line recognizers for real documents.")
    p.add_argument("--version", action="version", version=f"ocr-robust {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("synth", help="write a synthetic, watermarked PDF corpus")
    s.add_argument("--out", help="output folder")
    s.add_argument("--pages", type=int, default=20)
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--fonts", default="train", help="font faces and/or lists, comma-separated (see --list)")
    s.add_argument("--watermarks", default="train", help="watermark styles and/or lists, comma-separated (see --list)")
    s.add_argument("--clean-fraction", type=float, default=0.25, help="share of pages left without watermarks")
    s.add_argument("--pages-per-doc", type=int, default=5)
    s.add_argument("--lang", default="latin")
    s.add_argument("--list", action="store_true", help="list fonts, watermark styles and their named lists")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_synth)

    s = sub.add_parser("ingest", help="crop labelled text lines out of born-digital PDFs")
    s.add_argument("pdfs", nargs="+", help="PDF files, folders or glob patterns")
    s.add_argument("--out", required=True, help="output line store (folder, or LMDB with --lmdb)")
    s.add_argument("--dpi", type=int, default=150)
    s.add_argument("--lmdb", action="store_true", help="write an LMDB store instead of labels.tsv + images")
    s.add_argument("--degrade", default="", help="page degradations, e.g. jpeg,blur or jpeg:30-50,downscale:0.5-0.7")
    s.add_argument("--charset", default="latin", help="charset name or file; lines outside it are skipped")
    s.add_argument("--seed", type=int, default=0, help="seed for the degradations")
    s.add_argument("--workers", type=int, default=0, help="processes (default: one per CPU core)")
    s.add_argument("--margin", type=float, default=0.2, help="crop margin, fraction of the line height")
    s.add_argument("--max-page-pixels", type=int, default=60_000_000, help="refuse pages whose raster is larger")
    s.add_argument("--json", help="also write the summary to this file (it is always in OUT/ingest.json)")
    s.add_argument("--quiet", action="store_true")
    s.set_defaults(func=cmd_ingest)

    s = sub.add_parser("convert", help="convert a line store between folder and LMDB formats")
    s.add_argument("src")
    s.add_argument("dst")
    s.add_argument("--to", choices=["auto", "lmdb", "folder"], default="auto",
                   help="target format (auto: the other one)")
    s.set_defaults(func=cmd_convert)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InputError as e:
        print(f"ocr-robust {args.command}: {e}", file=sys.stderr)
        return 2
    except ValueError as e:
        print(f"ocr-robust {args.command}: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"ocr-robust {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
