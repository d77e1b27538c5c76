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
    with PageWorkers(1, timeout_s=30, memory_mb=200) as w:  # page work has a memory bound too
        with pytest.raises(RuntimeError, match="MemoryError"):
            w.run(bytearray, 500 * 2**20)
        assert len(w.run(bytearray, 50 * 2**20)) == 50 * 2**20


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


# --- D7: a truncated image in a store is skipped and counted ---------------------------------

def _damaged_copy(store, out, n_bad=1):
    import shutil

    shutil.copytree(store, out)
    names = [line.split("\t")[0] for line in (out / "labels.tsv").read_text(encoding="utf-8").splitlines()]
    for name in names[:n_bad]:
        data = (out / name).read_bytes()
        (out / name).write_bytes(data[: len(data) // 2])  # the header survives, the pixels do not
    return out, names[:n_bad]


def test_bench_and_train_skip_a_truncated_line_and_report_it(tiny_run, tiny_store, tmp_path, capsys):
    data, bad = _damaged_copy(tiny_store, tmp_path / "d")
    assert main(["bench", "--model", str(tiny_run[0]), "--data", str(data)]) == 0
    out, err = capsys.readouterr()
    assert "23 " in out and "(1 lines skipped" in out and bad[0] in out
    rc = main(["train", "--data", str(data), "--val", str(tiny_store), "--out", str(tmp_path / "r"), "--epochs", "1",
               "--batch-size", "8", "--quiet", "--max-unreadable", "0.1"])
    err = capsys.readouterr().err
    assert rc == 0 and "1 lines skipped: their images did not decode" in err and bad[0] in err
    data2, _ = _damaged_copy(tiny_store, tmp_path / "d2", n_bad=6)
    rc = main(["train", "--data", str(data2), "--val", str(tiny_store), "--out", str(tmp_path / "r2"), "--epochs",
               "1", "--batch-size", "8", "--quiet", "--max-unreadable", "0.1"])
    err = capsys.readouterr().err
    assert rc == 2 and "lines' images do not decode, more than max_unreadable 0.1 of the 24" in err


# --- D8, D9: broken model files and configs, one line each; file entries stay inside ---------

@pytest.fixture(scope="module")
def export_dir(tiny_run, tmp_path_factory):
    from ocr_robust.export import export

    out = tmp_path_factory.mktemp("exp")
    export(tiny_run[0], out, "onnx")
    return out


def _broken(export_dir, tmp_path, name, change):
    import json
    import shutil

    d = tmp_path / name
    shutil.copytree(export_dir, d)
    meta = json.loads((d / "model.json").read_text())
    change(d, meta)
    (d / "model.json").write_text(json.dumps(meta))
    return d


def test_broken_models_fail_in_one_line_naming_the_file(export_dir, tiny_store, tmp_path, capsys):
    line = str(next(tiny_store.glob("images/*.png")))
    cases = {
        "garbage onnx": (lambda d, m: (d / "model.onnx").write_bytes(b"\x00garbage" * 100), [],
                         "model.onnx: not a readable ONNX model"),
        "empty onnx": (lambda d, m: (d / "model.onnx").write_bytes(b""), [], "model.onnx: not a readable ONNX"),
        "truncated onnx": (lambda d, m: (d / "model.onnx").write_bytes((export_dir / "model.onnx").read_bytes()[:5000]),
                           [], "model.onnx: not a readable ONNX model"),
        "garbage safetensors": (lambda d, m: (d / "model.safetensors").write_bytes(b"{junk" * 50),
                                ["--engine", "torch"], "model.safetensors: cannot load the export's PyTorch weights"),
        "no input": (lambda d, m: m.pop("input"), [], "model.json: malformed model description: no 'input'"),
        "height 0": (lambda d, m: m["input"].update(height=0), [], "model.json: malformed model description: input "
                                                                    "height 0"),
        "short charset": (lambda d, m: m.update(charset=m["charset"][:-5]), [],
                          "output classes but its charset"),
        "absolute path": (lambda d, m: m["formats"].update(onnx="/etc/passwd"), [],
                          "file entry 'onnx': '/etc/passwd' is not a plain file name"),
        "leaves the folder": (lambda d, m: m["formats"].update(onnx="../../etc/passwd"), [],
                              "'../../etc/passwd' is not a plain file name"),
    }
    for name, (change, extra, message) in cases.items():
        d = _broken(export_dir, tmp_path, name.replace(" ", "-"), change)
        rc = main(["recognize", "--model", str(d), line, *extra])
        err = capsys.readouterr().err
        assert rc == 2 and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, \
            (name, rc, err)
    d = _broken(export_dir, tmp_path, "serve", cases["garbage onnx"][0])
    r = subprocess.run([sys.executable, "-m", "ocr_robust.cli", "serve", "--model", str(d)], capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 2 and "not a readable ONNX model" in r.stderr and "Traceback" not in r.stderr


def test_torchscript_is_read_only_when_asked_for(export_dir, tmp_path):
    from ocr_robust.inference import Recognizer

    def only_torchscript(d, m):
        (d / "model.ts").write_bytes(b"not even TorchScript")
        m["formats"] = {"torchscript": "model.ts"}

    d = _broken(export_dir, tmp_path, "ts", only_torchscript)
    assert Recognizer(d).engine == "torch"  # auto never picks TorchScript: it is code
    with pytest.raises(InputError, match="model.ts: not a readable TorchScript model"):
        Recognizer(d, engine="torchscript")


def test_config_values_and_option_tags_fail_in_one_line(tmp_path, capsys):
    (tmp_path / "h.yaml").write_text("data: d\nheight: 0\n", encoding="utf-8")
    assert main(["train", "--config", str(tmp_path / "h.yaml")]) == 2
    assert "h.yaml: unknown config keys: height" in capsys.readouterr().err
    assert main(["train", "--data", "d", "--opt", "x=!!python/object/apply:os.system ['touch PWNED']"]) == 2
    err = capsys.readouterr().err
    assert "not a plain YAML value" in err and not (tmp_path / "PWNED").exists() and "Traceback" not in err
    assert main(["train", "--data", "d", "--epochs", "0"]) == 2
    assert "epochs: expected a positive" in capsys.readouterr().err


# --- D10: a run folder is never overwritten silently ------------------------------------------

def test_train_refuses_an_existing_run_unless_resumed_or_overwritten(tiny_store, tmp_path, capsys):
    args = ["train", "--data", str(tiny_store), "--val", str(tiny_store), "--out", str(tmp_path / "r"), "--epochs",
            "1", "--batch-size", "8", "--quiet", "--report-images", "0"]
    assert main(args + ["--resume"]) == 2
    assert "nothing to resume: no training state (last.state.pt)" in capsys.readouterr().err
    assert main(args) == 0
    before = (tmp_path / "r" / "metrics.jsonl").read_text()
    assert main(args) == 2
    assert "already holds a run" in capsys.readouterr().err
    assert (tmp_path / "r" / "metrics.jsonl").read_text() == before  # nothing touched
    assert main(args + ["--overwrite"]) == 0
    assert len((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()) == 1  # a new run, not appended


# --- D11: labels longer than their images can hold ---------------------------------------------

def test_labels_longer_than_the_image_are_skipped_everywhere(tiny_store, tmp_path, capsys):
    import shutil

    from ocr_robust.charset import Charset
    from ocr_robust.data.dataset import LineDataset

    d = tmp_path / "s"
    shutil.copytree(tiny_store, d)
    rows = (d / "labels.tsv").read_text(encoding="utf-8").splitlines()
    name = rows[0].split("\t")[0]
    rows[0] = f"{name}\t{'a' * 10_000_000}"
    (d / "labels.tsv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    ds = LineDataset.open(d, Charset.load("latin"))
    assert len(ds) == 23 and any("a label of 10000000 characters is longer than its" in p for p in ds.problems)
    # ingest: a line whose text cannot fit its crop is skipped and counted
    lines = [(72, 100, "i" * 400, "helvetica", 1.0), (72, 200, "A fine line", "helvetica", 12)]
    pdf = write_pdf(tmp_path / "tiny.pdf", lines)
    s = ingest([str(pdf)], IngestConfig(out=str(tmp_path / "o"), min_height_px=1), progress=False)
    assert s["lines"] == 1 and s["lines_skipped"].get("label longer than its line image can hold") == 1


def test_the_fuzzers_findings_are_reported_in_our_words():
    """Inputs benchmarks/fuzz.py found: a damaged page tree made page_count raise out of
    check_document (now a file failure in our words); a mutated XObject bomb that hangs."""
    from pathlib import Path

    from ocr_robust.pdf.ingest import check_document

    found = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "fuzz-findings-first"
    escapes = sorted(found.glob("*-escape.bin"))
    assert escapes
    for f in escapes:
        n, why, _ = check_document(str(f))
        assert n == 0 and why.startswith("not a readable PDF"), (f.name, why)
