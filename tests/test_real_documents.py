"""Real-document machinery: the system font library, pages typeset by real engines, watermarks
painted on a user's PDF, page sampling, lists of stores, crop normalisation, the real-document
suite and the PP-OCRv6 anchor."""

import json
import random
import re
from pathlib import Path

import numpy as np
import pymupdf
import pytest
from conftest import write_pdf

from ocr_robust.charset import Charset
from ocr_robust.cli import main
from ocr_robust.data.crop import CropJitter, normalise_crop
from ocr_robust.data.dataset import LineDataset
from ocr_robust.data.store import FolderStore, FolderWriter, open_store
from ocr_robust.errors import InputError
from ocr_robust.images import decode_grey
from ocr_robust.pdf.fonts import HELDOUT_FAMILIES, all_faces, face_from_file, font_lists, system_faces
from ocr_robust.pdf.ingest import IngestConfig, ingest, select_pages
from ocr_robust.pdf.layout import render, text_lines
from ocr_robust.pdf.sfnt import read_sfnt
from ocr_robust.pdf.typeset import (
    ENGINES,
    available_engines,
    engine_fonts,
    plan_document,
    to_html,
    to_latex,
    to_odt,
    typeset,
)
from ocr_robust.pdf.watermarks import STYLES, marked_copy, plan_marks

LATIN = "".join(Charset.load("latin").chars)
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")


def labels(store: Path) -> list[str]:
    return [ln.rstrip("\n").split("\t", 1)[1] for ln in open(store / "labels.tsv", encoding="utf-8")]


# --- fonts ---------------------------------------------------------------------------------------

def test_font_files_are_read_classified_and_checked_for_coverage(tmp_path):
    if not DEJAVU.is_file():
        pytest.skip("Debian's fonts-dejavu is not installed")
    info = read_sfnt(DEJAVU.read_bytes())
    assert (info.family, info.weight >= 600, info.fixed_pitch) == ("DejaVu Sans", True, False)
    face = face_from_file(DEJAVU, LATIN)
    assert (face.typeface, face.family, face.style) == ("DejaVu Sans", "sans", "bold")
    assert face_from_file(DEJAVU, LATIN + "\u4e00") is None  # a character it lacks: not a face for this charset
    bad = tmp_path / "bad.ttf"
    bad.write_bytes(b"\x00\x01\x00\x00" + b"\xff" * 40)
    with pytest.raises(ValueError):
        read_sfnt(bad.read_bytes())
    assert face_from_file(bad, LATIN) is None
    math = next((p for p in Path("/usr/share/fonts").rglob("*Math*.otf")), None)
    if math is not None:
        assert face_from_file(math, LATIN) is None  # math faces are not text faces


def test_the_font_library_holds_out_whole_families():
    faces, lists = all_faces(), font_lists()
    train, held = set(lists["train"]), set(lists["heldout"])
    assert train and held and not train & held
    # a typeface is held out in every style or in none
    for fam in {faces[k].typeface for k in lists["system"]}:
        keys = {k for k in lists["system"] if faces[k].typeface == fam}
        assert keys <= held or not keys & held, fam
        assert (fam in HELDOUT_FAMILIES) == (keys <= held)
    for k in lists["system"]:
        font = pymupdf.Font(fontfile=faces[k].source)
        assert all(font.has_glyph(ord(c)) for c in LATIN if c != " "), k
    if len(system_faces()) >= 150:  # Debian's font packages installed (make fonts)
        fams = {faces[k].typeface for k in lists["all"]}
        assert len(fams) >= 40
        assert {"serif", "sans", "mono"} == {faces[k].family for k in lists["heldout"]}
        assert lists["condensed"] and {"light", "bold", "italic"} <= {faces[k].style for k in lists["train"]}


# --- typesetting engines ------------------------------------------------------------------------

@pytest.mark.parametrize("engine", ENGINES)
def test_typeset_pages_ingest_to_their_text(engine, tmp_path):
    if engine not in available_engines():
        pytest.skip(f"{engine} is not installed (make engines)")
    rng = random.Random(5)
    blocks = plan_document(rng, 6)
    font = engine_fonts(engine)[0]
    source = {"latex": to_latex, "office": to_odt, "html": to_html}[engine](blocks, font, 10, rng)
    typeset(engine, source, tmp_path / "doc.pdf")
    s = ingest([str(tmp_path / "doc.pdf")], IngestConfig(out=str(tmp_path / "lines"), workers=1), progress=False)
    assert s["lines"] > 10 and not s["page_failures"]
    text = " ".join(labels(tmp_path / "lines"))
    joined = re.sub(r"(\w)- (\w)", r"\1\2", text)  # words hyphenated at a line end
    paras = [b.text for b in blocks if b.kind == "para"]
    assert paras and all(p in joined for p in paras)  # justified, hyphenated, ligatures: same words
    code = [r[0] for b in blocks if b.kind == "code" for r in b.rows]
    assert all(" ".join(c.split()) in text for c in code)


def test_synth_engine_command_and_a_failing_document(tmp_path, capsys):
    if "latex" not in available_engines():
        pytest.skip("pdflatex is not installed (make engines)")
    assert main(["synth", "--out", str(tmp_path / "t"), "--engine", "latex", "--documents", "2", "--quiet"]) == 0
    recs = [json.loads(x) for x in (tmp_path / "t" / "typeset.jsonl").read_text().splitlines()]
    assert [r["file"] for r in recs] == ["latex_0000.pdf", "latex_0001.pdf"]
    assert all(r["font"] in engine_fonts("latex") for r in recs)
    with pytest.raises(RuntimeError, match="made no PDF"):
        typeset("latex", r"\documentclass{article}\begin{document}\undefinedcommand\end{document}", tmp_path / "x.pdf")
    with pytest.raises(SystemExit, match="choose from"):
        main(["synth", "--out", str(tmp_path / "u"), "--engine", "word"])


# --- ingest --watermarks, --max-pages, @LIST -----------------------------------------------------

KNOWN = [
    (60, 80, "Ferritin 45.2 ng/mL (30 - 400)", "helvetica", 10),
    (60, 110, "The office ﬁle was ﬂagged: 12 pages", "times", 9),
    (60, 140, "WBC 7.9 ×10^9/L ± 0.3", "courier", 8),
    (60, 170, "Invoice No. INV-2024-00871 € 1.234,56", "firago-bold", 12),
]


@pytest.mark.parametrize("style", sorted(STYLES))
def test_a_user_pdf_painted_with_each_style_keeps_its_labels(style, tmp_path):
    pdf = write_pdf(tmp_path / "user.pdf", KNOWN)
    plain = ingest([str(pdf)], IngestConfig(out=str(tmp_path / "plain"), workers=1), progress=False)
    marked = ingest([str(pdf)], IngestConfig(out=str(tmp_path / "marked"), workers=1, watermarks=style,
                                             watermark_fraction=1.0), progress=False)
    assert labels(tmp_path / "marked") == labels(tmp_path / "plain") == [
        "Ferritin 45.2 ng/mL (30 - 400)", "The office file was flagged: 12 pages", "WBC 7.9 ×10^9/L ± 0.3",
        "Invoice No. INV-2024-00871 € 1.234,56"]
    assert marked["watermarked_pages"] == {"(pages)": 1, style: 1} and plain["watermarked_pages"] == {}
    # the painted copy differs from the page, and its text layer is the page's
    src = pymupdf.open(pdf)
    r = src[0].rect
    copy = marked_copy(src, 0, plan_marks(random.Random(1), [style], (0, 0, r.width, r.height),
                                          [ln.bbox for ln in text_lines(src[0])[0]]))
    assert render(copy[0], 72, 10**8).tobytes() != render(src[0], 72, 10**8).tobytes()
    assert [ln.text for ln in text_lines(copy[0])[0]] == [ln.text for ln in text_lines(src[0])[0]]
    b = FolderStore(tmp_path / "marked")
    again = ingest([str(pdf)], IngestConfig(out=str(tmp_path / "again"), workers=1, watermarks=style,
                                            watermark_fraction=1.0), progress=False)
    assert again["watermarked_pages"] == marked["watermarked_pages"]
    assert all(open_store(tmp_path / "again").image_bytes(i) == b.image_bytes(i) for i in range(len(b)))


def test_page_sampling_lists_and_bad_watermark_options(tmp_path, capsys):
    assert select_pages("a.pdf", 5, 0, 0) == [0, 1, 2, 3, 4] == select_pages("a.pdf", 5, 9, 0)
    pick = select_pages("a.pdf", 100, 4, 1)
    assert pick == sorted(pick) and len(set(pick)) == 4 and pick == select_pages("/x/a.pdf", 100, 4, 1)
    assert pick != select_pages("a.pdf", 100, 4, 2)
    doc = pymupdf.open()
    for k in range(6):
        doc.new_page().insert_text((72, 72), f"Page number {k + 1}", fontsize=12)
    doc.save(tmp_path / "six.pdf")
    (tmp_path / "list.txt").write_text("# corpus\nsix.pdf\n")
    assert main(["ingest", "@" + str(tmp_path / "list.txt"), "--out", str(tmp_path / "o"), "--max-pages", "2",
                 "--quiet"]) == 0
    got = labels(tmp_path / "o")
    assert len(got) == 2 and all(t.startswith("Page number") for t in got)
    with pytest.raises(ValueError, match="sparkles"):
        ingest([str(tmp_path / "six.pdf")], IngestConfig(out=str(tmp_path / "w"), watermarks="sparkles"))
    assert main(["ingest", "@" + str(tmp_path / "nolist.txt"), "--out", str(tmp_path / "p")]) == 2
    assert "nolist.txt: cannot read the list of PDFs" in capsys.readouterr().err


# --- lists of stores -----------------------------------------------------------------------------

def test_a_list_of_stores_reads_as_one(lines_store, tmp_path):
    src = FolderStore(lines_store)
    for name, rng in (("a", range(0, 5)), ("b", range(5, 8))):
        with FolderWriter(tmp_path / name) as w:
            for i in rng:
                w.add(f"{i}.png", src.text(i), src.image_bytes(i))
    (tmp_path / "stores.txt").write_text("a\n# comment\nb\n")
    both = open_store(tmp_path)
    assert len(both) == 8 and [both.text(i) for i in range(8)] == [src.text(i) for i in range(8)]
    assert both.name(6).startswith("1/") and both.image_bytes(7) == src.image_bytes(7)
    ds = LineDataset.open(tmp_path / "stores.txt", Charset.load("latin"))
    assert len(ds) == 8 and len(ds.widths()) == 8
    (tmp_path / "only-b.txt").write_text("b\n")  # any .txt file is a list: several lists share stores
    assert [open_store(tmp_path / "only-b.txt").text(i) for i in range(3)] == [src.text(i) for i in range(5, 8)]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "stores.txt").write_text("../a\nmissing\n")
    with pytest.raises(InputError, match="missing"):
        open_store(tmp_path / "bad")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "stores.txt").write_text("\n")
    with pytest.raises(InputError, match="empty"):
        open_store(tmp_path / "empty")


# --- crop geometry ------------------------------------------------------------------------------

def _page_and_lines(tmp_path):
    pdf = write_pdf(tmp_path / "p.pdf", [(60, 80 + 14 * k, f"Line {k}: the quick brown fox jumps, 12.5 mg", "times", 10)
                                         for k in range(6)])
    page = pymupdf.open(pdf)[0]
    pix = page.get_pixmap(dpi=150, colorspace=pymupdf.csGRAY)
    img = np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.width)
    boxes = [ln["bbox"] for b in page.get_text("dict")["blocks"] for ln in b.get("lines", [])]
    return img, [[v * 150 / 72 for v in bb] for bb in boxes]


def test_crops_of_any_margin_normalise_to_the_same_line(tmp_path):
    img, boxes = _page_and_lines(tmp_path)
    x0, y0, x1, y1 = boxes[2]
    h = y1 - y0
    outs = []
    for m in (0.0, 0.1, 0.25, 0.5):  # tight to loose: loose boxes show parts of the lines above and below
        crop = img[int(y0 - m * h):int(np.ceil(y1 + m * h)), int(x0 - m * h):int(np.ceil(x1 + m * h))]
        outs.append(normalise_crop(crop))
    ref = outs[0]
    for o in outs[1:]:
        assert abs(o.shape[0] - ref.shape[0]) <= 2 and abs(o.shape[1] - ref.shape[1]) <= 2
        oh, ow = min(o.shape[0], ref.shape[0]), min(o.shape[1], ref.shape[1])
        assert np.mean(np.abs(o[:oh, :ow].astype(int) - ref[:oh, :ow])) < 8
    loose = img[int(y0 - 0.5 * h):int(y1 + 0.5 * h), int(x0):int(x1)]
    assert (loose[:3] < 128).any() or (loose[-3:] < 128).any()  # the loose crop shows neighbours' ink
    n = normalise_crop(loose)
    assert not (n[:2] < 128).any() and not (n[-2:] < 128).any()  # gone after normalisation
    blank = np.full((30, 200), 240, np.uint8)
    assert normalise_crop(blank) is blank


def test_the_background_level_from_the_histogram_is_the_median_of_the_lighter_half():
    from ocr_robust.data.crop import _background

    rng = np.random.default_rng(0)
    for k in range(3000):
        h, w = (int(v) for v in rng.integers(1, 40, 2))
        lo = int(rng.integers(0, 256))
        img = rng.integers(lo, int(rng.integers(lo, 256)) + 1, (h, w)).astype(np.uint8)
        if k % 3 == 0:  # two levels only: the halves' medians fall between values
            img = rng.choice([lo, 255], (h, w)).astype(np.uint8)
        flat = img.reshape(-1)
        assert _background(img) == int(np.median(flat[flat >= np.median(flat)])), img


def test_crop_jitter_keeps_the_ink_and_is_reproducible(tmp_path):
    img, boxes = _page_and_lines(tmp_path)
    x0, y0, x1, y1 = (int(v) for v in boxes[1])
    crop = img[y0 - 3:y1 + 3, x0 - 3:x1 + 3]
    ink = int((normalise_crop(crop) < 128).sum())
    outs = []
    for seed in (0, 0, 1):
        np.random.seed(seed)
        jit = CropJitter(neighbour_p=1.0, p=1.0)
        outs.append([jit(crop) for _ in range(20)])
    assert all(np.array_equal(a, b) for a, b in zip(outs[0], outs[1]))
    assert any(a.shape != b.shape for a, b in zip(outs[0], outs[2]))
    for o in outs[0]:  # the line's own ink is all there; neighbours only add
        assert (normalise_crop(o) < 128).sum() >= 0.95 * ink


def test_a_model_trained_with_crop_normalisation_reads_with_it(tiny_run, tmp_path):
    from ocr_robust.export import export
    from ocr_robust.inference import Recognizer

    run, _ = tiny_run
    assert Recognizer(run).crop == "ink"  # the default for new runs
    export(run, tmp_path / "e")
    meta = json.loads((tmp_path / "e" / "model.json").read_text())
    assert meta["input"]["crop"] == "ink" and Recognizer(tmp_path / "e").crop == "ink"
    meta["input"].pop("crop")  # an export from before crop normalisation reads crops as they are
    (tmp_path / "e" / "model.json").write_text(json.dumps(meta))
    assert Recognizer(tmp_path / "e").crop == "none"


# --- the real-document suite --------------------------------------------------------------------

def test_real_document_suite_builds_deterministically_with_tight_crops(tmp_path):
    pdfs = []
    for d in range(3):
        doc = pymupdf.open()
        for p in range(3):
            page = doc.new_page()
            for k in range(8):
                page.insert_text((60, 80 + 16 * k), f"Document {d} page {p} line {k}: 4.5 mg/L ± 0.2", fontsize=10)
        doc.save(tmp_path / f"d{d}.pdf")
        pdfs.append(str(tmp_path / f"d{d}.pdf"))
    args = ["benchmark", "build", "--from-pdf", *pdfs, "--max-pages", "2", "--max-lines", "20", "--no-text", "4",
            "--quiet"]
    assert main(args + ["--out", str(tmp_path / "s1")]) == 0
    assert main(args + ["--out", str(tmp_path / "s2")]) == 0
    d = json.loads((tmp_path / "s1" / "suite.json").read_text())
    assert d["version"] == 2 and d["conditions"]["clean"]["lines"] == 20
    assert d["conditions"]["clean"]["documents"] == 3 and d["conditions"]["clean"]["pages"] == 6
    assert "documents' own fonts" in d["conditions"]["clean"]["what"]
    for name, c in d["conditions"].items():
        assert ((tmp_path / "s1" / name / "labels.tsv").read_bytes()
                == (tmp_path / "s2" / name / "labels.tsv").read_bytes())
    assert labels(tmp_path / "s1" / "clean-tight") == labels(tmp_path / "s1" / "clean")
    assert labels(tmp_path / "s1" / "lowres-jpeg") == labels(tmp_path / "s1" / "clean")  # the same sampled lines
    tight, clean = FolderStore(tmp_path / "s1" / "clean-tight"), FolderStore(tmp_path / "s1" / "clean")
    for i in range(3):
        t, c = (decode_grey(s.image_bytes(i), "x") for s in (tight, clean))
        assert t.shape[0] < c.shape[0] and t.shape[1] < c.shape[1]
        assert (t[0] < 200).any() and (t[-1] < 200).any()  # ink touches the box


# --- the PP-OCRv6 anchor ------------------------------------------------------------------------

def test_ppocrv6_reads_a_clean_line_when_installed(tmp_path):
    from ocr_robust.evaluation.engines import anchor

    try:
        eng = anchor("ppocrv6")
    except RuntimeError as e:
        pytest.skip(f"PP-OCRv6 not installed: {e}")
    img, boxes = _page_and_lines(tmp_path)
    x0, y0, x1, y1 = (int(v) for v in boxes[0])
    got = eng.read([img[y0 - 2:y1 + 2, x0 - 4:x1 + 4]])
    assert "PP-OCRv6_rec_small" in eng.how
    assert got[0].replace(" ", "") == "Line0:thequickbrownfoxjumps,12.5mg"


def test_training_transforms_survive_lines_of_dots_and_underscores():
    """A crop of a line of underscores cut to its ink is 2 px tall: the jitter and the
    augmentation must not shrink it to nothing (OpenCV refuses an empty size)."""
    from ocr_robust.augment import Augment
    from ocr_robust.images import resize_to_height

    np.random.seed(0)
    aug, jit = Augment(1.0, seed=0), CropJitter()
    for h, w in [(1, 50), (2, 40), (3, 3), (5, 5), (30, 4), (30, 300)]:
        for k in range(60):
            img = np.full((h, w), 240, np.uint8)
            img[h // 2, : max(1, w // 2)] = 10
            if h == 30:
                img[20:22, 10:290] = 0  # "________" in a 30-px crop
            out = resize_to_height(normalise_crop(aug(jit(img))), 32, 2048)
            assert out.shape[0] == 32 and out.shape[1] >= 1
