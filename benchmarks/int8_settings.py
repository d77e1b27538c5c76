"""Dynamic int8 quantisation settings of an export, compared on real suite lines: for each
setting, how many lines read the same text as the float32 ONNX model, word accuracy, size
and speed (ONNX Runtime).

    .venv/bin/python benchmarks/int8_settings.py --model pretrained/latin --suite benchmarks/work/real-suite
"""
import argparse
import json
import shutil
import tempfile
import time
from pathlib import Path

from onnxruntime.quantization import QuantType, quantize_dynamic

from ocr_robust.evaluation.benchmark import load_lines
from ocr_robust.evaluation.metrics import Scores
from ocr_robust.inference import Recognizer

ap = argparse.ArgumentParser()
ap.add_argument("--model", default="pretrained/latin", help="an export folder with model.onnx")
ap.add_argument("--suite", required=True)
ap.add_argument("--lines", type=int, default=400)
a = ap.parse_args()
src, suite = Path(a.model), Path(a.suite)
images, truths = load_lines(suite / "clean", None)
step = max(1, len(images) // a.lines)
images, truths = images[::step][: a.lines], truths[::step][: a.lines]
ref = [d.text for d in Recognizer(src, engine="onnx").recognize(images)]
print("fp32 word", round(100 * Scores().update(ref, truths).word_acc, 2))
variants = {"lstm+matmul": dict(op_types_to_quantize=["MatMul", "Gemm", "LSTM"]),
            "lstm+matmul per-channel": dict(op_types_to_quantize=["MatMul", "Gemm", "LSTM"], per_channel=True),
            "matmul only": dict(op_types_to_quantize=["MatMul", "Gemm"]),
            "matmul per-channel": dict(op_types_to_quantize=["MatMul", "Gemm"], per_channel=True)}
for name, kw in variants.items():
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp) / "m"
        shutil.copytree(src, d)
        quantize_dynamic(str(d / "model.onnx"), str(d / "model.int8.onnx"), weight_type=QuantType.QInt8, **kw)
        meta = json.loads((d / "model.json").read_text())
        meta["formats"]["onnx_int8"] = "model.int8.onnx"
        (d / "model.json").write_text(json.dumps(meta))
        t = time.perf_counter()
        out = [x.text for x in Recognizer(d, engine="int8").recognize(images)]
        dt = time.perf_counter() - t
        same = sum(a == b for a, b in zip(out, ref))
        print(name, f"same {same}/{len(ref)}", "word", round(100 * Scores().update(out, truths).word_acc, 2),
              f"size {(d / 'model.int8.onnx').stat().st_size/1e6:.2f} MB {len(images)/dt:.0f} lines/s", flush=True)
