#!/usr/bin/env python3
"""The service under the hostile inputs of issue 19 (D1-D5), run for real: does /healthz keep
answering, what does each input get, and how much memory does the service hold?

    python benchmarks/bench_service_limits.py [--model pretrained/latin] [--src DIR] [--only d1,d4]

Each scenario starts a fresh ``ocr-robust serve`` (from ``--src``, a checkout of the
package, default this one: point it at an older checkout to measure "before"), sends its
input, polls ``/healthz`` every 0.2 s meanwhile, and samples the memory of the server and
its child processes (page workers; proportional set size, shared pages counted once) every
50 ms. The rows go to
``benchmarks/results/service-limits[-LABEL].json``.

- d1: a 4.4-KB PDF of form XObjects nested 9 deep (10^8 drawings) to ``/v1/pdf``, then SIGTERM;
- d2: a chunked 100-MB body that also says ``Content-Length: 100``;
- d3: a 372-KB RGBA TIFF of 8000 x 8000 pixels and a 1-bit TIFF of 20000 x 20000;
- d4: 256 white 2000 x 2000 PNGs (6.5 KB each) in one request, 4 such requests at once;
- d4-legal: the most the limits allow: ``--max-active`` requests at ``--max-request-pixels``
  each, and ``--max-queued`` more waiting, all at once;
- d5: a body trickled over 15 s, and a body that stalls half-way.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import io
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import cv2
import httpx
import numpy as np
import psutil

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from bench_ingest import machine  # noqa: E402
from hostile import xobject_bomb_pdf  # noqa: E402


class Server:
    def __init__(self, src: Path, model: str, *options: str):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "PYTHONPATH": str(src)}
        self.log = tempfile.TemporaryFile()
        self.proc = subprocess.Popen([sys.executable, "-m", "ocr_robust.cli", "serve", "--model", model, "--port",
                                      str(self.port), *options], stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                     cwd=src)
        for _ in range(600):
            try:
                if httpx.get(self.url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
            if self.proc.poll() is not None:
                self.log.seek(0)
                raise RuntimeError(self.log.read().decode(errors="replace")[-2000:])
        self.base_mb = self.rss_mb()
        self.peak_mb = self.base_mb
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def rss_mb(self) -> float:
        """Proportional set size of the server and its children (page workers, their
        forkserver), so that pages they share are counted once; RSS where PSS is unknown."""
        try:
            p = psutil.Process(self.proc.pid)
            total = 0
            for q in [p, *p.children(recursive=True)]:
                try:
                    total += q.memory_full_info().pss
                except (psutil.Error, AttributeError):
                    total += q.memory_info().rss
            return total / 2**20
        except psutil.Error:
            return 0.0

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, self.rss_mb())
            time.sleep(0.05)

    def health(self, seconds: float, stop: threading.Event | None = None) -> dict:
        """/healthz latencies over ``seconds`` (or until ``stop``): the worst, and failures."""
        worst, fails, n = 0.0, 0, 0
        end = time.monotonic() + seconds
        while time.monotonic() < end and not (stop and stop.is_set()):
            t = time.monotonic()
            try:
                ok = httpx.get(self.url + "/healthz", timeout=5).status_code == 200
            except httpx.TransportError:
                ok = False
            worst, fails, n = max(worst, time.monotonic() - t), fails + (not ok), n + 1
            time.sleep(0.2)
        return {"polls": n, "worst_s": round(worst, 3), "failed": fails}

    def stop(self) -> dict:
        self._stop.set()
        t = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
            how = "SIGTERM"
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            how = "SIGKILL (SIGTERM ignored for 30 s)"
        return {"stopped_by": how, "stop_s": round(time.monotonic() - t, 1)}


def _send(url: str, raw: bytes, trickle_s: float = 0.0, stall: bool = False, timeout: float = 60) -> dict:
    host, port = url.split("//")[1].split(":")
    t0 = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        try:
            if trickle_s:
                step = max(1, len(raw) // 60)
                for k in range(0, len(raw), step):
                    s.sendall(raw[k:k + step])
                    time.sleep(trickle_s / 60)
            elif stall:
                s.sendall(raw[: len(raw) // 2])
            else:
                s.sendall(raw)
        except OSError:
            pass
        out = b""
        try:
            while True:
                got = s.recv(65536)
                if not got:
                    break
                out += got
        except OSError as e:
            out = out or f"({type(e).__name__})".encode()
    return {"answer": out.split(b"\r\n")[0].decode(errors="replace") or "(connection closed, no answer)",
            "body": out.split(b"\r\n\r\n", 1)[-1][:160].decode(errors="replace"),
            "seconds": round(time.monotonic() - t0, 1)}


def _multipart(files: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for name, data in files:
        out += (f"--XX\r\nContent-Disposition: form-data; name=\"images\"; filename=\"{name}\"\r\n"
                "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n"
    return out + b"--XX--\r\n"


def _post(url: str, path: str, files, timeout: float = 120) -> dict:
    t0 = time.monotonic()
    try:
        r = httpx.post(url + path, files=files, timeout=timeout)
        return {"status": r.status_code, "error": r.json().get("error") if r.status_code != 200 else None,
                "seconds": round(time.monotonic() - t0, 1)}
    except httpx.HTTPError as e:
        return {"status": None, "error": f"{type(e).__name__}", "seconds": round(time.monotonic() - t0, 1)}


def d1(src, model):
    s = Server(src, model)
    bomb = xobject_bomb_pdf(9)
    pool = cf.ThreadPoolExecutor(1)
    done = threading.Event()
    fut = pool.submit(_post, s.url, "/v1/pdf", {"file": ("bomb.pdf", bomb, "application/pdf")}, 75)
    fut.add_done_callback(lambda _: done.set())
    time.sleep(0.5)
    health = s.health(75, stop=done)
    resp = fut.result() if fut.done() else {"status": None, "error": "no answer in 75 s"}
    pool.shutdown(wait=False)
    row = {"input": f"xobject bomb PDF, {len(bomb)} bytes", "response": resp, "healthz": health,
           "peak_mb": round(s.peak_mb), "base_mb": round(s.base_mb)}
    row.update(s.stop())
    return row


def d2(src, model):
    s = Server(src, model)
    body = _multipart([("a.png", b"\x89PNG" + b"0" * (100 * 2**20))])
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[k:k + 2**20]), body[k:k + 2**20])
                      for k in range(0, len(body), 2**20)) + b"0\r\n\r\n"
    head = (b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XX\r\n"
            b"Content-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n")
    resp = _send(s.url, head + chunks, timeout=120)
    row = {"input": "chunked body of 100 MB declaring Content-Length: 100", "response": resp,
           "healthz": s.health(1), "peak_mb": round(s.peak_mb), "base_mb": round(s.base_mb)}
    row.update(s.stop())
    return row


def d3(src, model):
    from PIL import Image

    s = Server(src, model)
    rows = []
    rgba = cv2.imencode(".tif", np.zeros((8000, 8000, 4), np.uint8))[1].tobytes()
    buf = io.BytesIO()
    Image.new("1", (20000, 20000), 1).save(buf, "TIFF", compression="group4")
    for name, data in (("rgba-8000.tif", rgba), ("1bit-20000.tif", buf.getvalue())):
        before = s.peak_mb
        resp = _post(s.url, "/v1/recognize", {"images": (name, data, "image/tiff")})
        rows.append({"input": f"{name}, {len(data) // 1024} KB", "response": resp,
                     "peak_mb": round(s.peak_mb), "grew_mb": round(s.peak_mb - before)})
    row = {"inputs": rows, "healthz": s.health(1), "base_mb": round(s.base_mb)}
    row.update(s.stop())
    return row


def d4(src, model):
    s = Server(src, model)
    white = cv2.imencode(".png", np.full((2000, 2000), 255, np.uint8))[1].tobytes()
    files = [("images", (f"{k}.png", white, "image/png")) for k in range(256)]
    with cf.ThreadPoolExecutor(4) as pool:
        stop = threading.Event()
        h = pool.submit(s.health, 600, stop)
        resps = list(pool.map(lambda _: _post(s.url, "/v1/recognize", files, 300), range(3)))
        stop.set()
        health = h.result()
    time.sleep(1)
    row = {"input": f"256 white 2000x2000 PNGs of {len(white)} bytes, 3 such requests at once (+ /healthz polls)",
           "responses": resps, "healthz": health, "peak_mb": round(s.peak_mb), "base_mb": round(s.base_mb),
           "after_mb": round(s.rss_mb())}
    row.update(s.stop())
    return row


def d4_legal(src, model, active=4, queued=16, pixels=16_000_000):
    """The worst the limits allow: active requests at the pixel budget, and the queue full."""
    s = Server(src, model)
    big = cv2.imencode(".png", np.full((1999, 1999), 255, np.uint8))[1].tobytes()  # 4 of them: the pixel budget
    files = [("images", (f"{k}.png", big, "image/png")) for k in range(4)]
    with cf.ThreadPoolExecutor(active + queued + 1) as pool:
        stop = threading.Event()
        h = pool.submit(s.health, 600, stop)
        resps = list(pool.map(lambda _: _post(s.url, "/v1/recognize", files, 600), range(active + queued)))
        stop.set()
        health = h.result()
    row = {"input": f"{active + queued} requests at once, each 4 white 1999x1999 PNGs ({4 * 1999 * 1999:,} pixels, "
                    f"the --max-request-pixels budget {pixels:,})",
           "statuses": sorted({r["status"] for r in resps}, key=str), "slowest_s": max(r["seconds"] for r in resps),
           "healthz": health, "peak_mb": round(s.peak_mb), "base_mb": round(s.base_mb), "after_mb": round(s.rss_mb())}
    row.update(s.stop())
    return row


def d5(src, model):
    s = Server(src, model)
    body = _multipart([("a.png", cv2.imencode(".png", np.full((32, 200), 255, np.uint8))[1].tobytes())])
    head = (b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XX\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    with cf.ThreadPoolExecutor(2) as pool:
        trickle = pool.submit(_send, s.url, head + body, 15.0, False, 90)
        stall = pool.submit(_send, s.url, head + body, 0.0, True, 90)
        health = s.health(16)
        rows = {"trickled over 15 s": trickle.result(), "stalled half-way": stall.result()}
    head_only = _send(s.url, b"GET /healthz HTTP/1.1\r\nHost: x\r\n", 0.0, False, 90)
    row = {"inputs": rows, "headers never finished": head_only, "healthz": health}
    row.update(s.stop())
    return row


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default=str(HERE.parent / "pretrained" / "latin"))
    ap.add_argument("--src", default=str(HERE.parent), help="the checkout to run the service from")
    ap.add_argument("--only", help="comma-separated scenarios (d1,d2,d3,d4,d4-legal,d5)")
    ap.add_argument("--label", default="", help="suffix of the results file (e.g. before)")
    a = ap.parse_args()
    src, model = Path(a.src).resolve(), str(Path(a.model).resolve())
    todo = {"d1": d1, "d2": d2, "d3": d3, "d4": d4, "d4-legal": d4_legal, "d5": d5}
    names = a.only.split(",") if a.only else list(todo)
    out = HERE / "results" / f"service-limits{'-' + a.label if a.label else ''}.json"
    old = json.loads(out.read_text(encoding="utf-8")) if out.is_file() and a.only else {}  # --only: update those rows
    result = {"machine": machine(), "src": str(src), "model": model, "rows": old.get("rows", {})}
    for name in names:
        print(f"{name} ...", flush=True)
        try:
            result["rows"][name] = todo[name](src, model)
        except Exception as e:  # a scenario that breaks the old service is a result too
            result["rows"][name] = {"error": f"{type(e).__name__}: {e}"[:500]}
        print(json.dumps(result["rows"][name], indent=1)[:1500], flush=True)
        out.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
