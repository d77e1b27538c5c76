"""Hostile and careless inputs (issue D1-D11): each refused or survived, with the rest kept."""

import concurrent.futures as cf
import signal
import socket
import subprocess
import sys
import time

import cv2
import httpx
import numpy as np
import pytest
from conftest import multipart, raw_request, start_server, write_pdf
from hostile import bmp_claiming, gif_claiming, png_claiming, tiff_claiming, webp_claiming, xobject_bomb_pdf

from ocr_robust.cli import main
from ocr_robust.errors import InputError, TooLarge
from ocr_robust.images import decode_grey, image_size
from ocr_robust.pdf.ingest import IngestConfig, ingest
from ocr_robust.pdf.workers import PageCrash, PageTimeout, PageWorkers


@pytest.fixture(scope="module")
def bomb_and_good(tmp_path_factory):
    d = tmp_path_factory.mktemp("hostile")
    (d / "bomb.pdf").write_bytes(xobject_bomb_pdf(9))  # 10^8 drawings of the leaf: hours of MuPDF work
    write_pdf(d / "good.pdf", [(72, 100, "A good line of text", "helvetica", 12)])
    return d


# --- D1: page work under a deadline -----------------------------------------------------------

def test_page_workers_kill_a_task_at_its_deadline_and_go_on(tmp_path):
    with PageWorkers(1, timeout_s=1.0) as w:
        t0 = time.monotonic()
        with pytest.raises(PageTimeout, match="took longer than 1 s"):
            w.run(time.sleep, 30)
        assert time.monotonic() - t0 < 10 and w.killed == 1
        assert w.run(sum, [1, 2, 3]) == 6  # a fresh process takes the next task
        with pytest.raises(RuntimeError, match="ZeroDivisionError"):
            w.run(divmod, 1, 0)
        with pytest.raises(PageCrash):
            w.run(sys.exit, 3)
        assert w.run(abs, -2) == 2


def test_ingest_and_recognize_report_a_hostile_page_and_keep_the_rest(bomb_and_good, tmp_path, capsys):
    d = bomb_and_good
    t0 = time.monotonic()
    s = ingest([str(d / "bomb.pdf"), str(d / "good.pdf")], IngestConfig(out=str(tmp_path / "o"), page_timeout=2,
                                                                       workers=2), progress=False)
    assert time.monotonic() - t0 < 60
    assert s["lines"] == 1 and s["page_failures"] == [{"file": str(d / "bomb.pdf"), "page": 1,
                                                      "reason": "took longer than 2 s"}]
    rc = main(["recognize", str(d / "bomb.pdf"), str(d / "good.pdf"), "--page-timeout", "2", "--output", "json"])
    out, err = capsys.readouterr()
    assert rc == 0 and "bomb.pdf p.1: skipped: took longer than 2 s" in err
    assert '"file": ' in out and "good.pdf" in out


def _health_times(url: str, seconds: float) -> list[float]:
    """/healthz answer times, polled for ``seconds``."""
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        t = time.monotonic()
        assert httpx.get(url + "/healthz", timeout=10).status_code == 200
        out.append(time.monotonic() - t)
        time.sleep(0.2)
    return out


def test_the_service_keeps_answering_through_a_hostile_pdf_and_sigterm_stops_it(tiny_run, bomb_and_good):
    bomb = (bomb_and_good / "bomb.pdf").read_bytes()
    proc, url = start_server(tiny_run[0], "--timeout", "4", "--page-timeout", "30", "--max-active", "1",
                             "--max-queued", "0")
    try:
        with cf.ThreadPoolExecutor(2) as pool:
            fut = pool.submit(httpx.post, url + "/v1/pdf", files={"file": ("bomb.pdf", bomb, "application/pdf")},
                              timeout=60)
            time.sleep(1.0)
            # the one active slot is taken: a second request is refused at once, and says when to retry
            busy = httpx.post(url + "/v1/recognize", timeout=10,
                              files={"images": ("a.png", cv2.imencode(".png", np.full((20, 60), 255, np.uint8))[1]
                                                .tobytes(), "image/png")})
            times = _health_times(url, 2.5)
            r = fut.result()
        assert busy.status_code == 429 and busy.headers["retry-after"] == "1" and "busy" in busy.json()["error"]
        assert r.status_code == 504 and "longer than 4 s" in r.json()["error"]
        assert max(times) < 1.0, times  # /healthz answered throughout
        # a page timeout shorter than the request's: the page fails alone, with its reason
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(40) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()
    proc, url = start_server(tiny_run[0], "--timeout", "30", "--page-timeout", "2")
    try:
        r = httpx.post(url + "/v1/pdf", files={"file": ("bomb.pdf", bomb, "application/pdf")}, timeout=60)
        assert r.status_code == 200 and r.json()["pages"][0]["error"] == "took longer than 2 s"
    finally:
        proc.terminate()
        proc.wait(40)


# --- D2, D5, D6: bodies counted and timed, one error shape ------------------------------------

@pytest.fixture(scope="module")
def guarded(tiny_run):
    proc, url = start_server(tiny_run[0], "--max-body-mb", "1", "--body-timeout", "2", "--header-timeout", "2",
                             "--max-image-pixels", "200000", "--max-request-pixels", "300000")
    yield url
    proc.terminate()
    proc.wait(40)


def _exchange(url: str, raw: bytes, trickle: float = 0.0) -> bytes:
    host, port = url.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=20) as s:
        try:  # the server may answer and close before all is sent: what it said is still to read
            if trickle:
                for k in range(0, len(raw), 40):
                    s.sendall(raw[k:k + 40])
                    time.sleep(trickle)
            else:
                s.sendall(raw)
        except OSError:
            pass
        out = b""
        while True:
            try:
                got = s.recv(65536)
            except OSError:
                break
            if not got:
                break
            out += got
        return out


def test_a_chunked_body_is_counted_as_it_arrives_whatever_its_length_says(guarded):
    body = multipart("images", "a.png", b"\x89PNG" + b"0" * 3_000_000)
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[k:k + 65536]), body[k:k + 65536])
                      for k in range(0, len(body), 65536)) + b"0\r\n\r\n"
    head = (b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XX\r\n"
            b"Content-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n")
    answer = _exchange(guarded, head + chunks)
    assert answer.startswith(b"HTTP/1.1 413") and b"exceeds the limit of 1048576 bytes" in answer


def test_slow_bodies_get_408_and_silent_connections_are_closed(guarded):
    body = multipart("images", "a.png", b"x" * 400)
    head = (b"POST /v1/recognize HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=XX\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body))
    t0 = time.monotonic()
    answer = _exchange(guarded, head + body, trickle=0.3)  # 400 bytes over about 4 s
    assert answer.startswith(b"HTTP/1.1 408") and b"did not arrive within 2 s" in answer
    s = raw_request(guarded, "/v1/recognize", body, send=10)  # stalls mid-body: 408, then closed
    s.settimeout(20)
    assert s.recv(4096).startswith(b"HTTP/1.1 408")
    s.close()
    host, port = guarded.split("//")[1].split(":")
    with socket.create_connection((host, int(port)), timeout=20) as s:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never finished
        assert s.recv(4096) == b""  # closed by the header timeout
    assert time.monotonic() - t0 < 30
    assert httpx.get(guarded + "/healthz").status_code == 200


def test_every_error_has_one_shape_and_the_schema_lists_them(guarded):
    cases = [httpx.get(guarded + "/nothing"), httpx.delete(guarded + "/v1/recognize"),
             httpx.post(guarded + "/v1/recognize", content=b"--x\r\n", headers={"content-type": "multipart/form-data"}),
             httpx.post(guarded + "/v1/recognize", files={"images": ("a.txt", b"hello", "text/plain")})]
    assert [r.status_code for r in cases] == [404, 405, 400, 400]
    for r in cases:
        assert set(r.json()) == {"error"} and r.json()["error"], r.text
    schema = httpx.get(guarded + "/openapi.json").json()
    for path in ("/v1/recognize", "/v1/pdf"):
        codes = set(schema["paths"][path]["post"]["responses"])
        assert {"400", "404", "408", "411", "413", "429", "504"} <= codes
    assert "ErrorBody" in schema["components"]["schemas"]


# --- D3, D4: image sizes from headers, a pixel budget per request -----------------------------

HUGE = {"tiff": tiff_claiming(20000, 20000), "gif": gif_claiming(30000, 30000), "bmp": bmp_claiming(20000, 20000),
        "webp": webp_claiming(16000, 16000), "png": png_claiming(20000, 20000)}


def test_huge_images_are_refused_from_their_headers_in_every_accepted_format():
    for kind, data in HUGE.items():
        assert image_size(data)[0] >= 16000, kind
        with pytest.raises(TooLarge, match=f"x.{kind}: cannot decode the image: an image of .* exceeds the limit"):
            decode_grey(data, f"x.{kind}")
    for ext in (".png", ".jpg", ".tif", ".bmp", ".webp", ".pgm"):
        ok, enc = cv2.imencode(ext, np.full((30, 40), 200, np.uint8))
        assert image_size(enc.tobytes()) == (40, 30), ext
        assert decode_grey(enc.tobytes(), "x" + ext).shape == (30, 40), ext
    with pytest.raises(InputError, match="not PNG, JPEG, TIFF, GIF, WebP, BMP, PNM"):
        decode_grey(b"\x00\x01\x02\x03" * 10, "odd.bin")


def test_the_cli_refuses_a_huge_image_by_name(tmp_path, capsys):
    (tmp_path / "big.tif").write_bytes(HUGE["tiff"])
    assert main(["recognize", str(tmp_path / "big.tif")]) == 1
    assert "big.tif: cannot decode the image: an image of 20000x20000 pixels exceeds" in capsys.readouterr().err


def test_the_service_refuses_huge_images_and_requests_over_the_pixel_budget(guarded):
    for kind, data in HUGE.items():
        r = httpx.post(guarded + "/v1/recognize", files={"images": (f"x.{kind}", data, "image/" + kind)})
        assert r.status_code == 413 and "exceeds the limit" in r.json()["error"], (kind, r.text)
    white = cv2.imencode(".png", np.full((400, 400), 255, np.uint8))[1].tobytes()  # 160,000 pixels each
    r = httpx.post(guarded + "/v1/recognize", files=[("images", (f"{k}.png", white, "image/png")) for k in range(2)])
    assert r.status_code == 413 and "320000 pixels together exceed the limit of 300000" in r.json()["error"]
    r = httpx.post(guarded + "/v1/recognize", files={"images": ("w.png", white, "image/png")})
    assert r.status_code == 200


def test_a_slow_client_does_not_hold_a_work_slot(tiny_run):
    """The active-request bound counts requests being worked on, not bodies still arriving."""
    proc, url = start_server(tiny_run[0], "--max-active", "1", "--max-queued", "0", "--body-timeout", "20")
    try:
        body = multipart("images", "a.png", b"x" * 400)
        slow = raw_request(url, "/v1/recognize", body, send=50)
        png = cv2.imencode(".png", np.full((20, 60), 255, np.uint8))[1].tobytes()
        r = httpx.post(url + "/v1/recognize", files={"images": ("a.png", png, "image/png")}, timeout=20)
        assert r.status_code == 200
        slow.close()
    finally:
        proc.terminate()
        proc.wait(40)


def test_serve_rejects_bad_limits_in_one_line():
    r = subprocess.run([sys.executable, "-m", "ocr_robust.cli", "serve", "--page-timeout", "0"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "page timeout: expected a positive number, got 0.0" in r.stderr
    assert "Traceback" not in r.stderr
