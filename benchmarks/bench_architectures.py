#!/usr/bin/env python3
"""Architectures for speed at equal accuracy (issue 23, part 2): the registered models trained
the same way, then read by the same engines in one run, on a Pareto plot.

    .venv/bin/python benchmarks/bench_architectures.py \
        --models crnn-small,crnn-dw,crnn-convhead,crnn-dw-convhead --data data/ft/stores.txt --epochs 1

1. Training, one child process per model (``ocr-robust train``): from scratch, naturally, on
   ``--data`` with the same recipe for every model (``--epochs`` of batch 64, AdamW, one-cycle
   at ``--lr``, augmentation on, ``--seed``): the same lines in the same order, the same
   number of optimizer steps. A model whose run has finished is reused (``--retrain`` trains
   again).
2. Export of each run (ONNX fp32 and static int8, calibrated on ``--data``; the export's own
   parity and accuracy checks apply). Where they refuse the int8 model, it is made anyway
   without the checks, for its speed only, and the table marks it "unchecked" with the
   refusal in the JSON.
3. Accuracy: word accuracy of the PyTorch model on every line of the real-document suite's
   clean, watermark and lowres-jpeg conditions (test documents only), 95% bootstrap
   intervals over lines.
4. Speed, in one process after every training, round-robin over the models ``--repeats``
   times (the median is kept), so that the machine's drift hits every model alike: lines/s
   at batch 64 on the suite's clean lines, ONNX Runtime fp32 and static int8, preprocessing
   and greedy decoding included. Also: parameters, forward FLOPs per line at the lines' mean
   width, and achieved GFLOP/s against the machine's measured peaks (fp32 GEMM, int8 VNNI
   MatMulInteger, from ``bench_inference``).

Writes ``--json`` (default benchmarks/results/architectures.json) and the Pareto plot
``--plot`` (default benchmarks/results/architectures.png: clean word accuracy against int8
lines/s and against GFLOPs per line, the frontier drawn), and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT))
from bench_defences import CONDITIONS  # noqa: E402  # the real conditions every comparison reads


def train(model: str, a, run: Path) -> dict:
    """Train ``model`` into ``run`` (reused when finished); its steps and training seconds."""
    summary = run / "summary.json"
    if a.retrain or not summary.exists():
        cmd = [sys.executable, "-m", "ocr_robust", "train", "--data", a.data, "--model", model, "--epochs",
               str(a.epochs), "--batch-size", "64", "--lr", str(a.lr), "--seed", str(a.seed), "--workers", "1",
               "--report-images", "0", "--out", str(run), "--overwrite"]
        t0 = time.perf_counter()
        subprocess.run(cmd, check=True, cwd=ROOT)
        wall = time.perf_counter() - t0
        from ocr_robust.runs import read_metrics

        hist = read_metrics(run)
        summary.write_text(json.dumps({"wall_seconds": wall, "train_seconds": sum(h["epoch_seconds"] for h in hist),
                                       "steps": hist[-1]["step"], "val_word_acc": hist[-1]["val_word_acc"],
                                       "train_lines_per_s": statistics.fmean(h["train_lines_per_s"] for h in hist)}),
                           encoding="utf-8")
    return json.loads(summary.read_text(encoding="utf-8"))


def accuracy(run: Path, suite: Path) -> dict:
    import torch

    from ocr_robust.data.dataset import LineDataset
    from ocr_robust.evaluation.lines import evaluate
    from ocr_robust.runs import load_torch_model

    model, charset, info = load_torch_model(run)
    out = {}
    for c in CONDITIONS:
        s = evaluate(model, LineDataset.open(suite / c, charset, crop=info["crop"]), charset, torch.device("cpu"))
        out[c] = {"word_acc": s.word_acc, "ci": s.word_acc_ci(), "lines": s.lines}
    return out


def export_run(run: Path, a) -> tuple[Path, dict | None, str | None]:
    """The run's export with the checked static int8 model; where the export's parity or
    accuracy check refuses the int8 model, the fp32 export plus an unchecked int8 model
    (the same quantisation, calibrated on the same lines), so that its speed can still be
    measured; the refusal is returned and reported beside it."""
    import shutil

    from ocr_robust.export import CALIBRATION_LINES, export, quantize_int8, read_sample_lines
    from ocr_robust.runs import INT8_FILE, load_run

    exp = run / "export"
    shutil.rmtree(exp, ignore_errors=True)
    try:
        ex = export(run, exp, "onnx", quantize="int8", sample=str(Path(a.suite) / "clean"), calibration=a.data)
        return exp, ex["parity"], None
    except Exception as e:  # the export's parity or int8 accuracy check failed: reported, not hidden
        failure = f"{type(e).__name__}: {e}"
    shutil.rmtree(exp, ignore_errors=True)
    ex = export(run, exp, "onnx", sample=str(Path(a.suite) / "clean"))
    model, _, cfg = load_run(run, "best", "cpu")
    calib, _ = read_sample_lines((a.data,), cfg, CALIBRATION_LINES, model.cfg.height, offset=0.5)
    quantize_int8(exp / "model.onnx", exp / INT8_FILE, calib)
    meta = json.loads((exp / "model.json").read_text(encoding="utf-8"))
    meta["formats"]["onnx_int8"] = INT8_FILE
    meta["int8"] = {"method": "static QDQ", "unchecked": failure}
    (exp / "model.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
    return exp, ex["parity"], failure


def pareto(points: list[tuple[float, float]], higher_x: bool) -> list[int]:
    """Indices of the points no other point beats on both axes (accuracy up; x up or down)."""
    keep = []
    for i, (x, y) in enumerate(points):
        beaten = any((x2 >= x if higher_x else x2 <= x) and y2 >= y and (x2, y2) != (x, y)
                     for j, (x2, y2) in enumerate(points) if j != i)
        if not beaten:
            keep.append(i)
    return keep


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, key, label, higher in ((axes[0], "int8_lines_per_s", "lines/s, static int8, batch 64 (2 cores)", True),
                                   (axes[1], "gflops_per_line", "GFLOPs per line (forward, mean width)", False)):
        pts = [(r[key], 100 * r["accuracy"]["clean"]["word_acc"]) for r in rows if r.get(key)]
        named = [r for r in rows if r.get(key)]
        front = sorted(pareto(pts, higher), key=lambda i: pts[i][0])
        for r, (x, y) in zip(named, pts):
            lo, hi = (100 * v for v in r["accuracy"]["clean"]["ci"])
            ax.errorbar(x, y, yerr=[[y - lo], [hi - y]], fmt="o", capsize=3)
            ax.annotate(r["model"], (x, y), textcoords="offset points", xytext=(5, 5), fontsize=8)
        ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "k--", lw=0.8, label="Pareto frontier")
        ax.set_xlabel(label)
        ax.set_ylabel("clean word accuracy, real suite (%)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle("Architectures trained alike (issue 23): accuracy against speed and FLOPs", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", default="crnn-small,crnn-dw,crnn-convhead,crnn-dw-convhead")
    ap.add_argument("--data", default="data/ft/stores.txt")
    ap.add_argument("--suite", default="benchmarks/work/real-suite")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--lr", type=float, default=4e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--speed-lines", type=int, default=1000, help="clean lines the engines read per repeat")
    ap.add_argument("--retrain", action="store_true")
    ap.add_argument("--work", default="benchmarks/work/arch")
    ap.add_argument("--json", default="benchmarks/results/architectures.json")
    ap.add_argument("--plot", default="benchmarks/results/architectures.png")
    a = ap.parse_args()

    from bench_inference import peak_gflops, peak_int8_gops
    from bench_ingest import machine

    from ocr_robust.data.store import open_store
    from ocr_robust.images import decode_grey, resize_to_height
    from ocr_robust.inference import Recognizer
    from ocr_robust.models import count_params, forward_flops
    from ocr_robust.runs import load_torch_model

    suite = Path(a.suite)
    rows = []
    for name in a.models.split(","):
        run = Path(a.work) / f"{name}-s{a.seed}"
        row: dict = {"model": name, "run": str(run), "training": train(name, a, run)}
        row["accuracy"] = accuracy(run, suite)
        exp, parity, failure = export_run(run, a)
        row.update(export=str(exp), parity=parity, int8_failure=failure)
        model, _, _ = load_torch_model(run)
        row["params"] = count_params(model)
        rows.append(row)
        print(f"{name}: {json.dumps(row)}", flush=True)

    store = open_store(suite / "clean")
    n = min(a.speed_lines, len(store))
    images = [decode_grey(store.image_bytes(i), store.name(i)) for i in range(n)]
    mean_w = float(np.mean([resize_to_height(im).shape[1] for im in images]))
    width = max(8, int(round(mean_w / 8)) * 8)
    peak, peak8 = peak_gflops(), peak_int8_gops()
    recs = {}
    for r in rows:
        model, _, _ = load_torch_model(r["run"])
        r["gflops_per_line"] = forward_flops(model, width) / 1e9
        recs[(r["model"], "onnx")] = Recognizer(r["export"], engine="onnx")
        recs[(r["model"], "int8")] = Recognizer(r["export"], engine="int8")
    order = sorted(range(n), key=lambda i: images[i].shape[1] / images[i].shape[0])
    ordered = [images[i] for i in order]
    speeds: dict = {k: [] for k in recs}
    for rec in recs.values():
        rec.recognize(ordered[:64])  # warm-up
    for _ in range(a.repeats):
        for k, rec in recs.items():
            t0 = time.perf_counter()
            rec.recognize(ordered, batch_size=64)
            speeds[k].append(n / (time.perf_counter() - t0))
    for r in rows:
        for eng in ("onnx", "int8"):
            s = speeds.get((r["model"], eng))
            key = "fp32_lines_per_s" if eng == "onnx" else "int8_lines_per_s"
            r[key] = statistics.median(s) if s else None
            if s:
                gf = r[key] * r["gflops_per_line"]
                r[f"{'fp32' if eng == 'onnx' else 'int8'}_gflops_per_s"] = gf
                r[f"{'fp32' if eng == 'onnx' else 'int8'}_share_of_peak"] = gf / (peak if eng == "onnx" else peak8)
    result = {"machine": machine(), "args": vars(a), "mean_width": mean_w, "flops_width": width,
              "peak_fp32_gflops": peak, "peak_int8_gops": peak8, "speed_lines": n, "rows": rows}
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    plot(rows, Path(a.plot))
    print(table(result))
    return 0


def table(result: dict) -> str:
    def acc(r, c):
        x = r["accuracy"][c]
        return f"{100 * x['word_acc']:.2f} [{100 * x['ci'][0]:.1f}, {100 * x['ci'][1]:.1f}]"

    def num(v, f="{:.0f}"):
        return f.format(v) if v is not None else "-"

    base = next((r for r in result["rows"] if r["model"] == "crnn-small"), result["rows"][0])
    out = ["| model | params | GFLOPs/line | clean | watermark | lowres-jpeg | fp32 lines/s | int8 lines/s "
           "| int8 vs crnn-small | int8 share of peak | training lines/s |", "|" + "---|" * 11]
    for r in result["rows"]:
        ratio = (f"{r['int8_lines_per_s'] / base['int8_lines_per_s']:.2f}x"
                 if r.get("int8_lines_per_s") and base.get("int8_lines_per_s") else "-")
        share = f"{100 * r['int8_share_of_peak']:.1f}%" if r.get("int8_share_of_peak") else "-"
        mark = " (unchecked)" if r.get("int8_failure") else ""
        out.append(f"| {r['model']} | {r['params']:,} | {r['gflops_per_line']:.3f} | {acc(r, 'clean')} | "
                   f"{acc(r, 'watermark')} | {acc(r, 'lowres-jpeg')} | {num(r['fp32_lines_per_s'])} | "
                   f"{num(r['int8_lines_per_s'])}{mark} | {ratio} | {share} | "
                   f"{r['training']['train_lines_per_s']:.0f} |")
    return "\n".join(out)


if __name__ == "__main__":
    sys.exit(main())
