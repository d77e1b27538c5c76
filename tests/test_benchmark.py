"""Benchmark suites, the runner with a fake engine and the installed anchors, and the report."""

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from ocr_robust.cli import main
from ocr_robust.data.store import FolderStore
from ocr_robust.evaluation.benchmark import run_benchmark
from ocr_robust.evaluation.engines import anchor
from ocr_robust.evaluation.metrics import char_substitutions, confusion_counts
from ocr_robust.evaluation.suite import CONDITIONS, NO_TEXT, build_suite
from ocr_robust.export import export


@pytest.fixture(scope="module")
def suite(tmp_path_factory):
    out = tmp_path_factory.mktemp("suite") / "s"
    build_suite(out, pages=1, seed=3, no_text=12)
    return out


def test_suites_build_deterministically(suite, tmp_path):
    again = build_suite(tmp_path / "again", pages=1, seed=3, no_text=12)
    first = json.loads((suite / "suite.json").read_text())
    assert set(first["conditions"]) == {c.name for c in CONDITIONS} | {NO_TEXT}
    for name, c in first["conditions"].items():
        assert (suite / name / "labels.tsv").read_bytes() == (tmp_path / "again" / name / "labels.tsv").read_bytes()
        assert c["labels_sha256"] == again["conditions"][name]["labels_sha256"] and c["lines"] > 0
    # held-out fonts and styles only, and the no-text set has empty labels
    assert all(s.text(i) == "" for s in [FolderStore(suite / NO_TEXT)] for i in range(len(s)))
    other = build_suite(tmp_path / "other", pages=1, seed=4, no_text=12)
    assert other["conditions"]["clean"]["labels_sha256"] != first["conditions"]["clean"]["labels_sha256"]


def test_suite_from_the_users_pdfs(corpus, tmp_path, capsys):
    pdfs = sorted(corpus.glob("*.pdf"))[:1]
    assert main(["benchmark", "build", "--out", str(tmp_path / "u"), "--from-pdf", *map(str, pdfs),
                 "--no-text", "5", "--quiet"]) == 0
    d = json.loads((tmp_path / "u" / "suite.json").read_text())
    assert d["source"].startswith("user PDFs") and d["conditions"]["small-print"]["dpi"] == 58
    assert d["conditions"]["clean"]["lines"] == d["conditions"]["scan"]["lines"] > 0
    assert "watermark-lowres" in capsys.readouterr().out
    # a subset of the conditions (the demo's) holds the same lines as the full suite's
    assert main(["benchmark", "build", "--out", str(tmp_path / "sub"), "--from-pdf", *map(str, pdfs),
                 "--no-text", "5", "--conditions", "watermark", "--quiet"]) == 0
    sub = json.loads((tmp_path / "sub" / "suite.json").read_text())["conditions"]
    assert set(sub) == {"clean", "clean-tight", "watermark", NO_TEXT}
    for name in ("clean", "clean-tight", "watermark"):
        assert sub[name]["labels_sha256"] == d["conditions"][name]["labels_sha256"]
    capsys.readouterr()
    assert main(["benchmark", "build", "--out", str(tmp_path / "sub"), "--from-pdf", *map(str, pdfs),
                 "--conditions", "scanned"]) == 2
    assert "unknown suite condition scanned" in capsys.readouterr().err
    assert json.loads((tmp_path / "sub" / "suite.json").read_text())["conditions"] == sub  # nothing lost


def test_substitution_confusions_on_a_hand_made_example():
    assert char_substitutions("He1lo w0rld", "Hello world") == [("l", "1"), ("o", "0")]
    assert char_substitutions("Hello", "Hello") == []
    assert char_substitutions("rnodern", "modern") == [("m", "n")]  # 'r' inserted, 'm' read as 'n'
    c = confusion_counts(["l1l", "O0", "same"], ["lll", "OO", "same"])
    assert c == Counter({("l", "1"): 1, ("O", "0"): 1})


class HalfRight:
    """A fake engine: reads every other line exactly, the rest as nothing."""
    name, kind, how = "fake", "anchor", "reads even lines exactly, odd lines as nothing"

    def read(self, images):
        self.calls = getattr(self, "calls", 0) + 1
        return [self.truths[k] if k % 2 == 0 else "" for k in range(len(images))]


@pytest.fixture(scope="module")
def tiny_export(tiny_run, tiny_store, tmp_path_factory):
    out = tmp_path_factory.mktemp("exp")
    export(tiny_run[0], out, sample=str(tiny_store))
    return out


def test_runner_and_report_with_a_fake_engine(suite, tiny_export, tiny_run, tmp_path):
    fake = HalfRight()
    store = FolderStore(suite / "clean")
    fake.truths = [store.text(i) for i in range(len(store))]
    report = tmp_path / "report"
    r = run_benchmark(suite, [str(tiny_export), str(tiny_run[0])], [], report, engines=[fake], attack_lines=4,
                      pgd_steps=2, limit=8, gallery=2, progress=False)
    conds = [c.name for c in CONDITIONS] + [NO_TEXT]
    assert {(x["engine"], x["condition"]) for x in r["rows"]} == {(e, c) for e in ("ours:" + tiny_export.name,
                                                                                  "ours:" + tiny_run[0].name, "fake")
                                                                  for c in conds}
    clean = next(x for x in r["rows"] if x["engine"] == "fake" and x["condition"] == "clean")
    words = [t.split() for t in fake.truths[:8]]
    assert clean["word_acc"] == pytest.approx(sum(len(w) for w in words[::2]) / sum(len(w) for w in words))
    nt = next(x for x in r["rows"] if x["engine"] == "fake" and x["condition"] == NO_TEXT)
    assert nt["hallucination_rate"] == 0.5  # it reads the even crops as (clean) text
    assert {a["attack"] for a in r["attacks"]} == {"pgd", "confusable"} and len(r["attacks"]) == 2 * 5
    assert {s["engine"] for s in r["speed"]} == {"fake", "ours:" + tiny_export.name, "ours:" + tiny_run[0].name}
    # the report exists and references real files and results
    page = (report / "index.html").read_text()
    for img in re.findall(r'src="([^"]+)"', page):
        assert (report / img).is_file(), img
    assert (report / "accuracy.png").stat().st_size > 1000 and (report / "training.png").is_file()
    md = (report / "results.md").read_text()
    assert "| fake |" in md and "Speed" in md and "claims" in md
    assert json.loads((report / "results.json").read_text())["rows"] == json.loads(json.dumps(r["rows"]))
    assert r["gallery"] and all((report / g["image"]).is_file() for g in r["gallery"])


@pytest.mark.parametrize("name", ["tesseract", "ppocrv6", "ppocr"])
def test_runner_with_an_installed_anchor(name, suite, tiny_export, tmp_path):
    try:
        anchor(name)
    except RuntimeError as e:
        pytest.skip(f"{name} not installed: {e}")
    r = run_benchmark(suite, [str(tiny_export)], [name], tmp_path / "r", attack_lines=0, limit=6, progress=False)
    rows = [x for x in r["rows"] if x["engine"] != "ours:" + tiny_export.name]
    assert len(rows) == len(CONDITIONS) + 1 and not r["missing"]
    clean = next(x for x in rows if x["condition"] == "clean")
    # a real OCR engine reads the characters of clean held-out-font lines (by CER: PP-OCRv4's
    # Chinese model drops the spaces between Latin words, so its word accuracy here is ~0.5)
    assert clean["cer"] < 0.1
    assert any(c["claim"].startswith("ours:") for c in r["claims"])


def test_a_missing_anchor_is_reported_and_the_rest_runs(suite, tiny_export, tmp_path, monkeypatch):
    import shutil
    monkeypatch.setattr(shutil, "which", lambda *_: None)
    r = run_benchmark(suite, [str(tiny_export)], ["tesseract"], tmp_path / "r", attack_lines=0, limit=3,
                      progress=False)
    assert r["missing"][0]["engine"] == "tesseract" and "not installed" in r["missing"][0]["why"]
    assert r["rows"] and "Not run: tesseract" in (tmp_path / "r" / "results.md").read_text()
    assert Path(tmp_path / "r" / "index.html").is_file()


def test_no_text_crops_avoid_raster_images_and_are_mostly_marked(tmp_path):
    """A raster image may show text without a text layer (a screenshot), so no crop comes from
    one; at least two thirds of the crops show a marking, at most a third is plain paper."""
    import cv2
    import numpy as np
    import pymupdf

    from ocr_robust.evaluation.suite import no_text_crops

    doc = pymupdf.open()
    page = doc.new_page(width=300, height=400)
    noise = (np.random.default_rng(0).random((200, 300)) > 0.5).astype(np.uint8) * 255  # black and white: 0 or 255
    page.insert_image(pymupdf.Rect(0, 0, 300, 200), stream=cv2.imencode(".png", noise)[1].tobytes())
    for y in range(220, 400, 12):  # grey strokes, a drawing without text: "marked" background
        page.draw_line((0, y), (300, y + 5), color=(0.6, 0.6, 0.6), width=1.5)
    doc.save(tmp_path / "p.pdf")
    n = no_text_crops([tmp_path / "p.pdf"], tmp_path / "nt", 9, seed=0)
    store = FolderStore(tmp_path / "nt")
    crops = [cv2.imdecode(np.frombuffer(store.image_bytes(i), np.uint8), cv2.IMREAD_GRAYSCALE)
             for i in range(len(store))]
    assert n == len(crops) == 9
    assert all(int(c.min()) > 60 for c in crops)  # never the image's black pixels
    assert sum(int(c.max()) - int(c.min()) > 40 for c in crops) >= 6
