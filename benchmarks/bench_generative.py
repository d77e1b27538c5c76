"""Generative augmentation compared (issue 21): region dropout (seed 001: no dropout, plain
Cutout with a flat or a noise fill, the patch GAN's fill, the patch GAN's fill with soft
labels distilled from fold teachers) and SAN's backgrounds (seed 002: as the no-text images
instead of the procedural ones, and also composited behind the lines), on the same data,
model, start and wall-clock budget.

Each row fine-tunes ``--init`` (default: the shipped natural model ``pretrained/latin``) for
``--minutes`` of training on ``--data`` (default ``data/ft/stores.txt``: pages of the real
corpus's training split) with the classic augmentation off (``--augment 0,FILL``), so that
the fill is the one difference; every line gets a hole with probability ``--erase-p``. The
KD row first trains its 2 fold teachers (``--distill-folds 2``, each ``--minutes`` too, with
the same fill): their time is reported as the row's extra cost, not inside its budget.

Measured on the real-document suite (``--suite``, test documents only), word accuracy with
95% bootstrap intervals on: clean, watermark, watermark-lowres and lowres-jpeg, and on the
**touched** lines of the watermark condition: the lines where the watermark changes at
least 1% of the pixels (more than 8 grey levels against the same line of the clean
condition; 418 of its 2,000 lines); the rest of its lines are clean lines. Also the share of the
no-text crops read as text (hallucination) and the training lines per second.

    .venv/bin/python benchmarks/bench_generative.py --gen benchmarks/work/patchgan --san benchmarks/work/san

Writes ``benchmarks/results/generative.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench_defences import child_result, compare  # noqa: E402  (the benchmarks folder is this script's path)

ROWS = {  # row: (--augment, distil from 2 fold teachers, --notext-source)
    "no dropout": ("0", False, "procedural"),
    "cutout (flat)": ("0,cutout", False, "procedural"),
    "cutout (noise)": ("0,cutout:noise", False, "procedural"),
    "patchgan": ("0,patchgan:{gen}", False, "procedural"),
    "patchgan + KD": ("0,patchgan:{gen}", True, "procedural"),
    # seed 002: SAN's backgrounds instead of the procedural ones (no-text images), and behind the lines
    "san no-text": ("0", False, "san:{san}"),
    "san backgrounds": ("0,san:{san}", False, "san:{san}"),
}
CONDITIONS = ("clean", "watermark", "watermark-lowres", "lowres-jpeg")
TOUCHED = ("watermark",)  # watermark-lowres: the page damage changes every pixel, so no line is untouched
TOUCHED_SHARE = 0.01


def _config(args, row: str):
    from ocr_robust.training import TrainConfig

    augment, kd, notext = ROWS[row]
    name = row.replace(" ", "_").replace("(", "").replace(")", "").replace("+", "plus")
    return TrainConfig(data=args.data, out=str(Path(args.work) / f"{name}-s{args.seed}"), model="crnn-small",
                       epochs=args.epochs, batch_size=32, lr=args.lr, schedule="constant", seed=args.seed,
                       init_from=args.init, time_limit_min=args.minutes, notext_rate=0.05, sampler="bucket",
                       report_images=0, augment=augment.format(gen=args.gen, san=args.san), erase_p=args.erase_p,
                       distill_folds=2 if kd else 0, notext_source=notext.format(san=args.san))


def train_one(args) -> None:
    """Child process: one row's teachers (KD), then its timed training."""
    import torch

    from ocr_robust.training import Trainer
    from ocr_robust.training.checkpoint import clear_run
    from ocr_robust.training.distill import prepare_teachers, teacher_dirs

    torch.set_num_threads(args.threads)
    cfg = _config(args, args.one)
    clear_run(cfg.out)
    t0 = time.perf_counter()
    cfg = prepare_teachers(cfg, progress=False)  # finished teachers are reused
    teacher_s = 0.0
    for run in teacher_dirs(cfg.out, cfg.distill_folds) if cfg.distill_folds else []:
        teacher_s += sum(json.loads(x)["epoch_seconds"] for x in (run / "metrics.jsonl").read_text().splitlines()
                         if x.strip())
    prep = time.perf_counter() - t0
    r = Trainer(cfg, progress=False).fit()
    h = r["history"]
    secs = sum(x["epoch_seconds"] for x in h)
    out = {"row": args.one, "seed": args.seed, "augment": cfg.augment, "distill_folds": cfg.distill_folds,
           "notext_source": cfg.notext_source,
           "run": cfg.out, "steps": r["steps"], "train_seconds": secs,
           "train_lines_per_s": sum(x["train_lines_per_s"] * x["epoch_seconds"] for x in h) / max(secs, 1e-9),
           "teacher_train_seconds": teacher_s, "teacher_wall_seconds": prep}
    print("RESULT " + json.dumps(out), flush=True)


def touched_store(args, cond: str) -> Path:
    """The lines of ``cond`` whose watermark changes at least TOUCHED_SHARE of their pixels."""
    import numpy as np

    from ocr_robust.data.store import open_store
    from ocr_robust.evaluation.suite import sample_store
    from ocr_robust.images import decode_grey

    dst = Path(args.work) / f"{cond}-touched"
    if (dst / "labels.tsv").exists():
        return dst
    marked, clean = open_store(Path(args.suite) / cond), open_store(Path(args.suite) / "clean")
    plain = {clean.name(i): i for i in range(len(clean))}
    names = []
    for i in range(len(marked)):
        j = plain.get(marked.name(i))
        if j is None:
            continue
        a = decode_grey(marked.image_bytes(i), marked.name(i)).astype(np.int16)
        b = decode_grey(clean.image_bytes(j), clean.name(j)).astype(np.int16)
        if a.shape == b.shape and float((np.abs(a - b) > 8).mean()) >= TOUCHED_SHARE:
            names.append(marked.name(i))
    sample_store(Path(args.suite) / cond, dst, names, len(names), 0)
    return dst


def measure(row: dict, args) -> dict:
    import torch

    from ocr_robust.data.dataset import LineDataset
    from ocr_robust.evaluation.lines import evaluate
    from ocr_robust.runs import load_torch_model

    torch.set_num_threads(args.threads)
    model, charset, info = load_torch_model(row["run"])
    stores = {c: Path(args.suite) / c for c in CONDITIONS}
    stores.update({f"{c} (touched)": touched_store(args, c) for c in TOUCHED})
    for name, path in stores.items():
        s = evaluate(model, LineDataset.open(path, charset, crop=info["crop"]), charset, torch.device("cpu"))
        row[f"{name}_word_acc"], row[f"{name}_ci"], row[f"{name}_lines"] = s.word_acc, s.word_acc_ci(), s.lines
    nt = LineDataset.open(Path(args.suite) / "no-text", charset, crop=info["crop"])
    s = evaluate(model, nt, charset, torch.device("cpu"))
    row["no_text_hallucination"], row["no_text_lines"] = s.empty_read_as_text / max(1, s.empty_lines), s.lines
    return row


def run_child(name: str, args) -> dict:
    keep = ("init", "data", "suite", "gen", "san", "minutes", "epochs", "lr", "erase_p", "threads", "work", "seed")
    cmd = [sys.executable, __file__, "--one", name] + [x for k in keep for x in (f"--{k.replace('_', '-')}",
                                                                                str(getattr(args, k)))]
    return child_result(cmd, name)


def format_table(rows: list[dict]) -> str:
    cols = list(CONDITIONS) + [f"{c} (touched)" for c in TOUCHED]
    base = next((r for r in rows if r["row"] == "no dropout"), None)
    out = ["| fill | seed | " + " | ".join(cols) + " | no-text read as text | lines/s | vs no dropout | teachers (s) |",
           "|" + "---|" * (len(cols) + 6)]
    for r in rows:
        cells = [f"{100 * r[f'{c}_word_acc']:.2f} [{100 * r[f'{c}_ci'][0]:.2f}, {100 * r[f'{c}_ci'][1]:.2f}]"
                 for c in cols]
        speed = f"{r['train_lines_per_s'] / base['train_lines_per_s']:.2f}x" if base else "n/a"
        out.append(f"| {r['row']} | {r['seed']} | " + " | ".join(cells) +
                   f" | {100 * r['no_text_hallucination']:.2f}% | {r['train_lines_per_s']:.0f} | {speed} | "
                   f"{r['teacher_train_seconds']:.0f} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", default="pretrained/latin")
    ap.add_argument("--data", default="data/ft/stores.txt")
    ap.add_argument("--suite", default="benchmarks/work/real-suite")
    ap.add_argument("--gen", default="benchmarks/work/patchgan", help="a `patchgan train` folder")
    ap.add_argument("--san", default="benchmarks/work/san", help="a `san train` folder (the san rows)")
    ap.add_argument("--minutes", type=float, default=4.0, help="training budget per row (and per teacher)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--erase-p", type=float, default=0.5)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", default=",".join(ROWS), help="comma-separated, of: " + ", ".join(ROWS))
    ap.add_argument("--work", default="benchmarks/work/generative")
    ap.add_argument("--json", default="benchmarks/results/generative.json")
    ap.add_argument("--append", action="store_true", help="add the rows to those already in --json")
    ap.add_argument("--measure-init", action="store_true", help="also measure --init itself (no training)")
    ap.add_argument("--one", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        train_one(args)
        return 0
    compare(args, measure, lambda name: run_child(name, args), format_table, train_lines_per_s=0.0,
            teacher_train_seconds=0.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
