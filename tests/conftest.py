from __future__ import annotations

import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pymupdf
import pytest

from ocr_robust.pdf.fonts import resolve_fonts
from ocr_robust.pdf.synth import SynthConfig, draw_page, plan_page, synthesize


def write_pdf(path: Path, lines: list[tuple[float, float, str, str, float]], rotation: int = 0,
              size=(595, 842)) -> Path:
    """A one-page PDF with (x, y, text, font key, size) lines."""
    from ocr_robust.pdf.fonts import load_font

    doc = pymupdf.open()
    page = doc.new_page(width=size[0], height=size[1])
    tw = pymupdf.TextWriter(page.rect)
    for x, y, text, font, fs in lines:
        tw.append((x, y), text, font=load_font(font), fontsize=fs)
    tw.write_text(page)
    if rotation:
        page.set_rotation(rotation)
    doc.save(path)
    return path


def spec_pdf(path: Path, seed: int, kind: str, styles: list[str], watermarks: bool = True):
    # the packaged faces: some system faces' advance widths make synth's table columns touch,
    # and the text layer then joins two cells (the label is still what the page shows)
    spec = plan_page(random.Random(seed), resolve_fonts("packaged"), styles, clean_fraction=0.0, kind=kind)
    doc = pymupdf.open()
    draw_page(doc, spec, watermarks=watermarks)
    doc.save(path)
    return spec


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("corpus")
    synthesize(SynthConfig(out=str(out), pages=4, seed=7, watermarks="all", pages_per_doc=2), progress=False)
    return out


@pytest.fixture(scope="session")
def lines_store(corpus, tmp_path_factory) -> Path:
    from ocr_robust.pdf.ingest import IngestConfig, ingest

    out = tmp_path_factory.mktemp("lines")
    ingest(sorted(str(p) for p in corpus.glob("*.pdf")), IngestConfig(out=str(out), workers=1), progress=False)
    return out


def short_lines(src_dir: Path, out: Path, n: int, min_len: int = 0, max_len: int = 20) -> Path:
    """A folder store of the first ``n`` lines of ``src_dir`` whose text has ``min_len`` to
    ``max_len`` characters (small, fast training and attack inputs)."""
    from ocr_robust.data.store import FolderStore, FolderWriter

    src = FolderStore(src_dir)
    with FolderWriter(out) as w:
        k = 0
        for i in range(len(src)):
            if min_len <= len(src.text(i)) <= max_len and k < n:
                w.add(f"{k}.png", src.text(i), src.image_bytes(i))
                k += 1
    return out


@pytest.fixture(scope="session")
def tiny_store(lines_store, tmp_path_factory):
    """The first 24 short lines of the generated corpus."""
    return short_lines(lines_store, tmp_path_factory.mktemp("tiny"), 24)


@pytest.fixture(scope="session")
def tiny_run(tiny_store, tmp_path_factory):
    """A tiny natural run: crnn-small, 12 epochs of 3 batches on the 24 lines."""
    from ocr_robust.training import TrainConfig, Trainer

    out = tmp_path_factory.mktemp("run")
    # on the CPU: tests compare its weights bit for bit with a resumed run, and CUDA's CTC and
    # LSTM backward passes are not deterministic
    cfg = TrainConfig(data=str(tiny_store), val=str(tiny_store), out=str(out), epochs=12, batch_size=8, lr=3e-3,
                      augment=0.0, seed=1, device="cpu")
    result = Trainer(cfg, progress=False).fit()
    return out, result


# --- the service, run for real -------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(model, *options: str) -> tuple[subprocess.Popen, str]:
    """``ocr-robust serve`` on a free localhost port, once its /healthz answers."""
    import tempfile

    port = _free_port()
    log = tempfile.TemporaryFile()  # not a pipe: a full pipe would block the server's logging
    proc = subprocess.Popen([sys.executable, "-m", "ocr_robust.cli", "serve", "--model", str(model),
                             "--port", str(port), *options], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    for _ in range(300):
        try:
            if httpx.get(url + "/healthz", timeout=1).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.1)
        if proc.poll() is not None:
            log.seek(0)
            raise RuntimeError(log.read().decode(errors="replace"))
    proc.kill()
    raise RuntimeError("the service did not start")


def raw_request(url: str, path: str, body: bytes, send: int | None = None) -> socket.socket:
    """Open a connection and send a multipart POST's headers and the first ``send`` body bytes."""
    host, port = url.split("//")[1].split(":")
    s = socket.create_connection((host, int(port)))
    head = (f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: multipart/form-data; boundary=XX\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode()
    s.sendall(head + body[: len(body) if send is None else send])
    return s


def multipart(name: str, filename: str, data: bytes) -> bytes:
    return (f"--XX\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n").encode() + data + b"\r\n--XX--\r\n"
