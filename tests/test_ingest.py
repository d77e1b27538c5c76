import collections
import json

import cv2
import numpy as np
import pymupdf
import pytest
from conftest import spec_pdf, write_pdf

from ocr_robust.data.store import FolderStore, LmdbStore, convert, open_store
from ocr_robust.pdf.degrade import parse_degrade
from ocr_robust.pdf.fonts import load_font
from ocr_robust.pdf.ingest import IngestConfig, ingest, normalise_text
from ocr_robust.pdf.watermarks import STYLES

KNOWN = [
    (60, 80, "Ferritin 45.2 ng/mL (30 - 400)", "helvetica", 10),
    (60, 110, "hCG < 5 mIU/mL · Negative", "times", 7),
    (60, 130, "WBC 7.9 ×10^9/L ± 0.3", "courier", 6),
    (60, 160, "Invoice No. INV-2024-00871 € 1.234,56", "firago-bold", 12),
    (60, 190, "tiny print: µmol/L", "notosans-italic", 5),
]


def labels(out):
    return [line.rstrip("\n").split("\t", 1)[1] for line in open(out / "labels.tsv", encoding="utf-8")]


def test_known_text_ingests_to_matching_crops(tmp_path):
    pdf = write_pdf(tmp_path / "known.pdf", KNOWN)
    s = ingest([str(pdf)], IngestConfig(out=str(tmp_path / "out"), workers=1, dpi=150), progress=False)
    assert labels(tmp_path / "out") == [t for _, _, t, _, _ in KNOWN]
    assert s["lines"] == len(KNOWN) and s["pages_ok"] == 1
    store = FolderStore(tmp_path / "out")
    for i, (_, _, text, _, size) in enumerate(KNOWN):
        img = cv2.imdecode(np.frombuffer(store.image_bytes(i), np.uint8), cv2.IMREAD_UNCHANGED)
        assert img.ndim == 2  # grey
        assert 1.1 * size * 150 / 72 < img.shape[0] < 2.2 * size * 150 / 72
        assert img.min() < 80 and np.median(img) > 200  # dark ink on light paper
        width = load_font(KNOWN[i][3]).text_length(text, fontsize=size) * 150 / 72
        assert width < img.shape[1] < width + 2 * size * 150 / 72


def test_rotated_pages_sideways_text_and_ligatures(tmp_path):
    pdf = write_pdf(tmp_path / "rot.pdf", KNOWN[:2], rotation=90)
    doc = pymupdf.open(pdf)
    page = doc[0]
    page.insert_text((400, 500), "Sideways up", fontsize=10, rotate=90)
    font = load_font("notosans")
    lig = "\ufb01ne \ufb02ow" if font.has_glyph(0xFB01) else "fine flow"
    tw = pymupdf.TextWriter(page.rect)
    tw.append((60, 300), lig + "\u00a0\u00a0 ok", font=font, fontsize=10)
    tw.write_text(page)
    doc.save(tmp_path / "rot2.pdf")
    out = tmp_path / "out"
    ingest([str(tmp_path / "rot2.pdf")], IngestConfig(out=str(out), workers=1), progress=False)
    got = labels(out)
    assert got[:2] == [KNOWN[0][2], KNOWN[1][2]]
    assert "fine flow ok" in got and "Sideways up" in got
    store = FolderStore(out)
    k = got.index("Sideways up")
    img = cv2.imdecode(np.frombuffer(store.image_bytes(k), np.uint8), 0)
    assert img.shape[1] > 3 * img.shape[0]  # rotated upright: wide, not tall
    assert normalise_text("o\ufb03ce \u2212 5\u00a0 \u03bcg ") == "office - 5 \u00b5g"


def test_watermark_text_is_not_a_label(tmp_path):
    pdf = write_pdf(tmp_path / "wm.pdf", KNOWN)
    doc = pymupdf.open(pdf)
    page = doc[0]
    page.insert_text((100, 400), "CONFIDENTIAL", fontsize=60, fill_opacity=0.2,
                     morph=(pymupdf.Point(100, 400), pymupdf.Matrix(-35)))
    page.insert_text((60, 600), "DRAFT DRAFT DRAFT", fontsize=20, fill_opacity=0.15)
    doc.save(tmp_path / "wm2.pdf")
    s = ingest([str(tmp_path / "wm2.pdf")], IngestConfig(out=str(tmp_path / "o"), workers=1), progress=False)
    assert labels(tmp_path / "o") == [t for _, _, t, _, _ in KNOWN]
    assert s["lines_skipped"]["translucent (watermark text)"] == 1
    assert s["lines_skipped"]["not-upright (rotated text)"] == 1


@pytest.mark.parametrize("kind", ["lab", "invoice", "prose", "form", "code", "mixed"])
def test_synthetic_pages_ingest_to_exactly_the_text_placed(tmp_path, kind):
    """Every watermark style on every kind of page: labels == the text synth put there."""
    styles = list(STYLES)
    for seed in range(2):
        spec = spec_pdf(tmp_path / f"{seed}.pdf", seed, kind, styles)
        assert spec.watermarks
        out = tmp_path / f"o{seed}"
        ingest([str(tmp_path / f"{seed}.pdf")], IngestConfig(out=str(out), workers=1), progress=False)
        assert collections.Counter(labels(out)) == collections.Counter(normalise_text(i.text) for i in spec.items)


def test_parallel_ingest_equals_serial_and_writes_summary(corpus, lines_store, tmp_path):
    out = tmp_path / "par"
    s = ingest(sorted(str(p) for p in corpus.glob("*.pdf")), IngestConfig(out=str(out), workers=2), progress=False)
    assert (out / "labels.tsv").read_bytes() == (lines_store / "labels.tsv").read_bytes()
    a, b = FolderStore(out), FolderStore(lines_store)
    assert all(a.image_bytes(i) == b.image_bytes(i) for i in range(len(a)))
    saved = json.loads((out / "ingest.json").read_text())
    assert saved["lines"] == s["lines"] == len(a) > 100
    assert saved["pages"] == 4 and saved["pages_ok"] == 4 and saved["pages_per_s"] > 0


def test_degradations_change_crops_deterministically(corpus, lines_store, tmp_path):
    pdfs = sorted(str(p) for p in corpus.glob("*.pdf"))[:1]
    runs = []
    for k in range(2):
        out = tmp_path / f"d{k}"
        ingest(pdfs, IngestConfig(out=str(out), workers=1, degrade="jpeg:30-40,blur,noise,downscale:0.5-0.6", seed=3),
               progress=False)
        runs.append(FolderStore(out))
    clean = FolderStore(lines_store)
    assert [runs[0].text(i) for i in range(len(runs[0]))] == [clean.text(i) for i in range(len(runs[0]))]
    assert runs[0].image_bytes(0) == runs[1].image_bytes(0)
    a = cv2.imdecode(np.frombuffer(runs[0].image_bytes(0), np.uint8), 0).astype(int)
    b = cv2.imdecode(np.frombuffer(clean.image_bytes(0), np.uint8), 0).astype(int)
    assert a.shape == b.shape and np.abs(a - b).mean() > 2
    with pytest.raises(ValueError, match="unknown degradation"):
        parse_degrade("jpeg,sepia")
    assert [d.name for d in parse_degrade("jpeg,downscale:0.5,rotate")] == ["rotate", "downscale", "jpeg"]


def test_lmdb_round_trip_is_lossless(lines_store, tmp_path):
    convert(lines_store, tmp_path / "db")
    db = open_store(tmp_path / "db")
    assert isinstance(db, LmdbStore)
    convert(tmp_path / "db", tmp_path / "back")
    src, back = FolderStore(lines_store), FolderStore(tmp_path / "back")
    assert len(src) == len(db) == len(back)
    for i in range(len(src)):
        assert src.text(i) == db.text(i) == back.text(i)
        assert src.image_bytes(i) == db.image_bytes(i) == back.image_bytes(i)


def test_ingest_straight_to_lmdb(corpus, lines_store, tmp_path):
    pdfs = sorted(str(p) for p in corpus.glob("*.pdf"))
    ingest(pdfs, IngestConfig(out=str(tmp_path / "db"), lmdb=True, workers=1), progress=False)
    db, folder = LmdbStore(tmp_path / "db"), FolderStore(lines_store)
    assert len(db) == len(folder)
    assert [db.text(i) for i in range(len(db))] == [folder.text(i) for i in range(len(folder))]


def test_rotated_and_sheared_pages_keep_every_line_inside_its_crop(tmp_path):
    from ocr_robust.pdf.degrade import degrade_page
    from ocr_robust.pdf.layout import crop_line, render, text_lines

    path = write_pdf(tmp_path / "r.pdf", [(40, 60 + 40 * k, "WIDE LINE OF TEXT ACROSS THE PAGE " * 2, "helvetica", 10)
                                          for k in range(15)])
    page = pymupdf.open(path)[0]
    img = render(page, 150, 10**8)
    rot, applied, affine = degrade_page(img, parse_degrade("rotate:2-2,skew:0.02-0.02"), np.random.default_rng(0))
    assert applied == {"rotate": 2.0, "skew": 0.02} and affine.shape == (2, 3)
    ink = rot < 128
    covered = np.zeros_like(ink)
    for ln in text_lines(page)[0]:
        x0, y0, x1, y1 = crop_line(rot, ln, 150 / 72, 0.2, affine=affine)[1]
        covered[y0:y1, x0:x1] = True
    assert ink.sum() > 1000 and (ink & ~covered).sum() == 0  # no ink of any line falls outside the crops
    # without the affine map the boxes miss the rotated ink
    missed = np.zeros_like(ink)
    for ln in text_lines(page)[0]:
        x0, y0, x1, y1 = crop_line(rot, ln, 150 / 72, 0.2)[1]
        missed[y0:y1, x0:x1] = True
    assert (ink & ~missed).sum() > 100
