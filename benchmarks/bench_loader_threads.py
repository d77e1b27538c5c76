"""Training speed of the real Trainer with augmentation on or off, OpenCV's thread count and
DataLoader workers: does the data side hold training back on a small CPU?

Trains the demo's recipe for 130 steps and times steps 10-130 (``Trainer.fit``'s
``on_step`` hook; its own time is not counted). One configuration per process, so that
OpenCV's thread pool is set before anything uses it:

    for c in "2 1.0 0" "1 1.0 0" "0 1.0 0" "2 0.0 0" "2 1.0 1"; do
      .venv/bin/python benchmarks/bench_loader_threads.py $c; done
"""

from __future__ import annotations

import argparse
import time

import cv2


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("cv2_threads", type=int, help="cv2.setNumThreads (0: OpenCV runs single-threaded)")
    ap.add_argument("augment", type=float, help="augmentation strength, 0 = off")
    ap.add_argument("workers", type=int, help="DataLoader worker processes")
    ap.add_argument("--data", default="demo-output/lines/train.lmdb")
    ap.add_argument("--out", default="benchmarks/work/loader-threads")
    a = ap.parse_args()
    cv2.setNumThreads(a.cv2_threads)
    from ocr_robust.demo import RECIPE
    from ocr_robust.training import TrainConfig, Trainer

    name = f"cv2-{a.cv2_threads}-aug-{a.augment:g}-workers-{a.workers}"
    cfg = TrainConfig(data=a.data, out=f"{a.out}/{name}", epochs=1, seed=0, augment=a.augment, workers=a.workers,
                      **RECIPE)
    trainer = Trainer(cfg, progress=False)
    marks: dict[int, float] = {}

    def on_step(t: Trainer) -> str | None:
        marks[t.step] = time.perf_counter()
        return "measured" if len(marks) == 130 else None

    trainer.fit(on_step=on_step)
    steps = sorted(marks)
    dt = marks[steps[-1]] - marks[steps[9]]
    lines = (len(steps) - 10) * cfg.batch_size
    print(f"{name}: {lines / dt:.1f} lines/s ({len(steps) - 10} steps in {dt:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
