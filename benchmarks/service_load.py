#!/usr/bin/env python3
"""Load a running ``ocr-robust serve`` with the real suite's clean lines, as
``bench_inference.py --service`` does, to compare servers started by hand (another checkout,
other flags):

    python benchmarks/service_load.py --port 8000 [--requests 2000] [--lines-per-request 16]

The requests are built before the clock starts and sent by ``bench_inference.load`` (raw
asyncio streams, keep-alive) from ``--clients`` connections; prints lines/s, p50 and errors.
The first 200 requests warm the server up and are not counted.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench_inference import load, multipart_request  # noqa: E402

from ocr_robust.data.store import open_store  # noqa: E402
from ocr_robust.images import decode_grey  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--data", default="benchmarks/work/real-suite/clean")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--lines-per-request", type=int, default=1)
    ap.add_argument("--clients", type=int, default=50)
    a = ap.parse_args()
    st = open_store(a.data)
    pngs = [cv2.imencode(".png", decode_grey(st.image_bytes(i), st.name(i)))[1].tobytes() for i in range(len(st))]
    k = a.lines_per_request

    def requests(n: int) -> list[bytes]:
        return [multipart_request(f"127.0.0.1:{a.port}", "/v1/recognize",
                                  [(f"{i}-{j}.png", pngs[(i * k + j) % len(pngs)]) for j in range(k)])
                for i in range(n)]

    asyncio.run(load(a.port, requests(200), a.clients, [], []))
    todo, lat, errors = requests(a.requests), [], []
    t = time.perf_counter()
    asyncio.run(load(a.port, todo, a.clients, lat, errors))
    dt = time.perf_counter() - t
    print(f"{a.requests} requests of {k} line(s): {a.requests * k / dt:.1f} lines/s, {a.requests / dt:.1f} requests/s, "
          f"p50 {1000 * np.median(lat):.0f} ms, errors {len(errors)} {errors[:2]}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
