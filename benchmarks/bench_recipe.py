"""Compare training recipes at a fixed number of steps, independent of the machine's speed.

The demo trains against a clock, so its figures move with the VM's speed; this trains the
demo's recipe (``ocr_robust.demo.RECIPE``) naturally for ``--epochs`` epochs with the given
TrainConfig overrides (no
time limit, so every recipe gets the same steps), then benchmarks it on held-out line
stores. Run two at once with ``--threads 1`` each, so both see the same machine.

    .venv/bin/python benchmarks/bench_recipe.py --name lr4e-3 --set lr=0.004 \\
        --data demo-output/lines/train.lmdb \\
        --test demo-output/lines/test-clean demo-output/lines/test-watermark
"""

from __future__ import annotations

import argparse
import json
import time

import torch
import yaml


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--data", default="demo-output/lines/train.lmdb")
    ap.add_argument("--test", nargs="+", default=["demo-output/lines/test-clean", "demo-output/lines/test-watermark"])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a TrainConfig field (YAML value)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="benchmarks/work/recipe")
    ap.add_argument("--json", default=None, help="append the result as one JSON line")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from dataclasses import fields

    from ocr_robust.demo import RECIPE
    from ocr_robust.evaluation.lines import bench
    from ocr_robust.training import TrainConfig, Trainer

    known = {f.name for f in fields(TrainConfig)}
    overrides = {}
    for item in a.set:
        key, eq, value = item.partition("=")
        if not eq or key not in known:
            ap.error(f"--set {item!r}: expected KEY=VALUE with KEY a TrainConfig field")
        overrides[key] = yaml.safe_load(value)
    run = f"{a.out}/{a.name}"
    cfg = TrainConfig(**{"data": a.data, "out": run, "epochs": a.epochs, "seed": 0, **RECIPE, **overrides})
    t = time.perf_counter()
    r = Trainer(cfg, progress=False).fit()
    rows = bench(run, a.test)
    result = {"name": a.name, "overrides": overrides, "data": a.data, "steps": r["steps"],
              "val_word_acc": [round(100 * h["val_word_acc"], 2) for h in r["history"]],
              "test_word_acc": {row["data"]: round(100 * row["word_acc"], 2) for row in rows},
              "seconds": round(time.perf_counter() - t)}
    print(json.dumps(result))
    if a.json:
        with open(a.json, "a", encoding="utf-8") as f:
            f.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
