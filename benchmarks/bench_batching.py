"""How reading batches are cut, and where reading's time goes (issue 23).

1. Lines/s of ``Recognizer.recognize`` on every line of ``--data`` for batch limits in lines
   and in padded pixels (``batch_pixels``), for each engine of ``--model`` (an export folder
   with the static int8 model, ``--quantize int8``): the best of ``--repeats`` passes.
2. At the default limits, the time of each stage per line: crop normalisation, resizing,
   padding into batches, the network, greedy decoding.

    .venv/bin/python benchmarks/bench_batching.py --model EXPORT --data benchmarks/work/real-suite/clean

Writes ``benchmarks/results/batching.json`` and prints the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from ocr_robust.data.crop import normalise_crops  # noqa: E402
from ocr_robust.decoding import greedy_batch  # noqa: E402
from ocr_robust.evaluation.benchmark import load_lines  # noqa: E402
from ocr_robust.images import output_frames, pad_batch, resize_to_height  # noqa: E402
from ocr_robust.inference import BATCH_PIXELS, Recognizer, width_batches  # noqa: E402

LIMITS = [(64, None), (64, 64 * 256 * 32), (64, 64 * 512 * 32), (64, 64 * 1024 * 32), (32, None),
          (128, 64 * 256 * 32), (256, 64 * 512 * 32)]


def best_of(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t)
    return best


def stages(rec: Recognizer, images, repeats: int) -> dict:
    t: dict[str, float] = {}
    for _ in range(repeats):
        t0 = time.perf_counter()
        crops = normalise_crops(list(images), rec.crop)
        t1 = time.perf_counter()
        resized = [resize_to_height(im, rec.height, rec.max_width) for im in crops]
        t2 = time.perf_counter()
        batches = [pad_batch([resized[i] for i in idx]) for idx in
                   width_batches([im.shape[1] for im in resized], rec.height, 64, BATCH_PIXELS)]
        t3 = time.perf_counter()
        outs = [rec.logprobs(b) for b, _ in batches]
        t4 = time.perf_counter()
        for lp, (_, w) in zip(outs, batches):
            greedy_batch(lp, [output_frames(int(x)) for x in w], rec.charset)
        t5 = time.perf_counter()
        for k, v in {"crop": t1 - t0, "resize": t2 - t1, "pad": t3 - t2, "network": t4 - t3,
                     "decode": t5 - t4}.items():
            t[k] = min(t.get(k, float("inf")), v)
    total = sum(t.values())
    return {k: {"ms_per_line": 1000 * v / len(images), "share": v / total} for k, v in t.items()}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="an export folder with model.int8.onnx")
    ap.add_argument("--data", required=True)
    ap.add_argument("--engines", default="int8,onnx")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default="benchmarks/results/batching.json")
    a = ap.parse_args()
    images, _ = load_lines(Path(a.data), None)
    out: dict = {"model": a.model, "data": a.data, "lines": len(images), "limits": [], "stages": {}}
    for eng in a.engines.split(","):
        rec = Recognizer(a.model, engine=eng)
        rec.recognize(images[:64])
        for lines, pixels in LIMITS:
            dt = best_of(lambda: rec.recognize(images, batch_size=lines, batch_pixels=pixels), a.repeats)
            row = {"engine": eng, "batch_lines": lines, "batch_pixels": pixels, "lines_per_s": len(images) / dt}
            out["limits"].append(row)
            print(f"{eng:5s} at most {lines:3d} lines, {pixels or 'any'} pixels: {row['lines_per_s']:.0f} lines/s",
                  flush=True)
        out["stages"][eng] = stages(rec, images, a.repeats)
        print(eng, {k: f"{v['ms_per_line']:.3f} ms/line ({100 * v['share']:.0f}%)"
                    for k, v in out["stages"][eng].items()}, flush=True)
    Path(a.json).write_text(json.dumps(out, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
