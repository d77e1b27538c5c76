#!/usr/bin/env python3
"""Recognizer throughput and ONNX/PyTorch agreement.

    python benchmarks/bench_recognizer.py --run demo-output/run --export demo-output/model \
        --data demo-output/lines/test-clean [--train-data demo-output/lines/train.lmdb]

- inference lines/s for PyTorch (run folder) and ONNX Runtime (export folder), at batch 1
  and batch 64, on all the lines of ``--data`` (preprocessing and greedy decoding included);
- agreement: decoded text identical on every line of ``--data``, and the largest absolute
  log-probability difference between the two engines;
- training lines/s of natural training for the run's model (a short timed run on
  ``--train-data``, if given).

Writes benchmarks/results/recognizer.json and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_ingest import machine  # noqa: E402

from ocr_robust.data.dataset import decode_grey, pad_batch, resize_to_height  # noqa: E402
from ocr_robust.data.store import open_store  # noqa: E402
from ocr_robust.inference import Recognizer  # noqa: E402
from ocr_robust.training import TrainConfig, Trainer  # noqa: E402


def timed(rec: Recognizer, images, batch_size: int) -> tuple[float, list[str]]:
    rec.recognize(images[: min(len(images), 64)], batch_size=batch_size)  # warm-up
    t = time.perf_counter()
    out = rec.recognize(images, batch_size=batch_size)
    return len(images) / (time.perf_counter() - t), [d.text for d in out]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True)
    ap.add_argument("--export", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--train-data")
    a = ap.parse_args()
    store = open_store(a.data)
    images = [decode_grey(store.image_bytes(i), store.name(i)) for i in range(len(store))]
    torch.set_num_threads(torch.get_num_threads())
    pt, ox = Recognizer(a.run), Recognizer(a.export)
    rows = []
    texts = {}
    for name, rec in (("PyTorch eager", pt), ("ONNX Runtime fp32", ox)):
        for bs in (1, 64):
            lps, out = timed(rec, images, bs)
            rows.append({"engine": name, "batch": bs, "lines": len(images), "lines_per_s": round(lps, 1),
                         "ms_per_line": round(1000 / lps, 2)})
            texts[name] = out
    same = sum(x == y for x, y in zip(texts["PyTorch eager"], texts["ONNX Runtime fp32"]))
    worst = 0.0
    resized = [resize_to_height(im) for im in images]
    order = sorted(range(len(resized)), key=lambda i: resized[i].shape[1])
    for k in range(0, len(order), 64):
        batch, _ = pad_batch([resized[i] for i in order[k:k + 64]])
        worst = max(worst, float(np.abs(pt.logprobs(batch) - ox.logprobs(batch)).max()))
    result = {"machine": machine(), "data": a.data, "lines": len(images), "inference": rows,
              "agreement": {"identical_text": same, "lines": len(images), "max_abs_logprob_diff": worst}}
    if a.train_data:
        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(data=a.train_data, out=tmp, epochs=1, batch_size=32, seed=0)
            tr = Trainer(cfg, progress=False)
            r = tr.fit()
            result["training"] = {"model": cfg.model, "batch_size": 32,
                                  "lines_per_s": round(r["history"][0]["train_lines_per_s"], 1),
                                  "epoch_lines": len(tr.train_ds), "epoch_seconds": round(r["history"][0]["epoch_seconds"], 1)}
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "recognizer.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    print(f"Machine: {result['machine']}; {len(images)} lines of {a.data}\n")
    print("| engine | batch | lines | lines/s | ms/line |")
    print("|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['engine']} | {r['batch']} | {r['lines']} | {r['lines_per_s']} | {r['ms_per_line']} |")
    ag = result["agreement"]
    print(f"\nONNX vs PyTorch: identical text on {ag['identical_text']}/{ag['lines']} lines; "
          f"max |log-prob diff| {ag['max_abs_logprob_diff']:.2e}")
    if "training" in result:
        t = result["training"]
        print(f"Training ({t['model']}, natural, batch {t['batch_size']}): {t['lines_per_s']} lines/s "
              f"({t['epoch_lines']} lines in {t['epoch_seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
