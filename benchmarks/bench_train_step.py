"""Training-step and inference speed of model variants on the same batches of real lines.

Why the registered models have the stem they have: each variant trains (forward, CTC,
backward, AdamW step) on the same ``--batches`` width-bucketed batches of 32 lines from a
line store (decoded and augmented once, beforehand, so only the model's work is timed),
best of ``--repeats`` passes after two warm-up batches; then it reads the same batches in
eval mode without gradients.

    .venv/bin/python benchmarks/bench_train_step.py --data demo-output/lines/train.lmdb

Variants: the first models' stem (full-resolution conv + 2x2 max-pool) and the stride-2
stem, each with contiguous (NCHW) and channels-last weights, in each ``--precision``:
``float32``, and ``bfloat16`` (the Trainer's autocast, ``models.autocast``, which is on
where the CPU has AMX or AVX512-BF16).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ocr_robust.augment import Augment
from ocr_robust.charset import Charset
from ocr_robust.data.dataset import BucketBatchSampler, LineDataset, collate
from ocr_robust.images import MAX_WIDTH
from ocr_robust.losses import ctc_per_line
from ocr_robust.models import CRNN, REGISTRY, autocast, native_bf16


def timed(fn, batches, repeats: int) -> float:
    """Best lines/s over ``repeats`` passes of ``fn`` over ``batches`` (2 warm-up calls first)."""
    for b in batches[:2]:
        fn(b)
    lines = sum(len(b["texts"]) for b in batches)
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        for b in batches:
            fn(b)
        best = max(best, lines / (time.perf_counter() - t))
    return best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", default="demo-output/lines/train.lmdb")
    ap.add_argument("--model", default="crnn-small")
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--precision", default="float32", help="comma-separated: float32, bfloat16")
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    precisions = a.precision.split(",")
    if "bfloat16" in precisions and not native_bf16(torch.device("cpu")):
        raise SystemExit("this CPU has no native bfloat16 (AMX or AVX512-BF16): the Trainer trains in float32 here")
    if a.threads:
        torch.set_num_threads(a.threads)
    charset = Charset.load("latin")
    ds = LineDataset.open(a.data, charset, max_width=MAX_WIDTH, transform=Augment(1.0, seed=0))
    all_batches = BucketBatchSampler(ds.widths(), 32, seed=0).batches()
    picked = random.Random(1).sample(all_batches, min(a.batches, len(all_batches)))
    batches = [collate([ds[i] for i in b]) for b in picked]
    width = sum(b["images"].shape[0] * b["images"].shape[-1] for b in batches) / sum(len(b["texts"]) for b in batches)
    rows = []
    variants = [(p, stem, cl) for p in precisions for stem in (1, 2) for cl in (False, True)]
    for precision, stem, channels_last in variants:
        torch.manual_seed(0)
        cfg = replace(REGISTRY[a.model], stem_stride=stem, num_classes=charset.num_classes)
        model = CRNN(cfg)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        opt = torch.optim.AdamW(model.parameters(), 1e-3)
        low = precision == "bfloat16"

        def train_step(b):
            opt.zero_grad(set_to_none=True)
            with autocast(torch.device("cpu"), enabled=low):  # the Trainer's mixed precision
                logp = model(b["images"])
            loss = ctc_per_line(logp, b["targets"], b["target_lengths"], b["widths"]).mean()
            loss.backward()
            opt.step()

        def infer(b):
            with torch.no_grad():
                model(b["images"])

        model.train()
        train = timed(train_step, batches, a.repeats)
        model.eval()
        rows.append({"precision": precision, "stem_stride": stem, "channels_last": channels_last,
                     "train_lines_per_s": train, "infer_lines_per_s": timed(infer, batches, a.repeats)})
        print(f"{precision}, stem {stem}, {'channels-last' if channels_last else 'NCHW'}: train {train:.1f} lines/s, "
              f"inference {rows[-1]['infer_lines_per_s']:.1f} lines/s", flush=True)
    base = rows[0]["train_lines_per_s"]
    print(f"\n{len(batches)} batches of 32, mean padded width {width:.0f} px, {torch.get_num_threads()} threads")
    print("| training precision | stem | weights | train lines/s | vs first models | inference lines/s |\n"
          "|---|---|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['precision']} | {'stride-2 conv' if r['stem_stride'] == 2 else 'conv + max-pool'} | "
              f"{'channels-last' if r['channels_last'] else 'NCHW'} | {r['train_lines_per_s']:.1f} | "
              f"{r['train_lines_per_s'] / base:.2f}x | {r['infer_lines_per_s']:.1f} |")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"args": vars(a), "model": asdict(REGISTRY[a.model]), "rows": rows,
                                            "mean_width": width}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
