"""Export formats with parity, reading PDFs and page images, and the HTTP service run for real."""

import concurrent.futures as cf
import json
import os
import signal
import time

import cv2
import httpx
import numpy as np
import pymupdf
import pytest
from conftest import multipart, raw_request, start_server

from ocr_robust.cli import main
from ocr_robust.data.crop import is_blank
from ocr_robust.data.store import FolderStore
from ocr_robust.errors import ExportError, InputError
from ocr_robust.export import export
from ocr_robust.images import decode_grey
from ocr_robust.inference import Recognizer
from ocr_robust.pdf.layout import crop_line, render, same_line, segment_lines, text_lines


@pytest.fixture(scope="module")
def exported(tiny_run, tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    r = export(tiny_run[0], out, "all", quantize="int8", sample=str(tiny_store))
    return out, r


def _lines(store_dir, n=None):
    s = FolderStore(store_dir)
    k = len(s) if n is None else n
    return [decode_grey(s.image_bytes(i), s.name(i)) for i in range(k)], [s.path / s.name(i) for i in range(k)]


def test_every_format_round_trips_with_parity(exported, tiny_run, tiny_store):
    out, r = exported
    assert set(r["parity"]) == {"onnx", "torchscript", "onnx_int8"}
    for fmt in ("onnx", "torchscript"):
        assert r["parity"][fmt]["max_abs_diff"] < 1e-3 and r["parity"][fmt]["agreement"] == 1.0
    assert r["parity"]["onnx_int8"]["agreement"] >= 0.9
    meta = json.loads((out / "model.json").read_text())
    assert meta["formats"] == {"onnx": "model.onnx", "torchscript": "model.ts", "onnx_int8": "model.int8.onnx"}
    assert meta["onnx_opset"] == 17 and meta["training_mode"] == "natural" and meta["version"]
    assert meta["figures"]["validation_last"]["epoch"] == 12 and meta["decoder"]["method"] == "greedy"
    images, _ = _lines(tiny_store)
    reference = [d.text for d in Recognizer(tiny_run[0]).recognize(images)]
    for engine in ("onnx", "torchscript", "torch"):
        assert [d.text for d in Recognizer(out, engine=engine).recognize(images)] == reference, engine
    int8 = [d.text for d in Recognizer(out, engine="int8").recognize(images)]
    assert sum(a == b for a, b in zip(int8, reference)) >= 0.9 * len(images)


def test_static_int8_quantises_the_convolutions_calibrated_and_checks_accuracy(exported, tiny_run, tmp_path):
    import onnx

    out, r = exported
    meta = json.loads((out / "model.json").read_text())
    assert meta["int8"]["method"] == "static QDQ" and meta["int8"]["ops"] == ["Conv", "Relu", "MaxPool"]
    assert meta["int8"]["calibration_lines"] > 0
    acc = r["parity"]["onnx_int8"]
    assert acc["lines"] > 0 and acc["words_lost"] <= max(acc["max_drop"] * acc["words"], 2)
    g = onnx.load(str(out / "model.int8.onnx")).graph
    int8_weights = {i.name for i in g.initializer if i.data_type == onnx.TensorProto.INT8}
    made_by = {o: n for n in g.node for o in n.output}
    convs = [n for n in g.node if n.op_type == "Conv"]
    assert convs
    for conv in convs:  # every convolution reads int8 weights and uint8 activations through Q/DQ pairs
        w, x = made_by[conv.input[1]], made_by[conv.input[0]]
        assert w.op_type == "DequantizeLinear" and w.input[0] in int8_weights
        assert x.op_type == "DequantizeLinear" and made_by[x.input[0]].op_type == "QuantizeLinear"
    dyn = export(tiny_run[0], tmp_path / "dyn", quantize="int8-dynamic")
    meta = json.loads((tmp_path / "dyn" / "model.json").read_text())
    assert meta["int8"]["method"] == "dynamic" and dyn["parity"]["onnx_int8"]["agreement"] >= 0.9
    ops = {n.op_type for n in onnx.load(str(tmp_path / "dyn" / "model.int8.onnx")).graph.node}
    assert "DynamicQuantizeLinear" in ops and "QuantizeLinear" not in ops


def test_an_int8_model_that_reads_worse_fails_the_export_loudly(tiny_run, tmp_path):
    import ocr_robust.export as ex
    from ocr_robust.charset import Charset

    cs = Charset.load("latin")
    text = "the cat sat on a mat"
    ids = [cs.encode(text)]
    ref = np.full((40, 1, cs.num_classes), -20.0, np.float32)
    for t, k in enumerate(ids[0]):  # one frame per character, a blank between
        ref[2 * t, 0, k] = 0.0
        ref[2 * t + 1, 0, 0] = 0.0
    ref[2 * len(ids[0]):, 0, 0] = 0.0
    blank = np.full_like(ref, -20.0)
    blank[:, 0, 0] = 0.0  # reads nothing
    ok = ex._check_accuracy(lambda x: ref, [None], [ref], [[40]], [text], cs)
    assert ok["word_acc"] == ok["word_acc_pytorch"] == 1.0
    with pytest.raises(ExportError, match="int8 accuracy check failed"):
        ex._check_accuracy(lambda x: blank, [None], [ref], [[40]], [text], cs)
    with pytest.raises(ExportError, match="calibration"):
        ex.quantize_int8(tmp_path / "none.onnx", tmp_path / "out.onnx", calibration=[])


def test_static_int8_falls_back_to_per_channel_scales_when_per_tensor_fails_its_check(tiny_run, tiny_store,
                                                                                     tmp_path, monkeypatch):
    """Depthwise filters' ranges differ by channel: where one weight scale per tensor fails the
    parity or accuracy check, the export quantises again with a scale per output channel, and
    says why in model.json; the graph then holds per-channel scales."""
    import onnx
    from onnx import numpy_helper

    import ocr_robust.export as ex

    real, calls = ex._check_accuracy, []

    def first_fails(*args):
        calls.append(1)
        if len(calls) == 1:
            raise ExportError("ONNX int8 accuracy check failed: (made to fail for the test)")
        return real(*args)

    monkeypatch.setattr(ex, "_check_accuracy", first_fails)
    export(tiny_run[0], tmp_path / "exp", quantize="int8", sample=str(tiny_store))
    meta = json.loads((tmp_path / "exp" / "model.json").read_text())
    assert meta["int8"]["per_channel"] is True and "made to fail" in meta["int8"]["per_channel_because"]
    g = onnx.load(str(tmp_path / "exp" / "model.int8.onnx")).graph
    inits = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    made_by = {o: n for n in g.node for o in n.output}
    conv = next(n for n in g.node if n.op_type == "Conv")
    scale = inits[made_by[conv.input[1]].input[1]]
    assert scale.size > 1  # one scale per output channel
    monkeypatch.setattr(ex, "_check_accuracy", lambda *a: (_ for _ in ()).throw(ExportError("always fails")))
    with pytest.raises(ExportError, match="per-channel"):
        export(tiny_run[0], tmp_path / "exp2", quantize="int8", sample=str(tiny_store))


def test_a_failed_parity_check_fails_the_export_loudly(tiny_run, tmp_path, monkeypatch, capsys):
    import ocr_robust.export as ex

    monkeypatch.setattr(ex, "PARITY_ATOL", -1.0)  # nothing can meet it
    with pytest.raises(ExportError, match="ONNX parity failed"):
        export(tiny_run[0], tmp_path / "a")
    assert not (tmp_path / "a" / "model.json").exists()
    assert main(["export", "--model", str(tiny_run[0]), "--out", str(tmp_path / "b")]) == 1
    assert "parity failed" in capsys.readouterr().err
    monkeypatch.undo()
    export(tiny_run[0], tmp_path / "plain")  # ONNX only
    with pytest.raises(InputError, match="has no int8 model"):
        Recognizer(tmp_path / "plain", engine="int8")


# --- reading PDFs and page images --------------------------------------------------------

@pytest.fixture(scope="module")
def pdf_pair(corpus, tmp_path_factory):
    """A generated PDF with a text layer, and the same pages as images only."""
    src = sorted(corpus.glob("*.pdf"))[0]
    out = tmp_path_factory.mktemp("pdfs") / "image-only.pdf"
    doc, img_doc = pymupdf.open(src), pymupdf.open()
    for page in doc:
        pix = page.get_pixmap(dpi=150, colorspace=pymupdf.csGRAY)
        p = img_doc.new_page(width=page.rect.width, height=page.rect.height)
        p.insert_image(p.rect, pixmap=pix)
    img_doc.save(out)
    return src, out


def test_recognize_reads_a_pdf_with_and_without_a_text_layer(pdf_pair, exported, capsys):
    src, image_only = pdf_pair
    model = str(exported[0])
    assert main(["recognize", "--model", model, str(src), str(image_only), "--output", "json"]) == 0
    with_layer, without = json.loads(capsys.readouterr().out)
    doc = pymupdf.open(src)
    for pg, page in zip(with_layer["pages"], doc):
        truth = [ln for ln in text_lines(page)[0] if ln.text.strip()]
        assert pg["source"] == "text-layer" and pg["unit"] == "pt" and pg["error"] is None
        assert [ln["layer_text"] for ln in pg["lines"]] == [ln.text for ln in truth]
        assert all(isinstance(ln["text"], str) and 0 <= ln["confidence"] <= 1 for ln in pg["lines"])
    found = true = 0
    for pg, page in zip(without["pages"], doc):
        assert pg["source"] == "segmentation" and pg["unit"] == "pt"
        boxes = [ln["box"] for ln in pg["lines"]]
        truth = [ln.bbox for ln in text_lines(page)[0] if ln.text.strip() and ln.direction == (1, 0)]
        true += len(truth)
        found += sum(any(same_line(t, b) for b in boxes) for t in truth)
    assert found >= 0.85 * true  # the generated pages carry watermarks and stamps
    # TSV: a header and one row per line, with the box
    assert main(["recognize", "--model", model, str(src), "--output", "tsv"]) == 0
    rows = capsys.readouterr().out.splitlines()
    assert (rows[0].startswith("file\tpage\tline\tx0")
            and len(rows) == 1 + sum(len(p["lines"]) for p in with_layer["pages"]))


def test_a_crop_without_ink_reads_as_nothing_and_the_other_lines_as_before(exported, tiny_store):
    """Blank paper and a faint tint (less contrast than any ink) read as empty text: a
    network asked to read them may answer "1" or "." (the shipped model did, on 398 of the
    real suite's 400 text-free crops). Lines with ink read as they do alone, in order."""
    out, _ = exported
    images, _ = _lines(tiny_store, 3)
    blank = np.full((24, 120), 255, np.uint8)
    tint = np.clip(np.random.default_rng(0).normal(230, 3, (30, 200)), 0, 255).astype(np.uint8)  # 21 levels apart
    for engine in ("onnx", "int8", "torch"):
        rec = Recognizer(out, engine=engine)
        alone = [d.text for d in rec.recognize(images)]
        mixed = rec.recognize([blank, images[0], tint, images[1], images[2], np.zeros((0, 0), np.uint8)])
        assert [d.text for d in mixed] == ["", alone[0], "", alone[1], alone[2], ""]
        assert mixed[0].confidence == 1.0
        assert rec.recognize([blank, tint])[1].text == ""
    assert is_blank(tint) and not any(is_blank(im) for im in images)


def test_line_segmentation_of_a_clean_page(tmp_path):
    from conftest import write_pdf
    lines = [(72, 100 + 30 * k, f"Line number {k} of the page", "helvetica", 12) for k in range(10)]
    lines += [(350, 100, "right column", "times", 12)]
    path = write_pdf(tmp_path / "p.pdf", lines)
    page = pymupdf.open(path)[0]
    img = render(page, 150, 10**8)
    boxes = segment_lines(img)
    truth = [crop_line(img, ln, 150 / 72, 0.0)[1] for ln in text_lines(page)[0]]
    assert len(boxes) == len(truth) == 11
    assert all(any(same_line(t, b) for b in boxes) for t in truth)
    assert segment_lines(np.full((500, 400), 255, np.uint8)) == []  # a blank page has no lines


def test_recognize_reports_bad_inputs_and_keeps_the_rest(exported, tiny_store, tmp_path, capsys):
    (tmp_path / "bad.png").write_bytes(b"not an image")
    (tmp_path / "bad.pdf").write_bytes(b"%PDF-1.7 truncated")
    _, paths = _lines(tiny_store, 2)
    rc = main(["recognize", "--model", str(exported[0]), str(tmp_path / "bad.png"), str(paths[0]),
               str(tmp_path / "bad.pdf"), str(paths[1])])
    out = capsys.readouterr()
    assert rc == 1 and out.out.count("\n") == 2
    assert "bad.png: cannot decode the image" in out.err and "bad.pdf" in out.err


# --- the service ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server(exported):
    proc, url = start_server(exported[0], "--max-wait-ms", "300", "--max-images", "8", "--max-image-pixels", "200000",
                             "--max-pdf-pages", "3", "--max-body-mb", "1")
    yield url
    proc.terminate()
    proc.wait(30)


def _png(img: np.ndarray) -> bytes:
    return cv2.imencode(".png", img)[1].tobytes()


def test_service_answers_recognize_pdf_healthz_and_model(server, exported, tiny_store, pdf_pair):
    images, paths = _lines(tiny_store, 3)
    expected = [d.text for d in Recognizer(exported[0]).recognize(images)]
    files = [("images", (p.name, p.read_bytes(), "image/png")) for p in paths]
    r = httpx.post(server + "/v1/recognize", files=files, timeout=60)
    assert r.status_code == 200, r.text
    body = r.json()
    assert ([x["text"] for x in body["lines"]] == expected
            and [x["name"] for x in body["lines"]] == [p.name for p in paths])
    pdf = pdf_pair[0].read_bytes()
    r = httpx.post(server + "/v1/pdf", files={"file": ("doc.pdf", pdf, "application/pdf")}, timeout=120)
    assert r.status_code == 200, r.text
    pages = r.json()["pages"]
    assert len(pages) == pymupdf.open(pdf_pair[0]).page_count and pages[0]["lines"][0]["layer_text"]
    h = httpx.get(server + "/healthz").json()
    assert h["status"] == "ok" and h["engine"] == "onnx" and h["lines"] >= 3
    assert (httpx.get(server + "/v1/model").json()["charset"]
            == json.loads((exported[0] / "model.json").read_text())["charset"])
    assert "/v1/recognize" in httpx.get(server + "/openapi.json").json()["paths"]


def test_bad_requests_get_the_right_4xx_with_a_json_error(server, tiny_store, tmp_path):
    _, paths = _lines(tiny_store, 1)
    png = paths[0].read_bytes()
    post = lambda path, **kw: httpx.post(server + path, timeout=60, **kw)  # noqa: E731
    cases = {
        "empty file": (post("/v1/recognize", files={"images": ("e.png", b"", "image/png")}), 400, "empty file"),
        "corrupt image": (post("/v1/recognize", files={"images": ("c.png", png[:40], "image/png")}), 400,
                          "cannot decode"),
        "a PDF as an image": (post("/v1/recognize", files={"images": ("x.png", b"%PDF-1.4 x", "image/png")}), 400,
                              "cannot decode"),
        "no images": (post("/v1/recognize", data={"x": "1"}), 422, "images"),
        "too many images": (post("/v1/recognize", files=[("images", ("a.png", png, "image/png"))] * 9), 413,
                            "limit of 8"),
        "gigantic image": (post("/v1/recognize", files={"images": ("g.png", _png(np.full((20, 20000), 255, np.uint8)),
                                                                    "image/png")}), 413, "exceeds the limit"),
        "an image as a PDF": (post("/v1/pdf", files={"file": ("d.pdf", png, "application/pdf")}), 400, "not a PDF"),
        "corrupt PDF": (post("/v1/pdf", files={"file": ("d.pdf", b"%PDF-1.7\n" + os.urandom(500), "application/pdf")}),
                        400, "d.pdf"),
        "empty PDF": (post("/v1/pdf", files={"file": ("d.pdf", b"", "application/pdf")}), 400, "empty file"),
        "oversize body": (post("/v1/pdf", files={"file": ("big.pdf", b"%PDF-" + b"0" * 1_100_000, "application/pdf")}),
                          413, "exceeds the limit"),
        "bad dpi": (post("/v1/pdf?dpi=5000", files={"file": ("d.pdf", b"%PDF-1.4", "application/pdf")}), 422, "dpi"),
    }
    doc = pymupdf.open()
    for _ in range(4):
        doc.new_page()
    cases["too many pages"] = (post("/v1/pdf", files={"file": ("p.pdf", doc.tobytes(), "application/pdf")}), 413,
                               "4 pages exceed the limit of 3")
    enc = pymupdf.open()
    enc.new_page()
    enc_bytes = enc.tobytes(encryption=pymupdf.PDF_ENCRYPT_AES_256, user_pw="u", owner_pw="o")
    cases["encrypted PDF"] = (post("/v1/pdf", files={"file": ("s.pdf", enc_bytes, "application/pdf")}), 400,
                              "encrypted")
    for name, (r, status, text) in cases.items():
        assert r.status_code == status, (name, r.status_code, r.text)
        assert text in r.json()["error"], (name, r.json())
    assert httpx.get(server + "/healthz").status_code == 200  # and the service is still up


def test_concurrent_requests_are_batched_and_each_gets_its_own_answer(server, exported, tiny_store):
    images, paths = _lines(tiny_store, 12)
    expected = [d.text for d in Recognizer(exported[0]).recognize(images)]

    def one(k):
        files = [("images", (paths[i].name, paths[i].read_bytes(), "image/png")) for i in (k, k + 6)]
        t0 = time.perf_counter()
        r = httpx.post(server + "/v1/recognize", files=files, timeout=60)
        return k, r.json(), time.perf_counter() - t0

    with cf.ThreadPoolExecutor(6) as pool:
        results = list(pool.map(one, range(6)))
    batches = {body["batch"]["id"] for _, body, _ in results}
    for k, body, _ in results:
        assert [x["text"] for x in body["lines"]] == [expected[k], expected[k + 6]]
    # six requests within the 300 ms window: fewer batches than requests, one holding several
    assert len(batches) < 6 and max(body["batch"]["requests"] for _, body, _ in results) >= 2


def test_small_requests_share_a_batch_beyond_the_active_limit(exported, tiny_store):
    """--max-active bounds the requests holding their uploads; once decoded, their lines wait
    in the micro-batcher under the pixel budget, so one batch gathers many small requests."""
    images, paths = _lines(tiny_store, 6)
    expected = [d.text for d in Recognizer(exported[0]).recognize(images)]
    proc, url = start_server(exported[0], "--max-active", "1", "--max-queued", "8", "--max-wait-ms", "500")
    try:
        def one(k):
            r = httpx.post(url + "/v1/recognize", files=[("images", (paths[k].name, paths[k].read_bytes(),
                                                                      "image/png"))], timeout=60)
            return k, r.json()

        with cf.ThreadPoolExecutor(6) as pool:
            results = list(pool.map(one, range(6)))
        for k, body in results:
            assert [x["text"] for x in body["lines"]] == [expected[k]]
        assert max(body["batch"]["requests"] for _, body in results) >= 2
        assert httpx.get(url + "/healthz").json()["streams"] >= 1
    finally:
        proc.terminate()
        proc.wait(30)


def test_the_micro_batcher_reads_up_to_streams_batches_at_once():
    import asyncio
    import threading

    from ocr_robust.service import MicroBatcher

    class Slow:  # a recognizer that records how many batches it reads at once
        def __init__(self):
            self.now = self.most = 0
            self.lock = threading.Lock()

        def recognize(self, images):
            with self.lock:
                self.now += 1
                self.most = max(self.most, self.now)
            time.sleep(0.1)
            with self.lock:
                self.now -= 1
            return [f"read {int(im[0, 0])}" for im in images]

    async def run(streams):
        rec = Slow()
        b = MicroBatcher(rec, max_lines=1, max_wait_s=0, streams=streams)
        b.start()
        reads = await asyncio.gather(*(b.read([np.full((2, 2), k, np.uint8)]) for k in range(6)))
        await b.stop()
        return rec.most, [r for r, _ in reads], b.batches

    most, reads, batches = asyncio.run(run(2))
    assert most == 2 and batches == 6 and reads == [[f"read {k}"] for k in range(6)]
    assert asyncio.run(run(1))[0] == 1


def test_the_pixel_budget_is_granted_in_arrival_order_and_a_timed_out_request_gives_it_back():
    import asyncio

    from ocr_robust.service import _Budget

    async def scenario():
        b = _Budget(10)
        await b.take(6)
        big = asyncio.ensure_future(b.take(6))
        small = asyncio.ensure_future(b.take(1))  # would fit, but waits behind the earlier request
        await asyncio.sleep(0.01)
        assert not big.done() and not small.done() and b.used == 6
        b.give(6)
        await asyncio.sleep(0.01)
        assert big.done() and small.done() and b.used == 7
        late = asyncio.ensure_future(asyncio.wait_for(b.take(5), 0.05))  # times out waiting
        with pytest.raises(TimeoutError):
            await late
        assert b.used == 7 and not b._waiting
        b.give(6)
        b.give(1)
        await b.take(10)
        assert b.used == 10

    asyncio.run(scenario())
    from ocr_robust.service import Limits

    with pytest.raises(ValueError, match="max active pixels"):
        Limits(max_active_pixels=1000, max_request_pixels=2000)


def test_serve_gives_each_core_a_stream_with_onnx_runtime_and_one_batch_at_a_time_with_pytorch(monkeypatch):
    from ocr_robust.cli import serve_threads

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    assert serve_threads("int8", 1, None, None) == (1, 4)
    assert serve_threads("onnx", 2, None, None) == (1, 2)  # two workers share the cores
    assert serve_threads("onnx", 1, 2, None) == (2, 2)
    assert serve_threads("onnx", 1, None, 1) == (4, 1)
    assert serve_threads("torch", 1, None, None) == (None, 1)
    assert serve_threads("torch", 2, None, None) == (2, 1)
    with pytest.raises(SystemExit, match="needs an ONNX Runtime engine"):
        serve_threads("torch", 1, None, 2)
    for bad in ((0, None), (None, -1)):  # one line, before the server starts
        with pytest.raises(SystemExit, match="expected a positive number"):
            serve_threads("int8", 1, *bad)


# --- schemathesis against the service's own OpenAPI schema: no input gets a 500 ----------------

def test_no_generated_request_gets_a_server_error(server):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.checks import not_a_server_error

    schema = schemathesis.openapi.from_url(server + "/openapi.json")
    operations = [r.ok() for r in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/recognize", "/v1/pdf", "/healthz", "/v1/model"}
    for op in operations:
        @given(case=op.as_strategy())
        @settings(max_examples=25, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(checks=[not_a_server_error])

        check()


# --- faults: slow and vanishing clients, and a drain on shutdown -------------------------------

def test_slow_and_vanishing_clients_do_not_stall_others(server, tiny_store):
    _, paths = _lines(tiny_store, 1)
    body = multipart("images", "a.png", paths[0].read_bytes())
    slow = [raw_request(server, "/v1/recognize", body, send=len(body) // 2) for _ in range(5)]  # never finish
    gone = raw_request(server, "/v1/recognize", body, send=30)
    gone.close()  # disconnects mid-body
    t0 = time.perf_counter()
    r = httpx.post(server + "/v1/recognize", files={"images": ("b.png", paths[0].read_bytes(), "image/png")},
                   timeout=30)
    assert r.status_code == 200 and time.perf_counter() - t0 < 5
    for s in slow:
        s.close()
    assert httpx.get(server + "/healthz").json()["status"] == "ok"


def test_shutdown_drains_requests_in_flight(exported, pdf_pair):
    proc, url = start_server(exported[0])
    try:
        pdf = pdf_pair[1].read_bytes()  # the image-only pages: segmentation, the slowest path
        with cf.ThreadPoolExecutor(1) as pool:
            fut = pool.submit(httpx.post, url + "/v1/pdf?dpi=200", files={"file": ("d.pdf", pdf, "application/pdf")},
                              timeout=120)
            time.sleep(0.5)  # the request is in flight
            proc.send_signal(signal.SIGTERM)
            r = fut.result()
        assert r.status_code == 200 and len(r.json()["pages"]) == pymupdf.open(pdf_pair[1]).page_count
        # uvicorn finishes the request, shuts down, then re-raises SIGTERM so the exit status tells why
        assert proc.wait(60) in (0, -signal.SIGTERM)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_parity_tolerance_is_relative_for_unlikely_classes_only():
    """A float32 drift of 1.5e-3 on a class at log-prob -9 (probability 1e-4) is within
    tolerance; the same drift on the likely class at log-prob -0.1 fails the export, unless
    PyTorch's own float32 rounding error is that large there."""
    import ocr_robust.export as ex

    ref = np.full((4, 1, 3), -9.0, np.float32)
    ref[:, 0, 0] = -0.1
    unlikely = ref.copy()
    unlikely[2, 0, 1] += 1.5e-3
    report = ex._check(lambda x: unlikely, [None], [ref], "ONNX")
    assert report["max_abs_diff"] == pytest.approx(1.5e-3, rel=1e-3) and report["agreement"] == 1.0
    likely = ref.copy()
    likely[2, 0, 0] += 1.5e-3
    with pytest.raises(ExportError, match="1 log-probabilities differ"):
        ex._check(lambda x: likely, [None], [ref], "ONNX")
    # where PyTorch's own float32 result is 2e-3 from the float64 one, the same drift is rounding
    own = np.zeros_like(ref)
    own[2, 0, 0] = 2e-3
    report = ex._check(lambda x: likely, [None], [ref], "ONNX", slack=[own])
    assert report["pytorch_fp32_error"] == pytest.approx(2e-3) and report["agreement"] == 1.0


def test_int8_parity_reads_each_line_over_its_own_frames():
    """int8 is checked on the text a reader gets: each line decoded over its own frames, so a
    quantised model that wakes up in a short line's padding (frames no reader decodes) passes,
    and one that misreads the line itself fails."""
    import ocr_robust.export as ex

    ref = np.full((6, 2, 3), -9.0, np.float32)
    ref[:, :, 0] = -0.01  # blank everywhere ...
    ref[1, :, 0], ref[1, :, 1] = -9.0, -0.01  # ... but class 1 at frame 1 of both lines
    in_padding = ref.copy()
    in_padding[4, 1, 0], in_padding[4, 1, 2] = -9.0, -0.01  # class 2 in line 1's padding (it has 3 frames)
    frames = [[6, 3]]
    assert ex._check(lambda x: in_padding, [None], [ref], "int8", int8=True, frames=frames)["agreement"] == 1.0
    with pytest.raises(ExportError, match="identical on 1/2"):
        ex._check(lambda x: in_padding, [None], [ref], "int8", int8=True)  # all frames: a false alarm
    misread = ref.copy()
    misread[1, 1, 1], misread[1, 1, 2] = -9.0, -0.01
    with pytest.raises(ExportError, match="identical on 1/2"):
        ex._check(lambda x: misread, [None], [ref], "int8", int8=True, frames=frames)
