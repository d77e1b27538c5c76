"""Text-free crops in training against hallucination (issue 21's no-text target): which
no-text images teach the default model to read nothing where a page holds no text.

Each row fine-tunes ``--init`` (default ``pretrained/latin``, trained without no-text
images) for ``--minutes`` of natural training on ``--data`` (default ``data/ft/stores.txt``:
pages of the real corpus's training split), batch 32, AdamW at a constant 1e-4, the classic
augmentation on, as a user would fine-tune:

- ``procedural 5%``: 5% procedural no-text images per batch (noise, flat grey, shapes,
  watermark fragments; ``ocr_robust.data.notext``), the rate realtime training uses;
- ``procedural 15%``: the same at 15%;
- ``real backgrounds``: the same 5% procedural images, and the training data also lists
  ``--backgrounds``, a store of text-free crops of the training documents (``ingest
  --backgrounds``: margins, gaps, vector figures, watermark strokes and stamps in the
  training styles, away from every text line and raster image) read like any line (crop
  jitter, normalisation, augmentation), with empty labels.

Measured with the product's reader (``Recognizer``, which also reads a crop without
contrast as empty) on the real-document suite (test documents, held-out watermark styles):
the share of its no-text crops read as text, and word accuracy with 95% bootstrap
intervals on clean, watermark and lowres-jpeg.

    .venv/bin/python -m ocr_robust ingest @benchmarks/corpus/train.txt --out data/ft/backgrounds \\
        --max-pages 1 --seed 24 --watermarks train --watermark-fraction 0.85 --backgrounds 12 --quiet
    .venv/bin/python benchmarks/bench_notext.py --measure-init

Writes ``benchmarks/results/notext.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_defences import child_result, compare  # noqa: E402  (the benchmarks folder is this script's path)

ROWS = {  # row: (no-text rate, with the store of real text-free crops)
    "procedural 5%": (0.05, False),
    "procedural 15%": (0.15, False),
    "real backgrounds": (0.05, True),
}
CONDITIONS = ("clean", "watermark", "lowres-jpeg")


def data_list(args, with_backgrounds: bool) -> str:
    """``--data``, or a list of its stores and ``--backgrounds`` beside it."""
    if not with_backgrounds:
        return args.data
    data = Path(args.data)
    if not (Path(args.backgrounds) / "ingest.json").is_file():
        raise SystemExit(f"{args.backgrounds}: no store of text-free crops (ingest --backgrounds N; the command "
                         "is in this script's docstring)")
    rows = [ln.strip() for ln in data.read_text(encoding="utf-8").splitlines() if ln.strip()]
    out = Path(args.work) / "stores-with-backgrounds.txt"
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = [(data.parent / r).resolve() for r in rows] + [Path(args.backgrounds).resolve()]
    out.write_text("".join(os.path.relpath(p, out.parent.resolve()) + "\n" for p in paths), encoding="utf-8")
    return str(out)


def train_one(args) -> None:
    """Child process: one row's timed fine-tuning."""
    import torch

    from ocr_robust.training import TrainConfig, Trainer
    from ocr_robust.training.checkpoint import clear_run

    torch.set_num_threads(args.threads)
    rate, bg = ROWS[args.one]
    name = args.one.replace(" ", "_").replace("%", "pc")
    cfg = TrainConfig(data=data_list(args, bg), out=str(Path(args.work) / f"{name}-s{args.seed}"), model="crnn-small",
                      epochs=2, batch_size=32, lr=1e-4, schedule="constant", seed=args.seed, init_from=args.init,
                      time_limit_min=args.minutes, notext_rate=rate, sampler="bucket", report_images=0)
    clear_run(cfg.out)
    r = Trainer(cfg, progress=False).fit()
    h = r["history"]
    secs = sum(x["epoch_seconds"] for x in h)
    print("RESULT " + json.dumps({"row": args.one, "seed": args.seed, "notext_rate": rate, "backgrounds": bg,
                                  "data": cfg.data, "run": cfg.out, "steps": r["steps"], "train_seconds": secs}),
          flush=True)


def measure(row: dict, args) -> dict:
    from ocr_robust.evaluation.lines import read_store
    from ocr_robust.evaluation.metrics import Scores
    from ocr_robust.inference import Recognizer

    rec = Recognizer(row["run"], device="cpu", threads=args.threads)
    for c in CONDITIONS + ("no-text",):
        got = read_store(rec, Path(args.suite) / c)
        s = Scores().update([p.text for p in got.preds], got.truths)
        if c == "no-text":
            row["no_text_hallucination"], row["no_text_lines"] = s.empty_read_as_text / max(1, s.empty_lines), s.lines
            row["no_text_readings"] = sorted({p.text for p in got.preds if p.text.strip()})[:40]
        else:
            row[f"{c}_word_acc"], row[f"{c}_ci"], row[f"{c}_lines"] = s.word_acc, s.word_acc_ci(), s.lines
    return row


def run_child(name: str, args) -> dict:
    keep = ("init", "data", "backgrounds", "minutes", "threads", "work", "seed")
    cmd = [sys.executable, __file__, "--one", name] + [x for k in keep for x in (f"--{k}", str(getattr(args, k)))]
    return child_result(cmd, name)


def format_table(rows: list[dict]) -> str:
    out = ["| row | seed | steps | no-text read as text | " + " | ".join(CONDITIONS) + " |",
           "|" + "---|" * (4 + len(CONDITIONS))]
    for r in rows:
        cells = [f"{100 * r[f'{c}_word_acc']:.2f} [{100 * r[f'{c}_ci'][0]:.1f}, {100 * r[f'{c}_ci'][1]:.1f}]"
                 for c in CONDITIONS]
        out.append(f"| {r['row']} | {r['seed']} | {r.get('steps', 0)} | {100 * r['no_text_hallucination']:.2f}% | "
                   + " | ".join(cells) + " |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", default="pretrained/latin")
    ap.add_argument("--data", default="data/ft/stores.txt")
    ap.add_argument("--backgrounds", default="data/ft/backgrounds",
                    help="a store of text-free crops (ingest --backgrounds)")
    ap.add_argument("--suite", default="benchmarks/work/real-suite")
    ap.add_argument("--minutes", type=float, default=4.0, help="training budget per row")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated, of: " + ", ".join(ROWS))
    ap.add_argument("--work", default="benchmarks/work/notext")
    ap.add_argument("--json", default="benchmarks/results/notext.json")
    ap.add_argument("--append", action="store_true", help="add the rows to those already in --json")
    ap.add_argument("--measure-init", action="store_true", help="also measure --init itself (no training)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        train_one(args)
        return 0
    compare(args, measure, lambda name: run_child(name, args), format_table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
