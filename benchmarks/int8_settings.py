"""int8 quantisation settings of an export compared on the real-document suite (issue 23):
static QDQ (per tensor or per channel; the convolutions only, or the matrix products too)
and dynamic quantisation, against the float32 ONNX model. For each setting and condition:
word accuracy (every line of the condition), its change against float32, lines read with
the same text as float32, and lines/s at batch 64 (ONNX Runtime, preprocessing and greedy
decoding included, the best of ``--repeats`` passes). Static settings are calibrated on
``--calibration`` (training lines, never the suite's).

    .venv/bin/python benchmarks/int8_settings.py --model pretrained/latin \
        --suite benchmarks/work/real-suite --calibration data/ft/real-clean

Writes ``benchmarks/results/int8-settings.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ocr_robust.evaluation.benchmark import load_lines  # noqa: E402
from ocr_robust.evaluation.metrics import Scores  # noqa: E402
from ocr_robust.export import CALIBRATION_LINES, quantize_int8, read_sample_lines  # noqa: E402
from ocr_robust.inference import Recognizer  # noqa: E402

SETTINGS = {  # name: (static, per_channel, ops)
    "static conv+relu+maxpool": (True, False, ("Conv", "Relu", "MaxPool")),
    "static conv": (True, False, ("Conv",)),
    "static conv+relu": (True, False, ("Conv", "Relu")),
    "static conv per-channel": (True, True, ("Conv",)),
    "static conv+matmul": (True, False, ("Conv", "MatMul", "Gemm")),
    "static conv+matmul per-channel": (True, True, ("Conv", "MatMul", "Gemm")),
    "dynamic lstm+matmul": (False, False, ()),
}


def speed(rec: Recognizer, images, repeats: int) -> float:
    rec.recognize(images[:64])
    best = float("inf")
    for _ in range(repeats):
        t = time.perf_counter()
        rec.recognize(images, batch_size=64)
        best = min(best, time.perf_counter() - t)
    return len(images) / best


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="pretrained/latin", help="an export folder with model.onnx")
    ap.add_argument("--suite", required=True)
    ap.add_argument("--conditions", default="clean,watermark,lowres-jpeg,watermark-lowres")
    ap.add_argument("--calibration", required=True, help="training lines (a line store)")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--json", default="benchmarks/results/int8-settings.json")
    a = ap.parse_args()
    src = Path(a.model)
    meta = json.loads((src / "model.json").read_text())
    calib, _ = read_sample_lines((a.calibration,), meta["input"], CALIBRATION_LINES, meta["input"]["height"], 0.5)
    data = {c: load_lines(Path(a.suite) / c, None) for c in a.conditions.split(",")}
    rows = []
    fp32 = Recognizer(src, engine="onnx", threads=2)
    ref = {c: [d.text for d in fp32.recognize(im)] for c, (im, _) in data.items()}
    row = {"setting": "fp32", "lines_per_s": speed(fp32, data["clean"][0], a.repeats)}
    for c, (_, truths) in data.items():
        row[c] = Scores().update(ref[c], truths).word_acc
    rows.append(row)
    for name in a.settings.split(","):
        static, per_channel, ops = SETTINGS[name]
        with tempfile.TemporaryDirectory() as tmp:
            d = Path(tmp) / "m"
            shutil.copytree(src, d)
            if static:
                quantize_int8(d / "model.onnx", d / "model.int8.onnx", calib, per_channel=per_channel, ops=ops)
            else:
                quantize_int8(d / "model.onnx", d / "model.int8.onnx")
            m = json.loads((d / "model.json").read_text())
            m["formats"]["onnx_int8"] = "model.int8.onnx"
            (d / "model.json").write_text(json.dumps(m))
            rec = Recognizer(d, engine="int8", threads=2)
            row = {"setting": name, "lines_per_s": speed(rec, data["clean"][0], a.repeats),
                   "size_kb": round((d / "model.int8.onnx").stat().st_size / 1024)}
            for c, (images, truths) in data.items():
                texts = [x.text for x in rec.recognize(images)]
                row[c] = Scores().update(texts, truths).word_acc
                row[f"{c}_same_text"] = sum(x == y for x, y in zip(texts, ref[c])) / len(texts)
            rows.append(row)
        print(json.dumps(row), flush=True)
    Path(a.json).write_text(json.dumps({"model": str(src), "suite": a.suite, "calibration": a.calibration,
                                        "calibration_lines": len(calib), "rows": rows}, indent=2))
    conds = list(data)
    print("| setting | lines/s (clean, batch 64) | vs fp32 | " + " | ".join(conds) + " |")
    print("|---|---:|---:|" + "---:|" * len(conds))
    base = rows[0]
    for r in rows:
        cells = [f"{100 * r[c]:.2f} ({100 * (r[c] - base[c]):+.2f})" for c in conds]
        print(f"| {r['setting']} | {r['lines_per_s']:.0f} | {r['lines_per_s'] / base['lines_per_s']:.2f}x | "
              + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
