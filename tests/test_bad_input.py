import pymupdf
import pytest
from conftest import write_pdf

from ocr_robust.pdf.ingest import IngestConfig, ingest

GOOD = [(60, 80, "Good line 1", "helvetica", 10), (60, 100, "Good line 2", "times", 10)]


def _bad_files(tmp):
    good = write_pdf(tmp / "good.pdf", GOOD)
    (tmp / "random.pdf").write_bytes(bytes(range(256)) * 40)
    data = good.read_bytes()
    (tmp / "truncated.pdf").write_bytes(data[: len(data) // 3])
    doc = pymupdf.open(good)
    doc.save(tmp / "encrypted.pdf", encryption=pymupdf.PDF_ENCRYPT_AES_256, owner_pw="o", user_pw="secret")
    (tmp / "empty.pdf").write_bytes(
        b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\n"
        b"trailer<</Root 1 0 R>>\n%%EOF\n")
    img = pymupdf.open()
    page = img.new_page()
    pix = pymupdf.Pixmap(pymupdf.csGRAY, pymupdf.IRect(0, 0, 200, 50), False)
    pix.clear_with(200)
    page.insert_image(pymupdf.Rect(50, 50, 250, 100), pixmap=pix)
    img.save(tmp / "imageonly.pdf")
    (tmp / "zero.pdf").write_bytes(b"")
    return good


def test_bad_pdfs_are_reported_by_name_and_the_rest_is_ingested(tmp_path):
    good = _bad_files(tmp_path)
    names = ["random", "truncated", "encrypted", "empty", "imageonly", "zero", "missing"]
    pdfs = [str(tmp_path / f"{n}.pdf") for n in names] + [str(good)]
    s = ingest(pdfs, IngestConfig(out=str(tmp_path / "out"), workers=2), progress=False)
    assert [line.split("\t")[1].strip() for line in open(tmp_path / "out" / "labels.tsv")] == [
        "Good line 1", "Good line 2"]
    failed = {f["file"].rsplit("/", 1)[1]: f["reason"] for f in s["files_failed"]}
    assert "encrypted" in failed["encrypted.pdf"]
    assert "image-only" in failed["imageonly.pdf"]
    assert "no such file" in failed["missing.pdf"]
    assert "no pages" in failed["empty.pdf"] or "not a readable PDF" in failed["empty.pdf"]
    assert "not a readable PDF" in failed["random.pdf"] and "not a readable PDF" in failed["zero.pdf"]
    # MuPDF rebuilds the truncated file's structure, but its text is gone: reported as damaged.
    assert "damaged PDF" in failed["truncated.pdf"]


def test_oversized_page_is_refused_not_rendered(tmp_path):
    doc = pymupdf.open()
    for size in [(595, 842), (14400, 14400), (595, 842)]:
        page = doc.new_page(width=size[0], height=size[1])
        page.insert_text((60, 80), f"Page {doc.page_count}", fontsize=10)
    doc.save(tmp_path / "huge.pdf")
    s = ingest([str(tmp_path / "huge.pdf")], IngestConfig(out=str(tmp_path / "o"), workers=1), progress=False)
    assert s["pages_ok"] == 2 and s["lines"] == 2
    (fail,) = s["page_failures"]
    assert fail["page"] == 2 and "too large" in fail["reason"] and "30000x30000" in fail["reason"]


def test_lines_outside_charset_are_skipped_and_counted_per_character(tmp_path):
    pdf = write_pdf(tmp_path / "x.pdf", GOOD + [(60, 120, "Straße ßß", "notosans", 10),
                                                (60, 140, "Ωmega", "notosans", 10)])
    s = ingest([str(pdf)], IngestConfig(out=str(tmp_path / "o"), workers=1), progress=False)
    assert s["lines"] == 2
    assert s["lines_skipped"]["characters outside the charset"] == 2
    assert s["skipped_chars"] == {"ß": 1, "Ω": 1}


def test_bad_charset_fails_early_with_file_and_line(tmp_path):
    from ocr_robust.errors import InputError

    (tmp_path / "cs.txt").write_text("a\nab\n", encoding="utf-8")
    pdf = write_pdf(tmp_path / "x.pdf", GOOD)
    with pytest.raises(InputError, match=r"cs.txt:2"):
        ingest([str(pdf)], IngestConfig(out=str(tmp_path / "o"), charset=str(tmp_path / "cs.txt")), progress=False)
