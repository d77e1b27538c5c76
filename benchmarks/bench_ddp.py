"""Data-parallel training on the CPU (issue 22's equivalence target): 2 gloo processes under
``torchrun`` with a batch of B/2 each against one process with a batch of B, on the same
lines, from the same start, for the same epochs (so the same number of optimizer steps and
the same global batch), with the same learning rate (``--lr-scaling none``).

Each row fine-tunes ``--init`` (default ``pretrained/latin``) in ``--mode`` (default
``realtime``, the mode whose inner steps the ranks take in different numbers) on a seeded
sample of ``--lines`` lines of ``--data`` (real training documents; default the store
``make demo`` ingests, ``demo-output/lines/train-real.lmdb``), with a constant learning
rate. Measured: the run's own validation word accuracy (its held-back 5%), then its best
weights on the real-document suite's clean, watermark and lowres-jpeg conditions (test
documents only) with 95% bootstrap intervals, its training seconds (the same lines in every
row: compare throughput by them) and rank 0's lines per second (its own share).
"Within noise" is judged against the spread between seeds of the same row.

    .venv/bin/python benchmarks/bench_ddp.py --seeds 0,1

Writes ``benchmarks/results/ddp.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONDITIONS = ("clean", "watermark", "lowres-jpeg")


def sample(args) -> Path:
    from ocr_robust.evaluation.suite import sample_store

    dst = Path(args.work) / f"lines-{args.lines}"
    if not (dst / "labels.tsv").exists():
        sample_store(Path(args.data), dst, None, args.lines, 0)
    return dst


def suite(args) -> Path:
    """The suite's conditions, copied into the work folder once (``make demo`` deletes its own
    output when it runs again)."""
    import shutil

    dst = Path(args.work) / "suite"
    for c in CONDITIONS:
        if not (dst / c / "labels.tsv").exists():
            shutil.copytree(Path(args.suite) / c, dst / c, dirs_exist_ok=True)
    return dst


def train(args, data: Path, procs: int, seed: int) -> Path:
    out = Path(args.work) / f"p{procs}-s{seed}"
    flags = ["train", "--data", str(data), "--out", str(out), "--overwrite", "--init", args.init, "--mode", args.mode,
             "--epochs", str(args.epochs), "--batch-size", str(args.batch // procs), "--lr", str(args.lr),
             "--lr-scaling", "none", "--schedule", "constant", "--seed", str(seed), "--device", "cpu",
             "--report-images", "0", "--quiet"]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, args.threads // procs))}
    cmd = [sys.executable, "-m", "ocr_robust", *flags] if procs == 1 else \
        [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}", "-m", "ocr_robust",
         *flags]
    p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if p.returncode:
        print(p.stdout[-2000:], p.stderr[-4000:], file=sys.stderr)
        raise SystemExit(f"{out}: training failed")
    return out


def measure(run: Path, args, procs: int, seed: int) -> dict:
    import torch

    from ocr_robust.data.dataset import LineDataset
    from ocr_robust.evaluation.lines import evaluate
    from ocr_robust.runs import load_torch_model

    torch.set_num_threads(args.threads)
    hist = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x.strip()]
    secs = sum(h["epoch_seconds"] for h in hist)
    row = {"processes": procs, "batch_per_process": args.batch // procs, "seed": seed, "run": str(run),
           "steps": hist[-1]["step"], "val_word_acc": max(h["val_word_acc"] for h in hist), "train_seconds": secs,
           "train_lines_per_s": sum(h["train_lines_per_s"] * h["epoch_seconds"] for h in hist) / max(secs, 1e-9)}
    model, charset, info = load_torch_model(run)
    for c in CONDITIONS:
        s = evaluate(model, LineDataset.open(Path(args.work) / "suite" / c, charset, crop=info["crop"]), charset,
                     torch.device("cpu"))
        row[f"{c}_word_acc"], row[f"{c}_ci"] = s.word_acc, s.word_acc_ci()
    return row


def format_table(rows: list[dict]) -> str:
    out = ["| processes x batch | seed | steps | validation | " + " | ".join(CONDITIONS) +
           " | train s | lines/s per process |",
           "|" + "---|" * (len(CONDITIONS) + 6)]
    for r in rows:
        cells = [f"{100 * r[f'{c}_word_acc']:.2f} [{100 * r[f'{c}_ci'][0]:.2f}, {100 * r[f'{c}_ci'][1]:.2f}]"
                 for c in CONDITIONS]
        out.append(f"| {r['processes']} x {r['batch_per_process']} | {r['seed']} | {r['steps']} | "
                   f"{100 * r['val_word_acc']:.2f} | " + " | ".join(cells) +
                   f" | {r['train_seconds']:.0f} | {r['train_lines_per_s']:.0f} |")
    return "\n".join(out)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--init", default="pretrained/latin")
    ap.add_argument("--data", default="demo-output/lines/train-real.lmdb")
    ap.add_argument("--suite", default="demo-output/suite")
    ap.add_argument("--mode", default="realtime")
    ap.add_argument("--lines", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch", type=int, default=64, help="the global batch: B on 1 process, B/2 on each of 2")
    ap.add_argument("--lr", type=float, default=3e-4)
    ap.add_argument("--seeds", default="0,1")
    ap.add_argument("--procs", default="1,2")
    ap.add_argument("--threads", type=int, default=2, help="CPU threads in all, shared by the processes")
    ap.add_argument("--work", default="benchmarks/work/ddp")
    ap.add_argument("--json", default="benchmarks/results/ddp.json")
    args = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    Path(args.work).mkdir(parents=True, exist_ok=True)
    data = sample(args)
    suite(args)
    rows = []
    for seed in (int(s) for s in args.seeds.split(",")):
        for procs in (int(p) for p in args.procs.split(",")):
            run = train(args, data, procs, seed)
            rows.append(measure(run, args, procs, seed))
            print(format_table(rows[-1:]).splitlines()[-1], flush=True)
    Path(args.json).parent.mkdir(parents=True, exist_ok=True)
    Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2), encoding="utf-8")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
