#!/usr/bin/env python3
"""Inference speed and agreement of every engine, page reading, and the HTTP service under load.

    python benchmarks/bench_inference.py --run demo-output/run --data demo-output/lines/test-clean \
        [--pdfs demo-output/pdf/test-clean demo-output/pdf/test-watermark] [--service] \
        [--train-data demo-output/lines/train.lmdb]

1. Engines, on every line of ``--data`` (preprocessing and greedy decoding included):
   PyTorch eager (the run), TorchScript, ONNX Runtime fp32, static int8 (an export made here
   with ``--format all --quantize int8``, calibrated on ``--calibration``, training lines) and
   dynamic int8 (``--quantize int8-dynamic``), at batch 1 and batch 64: lines/s, p50/p99
   latency of one call, word accuracy, and agreement with PyTorch (identical text; max
   |log-prob| difference).
2. The model's forward FLOPs per line (at the mean resized width of ``--data``) against the
   machine's measured peaks: fp32 matrix multiply (PyTorch, all threads) and int8 matrix
   multiply (ONNX Runtime's MatMulInteger, the VNNI path, all threads): the share of the
   hardware's limit each engine reaches.
3. ``--pdfs``: reading whole pages. Line segmentation of image-only pages (the text-layer
   boxes are the truth): recall and precision; and word accuracy of the lines read from
   segmentation against the same lines cropped from the text layer.
4. ``--service``: ``ocr-robust serve`` started in a subprocess, loaded from this process by
   ``--clients`` concurrent clients sending ``--requests`` single-line requests in total:
   requests/s, p50/p99 latency, errors, the server's resident memory before and after.
5. ``--train-data``: natural training lines/s of the run's model (one short epoch).

Writes benchmarks/results/inference.json and prints Markdown tables.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_ingest import machine  # noqa: E402

from ocr_robust.data.store import open_store  # noqa: E402
from ocr_robust.evaluation.metrics import Scores  # noqa: E402
from ocr_robust.export import export  # noqa: E402
from ocr_robust.images import decode_grey, pad_batch, resize_to_height  # noqa: E402
from ocr_robust.inference import Recognizer  # noqa: E402
from ocr_robust.models import forward_flops  # noqa: E402


def timed(rec: Recognizer, images, batch_size: int) -> dict:
    """Read all images in calls of ``batch_size`` (in the given order); per-call latency."""
    rec.recognize(images[:batch_size], batch_size=batch_size)  # warm-up
    lat, texts = [], []
    t0 = time.perf_counter()
    for k in range(0, len(images), batch_size):
        t = time.perf_counter()
        texts += [d.text for d in rec.recognize(images[k : k + batch_size], batch_size=batch_size)]
        lat.append(time.perf_counter() - t)
    dt = time.perf_counter() - t0
    return {"lines_per_s": len(images) / dt, "p50_ms": 1000 * float(np.percentile(lat, 50)),
            "p99_ms": 1000 * float(np.percentile(lat, 99)), "texts": texts}


def peak_gflops(seconds: float = 3.0) -> float:
    """Measured fp32 matrix-multiply rate with all threads (the machine's practical peak)."""
    a, b = torch.randn(2048, 2048), torch.randn(2048, 2048)
    for _ in range(3):
        a @ b
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        n += 1
    return 2 * 2048**3 * n / (time.perf_counter() - t0) / 1e9


def peak_int8_gops(seconds: float = 3.0, n: int = 2048) -> float:
    """Measured int8 matrix-multiply rate (uint8 x int8 -> int32, ONNX Runtime's MatMulInteger,
    which runs on VNNI where the CPU has it) with all threads: the practical int8 peak."""
    import onnxruntime as ort
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("MatMulInteger", ["a", "b"], ["c"])], "mm",
                          [helper.make_tensor_value_info("a", TensorProto.UINT8, [n, n]),
                           helper.make_tensor_value_info("b", TensorProto.INT8, [n, n])],
                          [helper.make_tensor_value_info("c", TensorProto.INT32, [n, n])])
    model = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    feed = {"a": rng.integers(0, 255, (n, n), dtype=np.uint8), "b": rng.integers(-127, 127, (n, n), dtype=np.int8)}
    for _ in range(3):
        sess.run(None, feed)
    k, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        sess.run(None, feed)
        k += 1
    return 2 * n**3 * k / (time.perf_counter() - t0) / 1e9


def engines(run: str, exp: Path, dyn: Path, images, truth) -> tuple[list[dict], dict]:
    recs = {"PyTorch eager": Recognizer(run, engine="torch"), "TorchScript": Recognizer(exp, engine="torchscript"),
            "ONNX Runtime fp32": Recognizer(exp, engine="onnx"),
            "ONNX Runtime int8 static": Recognizer(exp, engine="int8"),
            "ONNX Runtime int8 dynamic": Recognizer(dyn, engine="int8")}
    # similar widths together, as a service or `bench` would batch them
    order = sorted(range(len(images)), key=lambda i: images[i].shape[1] / images[i].shape[0])
    ordered, ordered_truth = [images[i] for i in order], [truth[i] for i in order]
    rows, texts = [], {}
    for name, rec in recs.items():
        for bs in (1, 64):
            r = timed(rec, ordered, bs)
            texts[name] = r.pop("texts")
            s = Scores().update(texts[name], ordered_truth)
            rows.append({"engine": name, "batch": bs, "lines": len(images), "lines_per_s": round(r["lines_per_s"], 1),
                         "ms_per_line": round(1000 / r["lines_per_s"], 3), "p50_ms": round(r["p50_ms"], 2),
                         "p99_ms": round(r["p99_ms"], 2), "word_acc": s.word_acc})
    ref = recs["PyTorch eager"]
    agreement = {}
    resized = [resize_to_height(im) for im in ordered]
    for name, rec in recs.items():
        worst = 0.0
        for k in range(0, len(resized), 64):
            batch, _ = pad_batch(resized[k : k + 64])
            worst = max(worst, float(np.abs(ref.logprobs(batch) - rec.logprobs(batch)).max()))
        agreement[name] = {"identical_text": sum(x == y for x, y in zip(texts[name], texts["PyTorch eager"])),
                           "lines": len(images), "max_abs_logprob_diff": worst}
    return rows, agreement


def anchors(names: list[str], images, truth) -> list[dict]:
    """The other engines on the same lines, in the same run: Tesseract (one process over a
    list file; once with OMP_THREAD_LIMIT=1, once with its default threads), PP-OCRv4 and
    PP-OCRv6 small (rapidocr). Lines/s over the whole set, word accuracy after the same
    normalisation as the benchmark suite's."""
    import os

    from ocr_robust.evaluation.engines import anchor, normalise_reading

    order = sorted(range(len(images)), key=lambda i: images[i].shape[1] / images[i].shape[0])
    ordered, ordered_truth = [images[i] for i in order], [normalise_reading(truth[i]) for i in order]
    runs = [(n, env) for n in names for env in ((["1", None]) if n == "tesseract" else [None])]
    rows = []
    for name, threads in runs:
        try:
            eng = anchor(name)
        except RuntimeError as e:
            print(f"{name}: skipped ({e})", file=sys.stderr)
            continue
        old = os.environ.pop("OMP_THREAD_LIMIT", None)
        if threads:
            os.environ["OMP_THREAD_LIMIT"] = threads
        try:
            eng.read(ordered[:8])  # warm-up
            t = time.perf_counter()
            texts = [normalise_reading(x) for x in eng.read(ordered)]
            dt = time.perf_counter() - t
        finally:
            os.environ.pop("OMP_THREAD_LIMIT", None)
            if old is not None:
                os.environ["OMP_THREAD_LIMIT"] = old
        label = {"tesseract": "Tesseract", "ppocr": "PP-OCRv4", "ppocrv6": "PP-OCRv6 small"}.get(name, name)
        if name == "tesseract":
            label += " (OMP_THREAD_LIMIT=1)" if threads else " (default threads)"
        rows.append({"engine": label, "batch": "all", "lines": len(images), "lines_per_s": round(len(images) / dt, 1),
                     "ms_per_line": round(1000 * dt / len(images), 3), "p50_ms": None, "p99_ms": None,
                     "word_acc": Scores().update(texts, ordered_truth).word_acc, "how": eng.how})
    return rows


def pages(rec: Recognizer, pdf_dirs: list[str]) -> list[dict]:
    """Segmentation vs the text layer on each folder's PDFs (pages rendered as images)."""
    import pymupdf

    from ocr_robust.pdf.ingest import normalise_text
    from ocr_robust.pdf.layout import crop_line, render, same_line, text_lines
    from ocr_robust.pdf.read import read_page_image

    rows = []
    for d in pdf_dirs:
        n_true = n_found = hit = good = 0
        seg_texts, layer_texts, truth_texts = [], [], []
        t0 = time.perf_counter()
        n_pages = 0
        for f in sorted(Path(d).glob("*.pdf")):
            for page in pymupdf.open(f):
                n_pages += 1
                img = render(page, 150, 10**8)
                lines = [ln for ln in text_lines(page)[0] if ln.text.strip() and ln.direction == (1, 0)]
                truth = [(crop_line(img, ln, 150 / 72, 0.0), ln) for ln in lines]
                truth = [(c[1], c[0], ln) for c, ln in truth if c is not None]
                reading = read_page_image(rec, img)
                boxes = [ln["box"] for ln in reading.lines]
                n_true += len(truth)
                n_found += len(boxes)
                good += sum(any(same_line(t, b) for t, _, _ in truth) for b in boxes)
                layer_reads = (rec.recognize([crop_line(img, ln, 150 / 72, 0.2)[0] for _, _, ln in truth])
                               if truth else [])
                for (t, _, ln), lr in zip(truth, layer_reads):
                    match = [k for k, b in enumerate(boxes) if same_line(t, b)]
                    if match:
                        hit += 1
                        seg_texts.append(reading.lines[match[0]]["text"])
                        layer_texts.append(lr.text)
                        truth_texts.append(normalise_text(ln.text))
        seg = Scores().update(seg_texts, truth_texts)
        lay = Scores().update(layer_texts, truth_texts)
        rows.append({"pdfs": d, "pages": n_pages, "true_lines": n_true, "found": n_found,
                     "recall": hit / max(1, n_true), "precision": good / max(1, n_found),
                     "word_acc_segmented": seg.word_acc, "word_acc_text_layer_boxes": lay.word_acc,
                     "seconds": round(time.perf_counter() - t0, 1)})
    return rows


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def multipart_request(host: str, path: str, parts: list[tuple[str, bytes]], boundary: str = "ocrrobustbench") -> bytes:
    """One whole HTTP/1.1 POST (headers and multipart body, field ``images``), built once so
    that the load generator spends no time encoding while it measures."""
    body = b"".join(f'--{boundary}\r\nContent-Disposition: form-data; name="images"; filename="{name}"\r\n'
                    f"Content-Type: image/png\r\n\r\n".encode() + data + b"\r\n" for name, data in parts)
    body += f"--{boundary}--\r\n".encode()
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    return head + body


async def load(port: int, requests: list[bytes], clients: int, lat: list[float], errors: list[str],
               timeout_s: float = 120.0) -> None:
    """Send ``requests`` (whole HTTP requests) over ``clients`` keep-alive connections, each
    client taking the next request when its last answer is in; appends the latencies of the
    200s to ``lat`` and the other answers to ``errors``. Raw asyncio streams, so that the load costs the machine (whose
    cores the server shares) little: a client's CPU time is reported beside the figures."""
    import asyncio

    todo = iter(requests)

    async def client() -> None:
        reader = writer = None
        for req in todo:
            t = time.perf_counter()
            try:
                if writer is None:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                writer.write(req)
                head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout_s)).lower()
                status = int(head.split(b" ", 2)[1])
                length = next(int(h.split(b":", 1)[1]) for h in head.split(b"\r\n")
                              if h.startswith(b"content-length:"))
                body = await asyncio.wait_for(reader.readexactly(length), timeout_s)
            except (OSError, asyncio.IncompleteReadError, TimeoutError, StopIteration, ValueError) as e:
                errors.append(f"{type(e).__name__}: {e}")
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            if status == 200:
                lat.append(time.perf_counter() - t)
            else:
                errors.append(f"{status}: {body[:100].decode(errors='replace')}")
            if b"connection: close" in head:
                writer.close()
                reader = writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(client() for _ in range(clients)))


def service(exp: Path, pngs: list[bytes], clients: int, requests: int, workers: int = 1, engine: str = "int8",
            max_active: int | None = None, lines_per_request: int = 1) -> dict:
    import asyncio

    import httpx

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    proc = subprocess.Popen([sys.executable, "-m", "ocr_robust.cli", "serve", "--model", str(exp), "--port", str(port),
                             "--workers", str(workers), "--engine", engine, "--max-queued", str(clients)]
                            + (["--max-active", str(max_active)] if max_active else []),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # every client's request may wait
    try:
        for _ in range(600):
            try:
                if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        rss0 = _rss_mb(proc.pid)
        host = f"127.0.0.1:{port}"
        bodies = [multipart_request(host, "/v1/recognize",
                                    [(f"{i}-{j}.png", pngs[(i * lines_per_request + j) % len(pngs)])
                                     for j in range(lines_per_request)]) for i in range(requests)]
        lat: list[float] = []
        errors: list[str] = []
        rss: list[tuple[int, float]] = []  # (requests done, MB) sampled every half second
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(0.5):
                rss.append((len(lat) + len(errors), _rss_mb(proc.pid)))

        sampler = threading.Thread(target=sample)
        sampler.start()
        t0, cpu0 = time.perf_counter(), time.process_time()
        asyncio.run(load(port, bodies, clients, lat, errors))
        dt, client_cpu = time.perf_counter() - t0, time.process_time() - cpu0
        stop.set()
        sampler.join()
        health = httpx.get(url + "/healthz").json()
        quarters = {f"{q}%": next((round(m, 1) for n, m in rss if n >= requests * q / 100), None) for q in (25, 50, 75)}
        rss1 = _rss_mb(proc.pid)
        return {"clients": clients, "requests": requests, "workers": workers, "engine": engine,
                "max_active": max_active, "lines_per_request": lines_per_request, "seconds": round(dt, 1),
                "client_cpu_s": round(client_cpu, 1),
                "requests_per_s": round(requests / dt, 1), "lines_per_s": round(requests * lines_per_request / dt, 1),
                "p50_ms": round(1000 * float(np.percentile(lat, 50)), 1),
                "p99_ms": round(1000 * float(np.percentile(lat, 99)), 1), "errors": len(errors),
                "error_examples": errors[:5], "batches": health["batches"],
                "lines_per_batch": round(health["lines"] / max(1, health["batches"]), 1),
                "rss_mb_before": round(rss0, 1), "rss_mb_after": round(rss1, 1),
                "rss_mb_at_share_of_requests": quarters, "rss_mb_max": round(max((m for _, m in rss), default=rss1), 1)}
    finally:
        proc.terminate()
        proc.wait(60)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, help="a run or an export folder (pretrained/latin)")
    ap.add_argument("--data", required=True)
    ap.add_argument("--calibration", help="training lines static int8 is calibrated on (default: the run's data; "
                                          "needed for an export folder)")
    ap.add_argument("--pdfs", nargs="*", default=[])
    ap.add_argument("--anchors", default="", help="also time these engines on the same lines: tesseract,ppocrv6,ppocr")
    ap.add_argument("--service", action="store_true")
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--workers", type=int, default=1, help="server processes of the --service test")
    ap.add_argument("--engine", default="int8", help="the service's engine (onnx or int8)")
    ap.add_argument("--max-active", type=int, help="the service's --max-active (default: its own)")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--lines-per-request", type=int, default=1,
                    help="line images in each request of the --service test (a page's lines sent together)")
    ap.add_argument("--train-data")
    ap.add_argument("--service-only", action="store_true", help="only the export and the service load test")
    ap.add_argument("--json", help="default: results/inference.json (results/service-soak.json with --service-only)")
    a = ap.parse_args()
    results = Path(__file__).resolve().parent / "results"
    a.json = a.json or str(results / ("service-soak.json" if a.service_only else "inference.json"))
    store = open_store(a.data)
    images = [decode_grey(store.image_bytes(i), store.name(i)) for i in range(len(store))]
    truth = [store.text(i) for i in range(len(store))]
    result: dict = {"machine": machine(), "data": a.data, "lines": len(images), "run": a.run}
    with tempfile.TemporaryDirectory() as tmp:
        exp = Path(tmp) / "export"
        ex = export(a.run, exp, "all", quantize="int8", sample=a.data, calibration=a.calibration)
        result["export_parity"] = ex["parity"]
        dyn = Path(tmp) / "dynamic"
        result["export_parity_dynamic"] = export(a.run, dyn, "onnx", quantize="int8-dynamic", sample=a.data)["parity"]
        rec = Recognizer(exp)
        if a.service_only:
            import cv2

            # the engine the service wraps, on the same lines in the same run: the service's share is a same-run ratio
            order = sorted(range(len(images)), key=lambda i: images[i].shape[1] / images[i].shape[0])
            eng = timed(Recognizer(exp, engine=a.engine), [images[i] for i in order], 64)
            result["engine_batch64"] = {"engine": a.engine, "lines_per_s": round(eng["lines_per_s"], 1)}
            result["service"] = service(exp, [cv2.imencode(".png", im)[1].tobytes() for im in images], a.clients,
                                        a.requests, a.workers, a.engine, a.max_active,
                                        a.lines_per_request)
            result["service"]["share_of_engine"] = round(result["service"]["lines_per_s"] / eng["lines_per_s"], 3)
            out = Path(a.json)
            out.write_text(json.dumps(result, indent=2), encoding="utf-8")
            report(result)
            return 0
        rows, agreement = engines(a.run, exp, dyn, images, truth)
        result["engines"], result["agreement"] = rows, agreement
        mean_w = float(np.mean([resize_to_height(im).shape[1] for im in images]))
        width = max(8, int(round(mean_w / 8)) * 8)
        flops = forward_flops(Recognizer(a.run, engine="torch").model, width)
        peak, peak8 = peak_gflops(), peak_int8_gops()
        result["flops"] = {"mean_width": round(mean_w, 1), "width": width, "gflops_per_line": flops / 1e9,
                           "peak_gflops": round(peak, 1), "peak_int8_gops": round(peak8, 1)}
        if a.anchors:
            result["anchors"] = anchors(a.anchors.split(","), images, truth)
        for r in rows:
            r["gflops_per_s"] = round(r["lines_per_s"] * flops / 1e9, 2)
            r["share_of_peak"] = round(r["lines_per_s"] * flops / 1e9 / (peak8 if "int8" in r["engine"] else peak), 4)
        if a.pdfs:
            result["pages"] = pages(rec, a.pdfs)
        if a.service:
            import cv2

            pngs = [cv2.imencode(".png", im)[1].tobytes() for im in images]
            result["service"] = service(exp, pngs, a.clients, a.requests, a.workers, a.engine, a.max_active,
                                        a.lines_per_request)
            ref = next(r for r in rows if r["batch"] == 64 and r["engine"] == "ONNX Runtime " +
                       ("fp32" if a.engine == "onnx" else "int8 static"))
            result["service"]["share_of_engine"] = round(result["service"]["lines_per_s"] / ref["lines_per_s"], 3)
    if a.train_data:
        from ocr_robust.training import TrainConfig, Trainer

        with tempfile.TemporaryDirectory() as tmp:
            cfg = TrainConfig(data=a.train_data, out=tmp, epochs=1, batch_size=32, seed=0)
            tr = Trainer(cfg, progress=False)
            r = tr.fit()
            result["training"] = {"model": cfg.model, "batch_size": 32,
                                  "lines_per_s": round(r["history"][0]["train_lines_per_s"], 1),
                                  "epoch_lines": len(tr.train_ds),
                                  "epoch_seconds": round(r["history"][0]["epoch_seconds"], 1)}
    Path(a.json).parent.mkdir(parents=True, exist_ok=True)
    Path(a.json).write_text(json.dumps(result, indent=2), encoding="utf-8")
    report(result)
    return 0


def report(result: dict) -> None:
    print(f"Machine: {result['machine']}; {result['lines']} lines of {result['data']}\n")
    if "engines" not in result:
        print(_service_line(result["service"]))
        return
    f = result["flops"]
    print(f"Forward FLOPs per line (mean width {f['mean_width']} px -> {f['width']}): "
          f"{f['gflops_per_line']:.3f} GFLOP; "
          f"measured peak {f['peak_gflops']} GFLOP/s fp32, {f.get('peak_int8_gops', 'n/a')} GOP/s int8 (the share "
          "of peak of an int8 row is against the int8 peak)\n")
    print("| engine | batch | lines/s | ms/line | p50 ms/call | p99 ms/call | word acc | identical text "
          "| GFLOP/s | share of peak |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in result["engines"]:
        ag = result["agreement"][r["engine"]]
        print(f"| {r['engine']} | {r['batch']} | {r['lines_per_s']} | {r['ms_per_line']} | "
              f"{r['p50_ms']} | {r['p99_ms']} | "
              f"{100 * r['word_acc']:.2f}% | {ag['identical_text']}/{ag['lines']} | {r['gflops_per_s']} | "
              f"{100 * r['share_of_peak']:.1f}% |")
    if result.get("anchors"):
        ours = next((r for r in result["engines"] if r["engine"] == "ONNX Runtime int8 static" and r["batch"] == 64),
                    None)
        print("\n| engine | lines/s | ms/line | word acc | ocr-robust int8 static (batch 64) is faster by |")
        print("|---|---:|---:|---:|---:|")
        for r in result["anchors"]:
            ratio = f"{ours['lines_per_s'] / r['lines_per_s']:.1f}x" if ours else "n/a"
            print(f"| {r['engine']} | {r['lines_per_s']} | {r['ms_per_line']} | {100 * r['word_acc']:.2f}% | {ratio} |")
    print()
    for name, ag in result["agreement"].items():
        print(f"- {name} vs PyTorch: max |log-prob diff| {ag['max_abs_logprob_diff']:.2e}")
    for p in result.get("pages", []):
        print(f"\nPages of {p['pdfs']}: {p['pages']} pages, {p['true_lines']} text-layer lines; segmentation found "
              f"{p['found']} (recall {100 * p['recall']:.1f}%, precision {100 * p['precision']:.1f}%); word accuracy "
              f"of matched lines read from segmentation {100 * p['word_acc_segmented']:.2f}% vs from text-layer boxes "
              f"{100 * p['word_acc_text_layer_boxes']:.2f}%")
    if "service" in result:
        print("\n" + _service_line(result["service"]))
    if "training" in result:
        t = result["training"]
        print(f"\nTraining ({t['model']}, natural, batch {t['batch_size']}): {t['lines_per_s']} lines/s "
              f"({t['epoch_lines']} lines in {t['epoch_seconds']} s)")


def _service_line(s: dict) -> str:
    lines_per_s = s.get("lines_per_s", s["requests_per_s"])
    return (f"Service: {s['requests']} requests of {s.get('lines_per_request', 1)} line(s) from {s['clients']} clients "
            f"in {s['seconds']} s: {s['requests_per_s']} requests/s ({lines_per_s} lines/s), "
            f"p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, errors {s['errors']}; "
            f"{100 * s['share_of_engine']:.1f}% of the engine's lines/s in the same run; "
            f"the load generator used {s['client_cpu_s']} CPU-s; "
            f"{s['batches']} batches, {s['lines_per_batch']} lines per batch; server memory {s['rss_mb_before']} MB "
            f"at start, {s['rss_mb_at_share_of_requests']} of the requests done, {s['rss_mb_after']} MB at the end "
            f"(max {s['rss_mb_max']})")


if __name__ == "__main__":
    sys.exit(main())
