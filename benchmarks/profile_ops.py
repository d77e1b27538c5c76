"""Where an ONNX model's time goes, by operator: ONNX Runtime's own profiler over every line of
``--data``, read in the batches ``Recognizer.recognize`` makes (issue 23).

    .venv/bin/python benchmarks/profile_ops.py --onnx pretrained/latin/model.int8.onnx \
        --data benchmarks/work/real-suite/clean

Prints each operator's share of the kernel time.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import onnxruntime as ort  # noqa: E402

from ocr_robust.data.crop import normalise_crops  # noqa: E402
from ocr_robust.evaluation.benchmark import load_lines  # noqa: E402
from ocr_robust.images import MAX_WIDTH, pad_batch, resize_to_height  # noqa: E402
from ocr_robust.inference import BATCH_PIXELS, width_batches  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--onnx", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--crop", default="ink")
    a = ap.parse_args()
    images, _ = load_lines(Path(a.data), None)
    lines = [resize_to_height(im, 32, MAX_WIDTH) for im in normalise_crops(images, a.crop)]
    batches = [pad_batch([lines[i] for i in idx])[0].numpy()
               for idx in width_batches([x.shape[1] for x in lines], 32, 64, BATCH_PIXELS)]
    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.enable_profiling, opts.profile_file_prefix = True, str(Path(tmp) / "prof")
        sess = ort.InferenceSession(a.onnx, opts, providers=["CPUExecutionProvider"])
        for b in batches:
            sess.run(None, {"images": b})
        events = json.loads(Path(sess.end_profiling()).read_text())
    time_by_op: Counter = Counter()
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            time_by_op[e["args"]["op_name"]] += e["dur"]
    total = sum(time_by_op.values())
    for op, us in time_by_op.most_common():
        print(f"{op:24s} {100 * us / total:5.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
