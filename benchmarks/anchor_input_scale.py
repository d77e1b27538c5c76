"""Are the anchors handicapped by the crops we give them? Read a sample of a suite
condition with each anchor as the suite stores it, with a 10-pixel border, and up-scaled
2x and 3x (cubic) with that border, and print the word accuracy of each.

    .venv/bin/python benchmarks/anchor_input_scale.py --suite benchmarks/work/real-suite \\
        [--condition clean] [--lines 300] [--anchors tesseract,ppocrv6] [--json out.json]

The sample is every k-th line of the condition (k = lines in it // --lines).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import cv2

from ocr_robust.evaluation.benchmark import load_lines
from ocr_robust.evaluation.engines import anchor, normalise_reading
from ocr_robust.evaluation.metrics import Scores

VARIANTS = ((1, 0), (1, 10), (2, 10), (3, 10))  # (scale, border px)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--suite", required=True)
    ap.add_argument("--condition", default="clean")
    ap.add_argument("--lines", type=int, default=300)
    ap.add_argument("--anchors", default="tesseract,ppocrv6")
    ap.add_argument("--json")
    a = ap.parse_args()
    images, truths = load_lines(Path(a.suite) / a.condition, None)
    step = max(1, len(images) // a.lines)
    images, truths = images[::step][: a.lines], truths[::step][: a.lines]
    rows = []
    for name in a.anchors.split(","):
        engine = anchor(name)
        for scale, border in VARIANTS:
            ims = []
            for im in images:
                if scale != 1:
                    im = cv2.resize(im, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
                if border:
                    im = cv2.copyMakeBorder(im, border, border, border, border, cv2.BORDER_REPLICATE)
                ims.append(im)
            t = time.perf_counter()
            s = Scores().update([normalise_reading(p) for p in engine.read(ims)], truths)
            rows.append({"anchor": name, "scale": scale, "border": border, "lines": len(ims),
                         "word_acc": s.word_acc, "cer": s.cer, "seconds": time.perf_counter() - t})
            print(f"{name:<10} scale {scale} border {border:>2}: word accuracy {100 * s.word_acc:6.2f}%  "
                  f"CER {100 * s.cer:5.2f}%", flush=True)
    if a.json:
        Path(a.json).write_text(json.dumps({"args": vars(a), "rows": rows}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
