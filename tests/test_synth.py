import hashlib
import json

import numpy as np
import pymupdf
import pytest
from conftest import spec_pdf

from ocr_robust.charset import Charset
from ocr_robust.pdf.fonts import all_faces, font_lists, load_font, resolve_fonts
from ocr_robust.pdf.synth import SIZES, SynthConfig, synthesize
from ocr_robust.pdf.watermarks import STYLES, resolve_styles, style_lists


def test_at_least_ten_faces_all_covering_the_charset():
    faces = all_faces()
    assert len(faces) >= 10
    assert {f.family for f in faces.values()} == {"serif", "sans", "mono"}
    assert {"regular", "bold", "italic"} <= {f.style for f in faces.values()}
    chars = Charset.load("latin").chars
    for key in faces:
        font = load_font(key)
        assert all(font.has_glyph(ord(c)) for c in chars if c != " "), key


def test_named_lists_hold_faces_and_styles_out_of_training():
    fl, sl = font_lists(), style_lists()
    assert fl["train"] and fl["heldout"] and not set(fl["train"]) & set(fl["heldout"])
    assert sl["train"] and sl["heldout"] and not set(sl["train"]) & set(sl["heldout"])
    assert resolve_fonts("times,mono")[0] == "times"
    # every family and style the held-out set tests has a counterpart in training: without a
    # serif italic, held-out times-italic pages were the worst-read pages
    faces = all_faces()
    held = {(faces[k].family, faces[k].style) for k in fl["heldout"]}
    assert held <= {(faces[k].family, faces[k].style) for k in fl["train"]}
    # marks drawn over the text are in training too, in other styles than the held-out ones
    over = [s for s in sl["train"] if STYLES[s][2] == "over"]
    assert {"seal", "notes", "tiled-over"} <= set(over)
    with pytest.raises(ValueError, match="nosuchfont"):
        resolve_fonts("nosuchfont")
    with pytest.raises(ValueError, match="sparkles"):
        resolve_styles("sparkles")


def test_synth_is_deterministic_and_records_each_page(tmp_path):
    outs = []
    for k in range(2):
        out = tmp_path / f"c{k}"
        s = synthesize(SynthConfig(out=str(out), pages=3, seed=11, pages_per_doc=3), progress=False)
        outs.append(out)
    a, b = (hashlib.sha256((o / "doc_00000.pdf").read_bytes()).hexdigest() for o in outs)
    assert a == b
    assert (outs[0] / "manifest.jsonl").read_bytes() == (outs[1] / "manifest.jsonl").read_bytes()
    recs = [json.loads(x) for x in (outs[0] / "manifest.jsonl").read_text().splitlines()]
    assert len(recs) == 3 and all(set(r["fonts"]) <= set(font_lists()["train"]) for r in recs)
    assert all(set(r["watermarks"]) <= set(style_lists()["train"]) for r in recs)
    other = synthesize(SynthConfig(out=str(tmp_path / "o"), pages=3, seed=12, pages_per_doc=3), progress=False)
    assert (tmp_path / "o" / "doc_00000.pdf").read_bytes() != (outs[0] / "doc_00000.pdf").read_bytes()
    assert s["pages"] == other["pages"] == 3


def test_corpus_has_small_print_and_clean_pages(tmp_path):
    s = synthesize(SynthConfig(out=str(tmp_path), pages=24, seed=3, clean_fraction=0.3), progress=False)
    recs = [json.loads(x) for x in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    sizes = [z for r in recs for z in r["sizes"]]
    assert min(sizes) <= 6 and max(sizes) >= 11 and 5 <= min(SIZES) and max(SIZES) <= 14
    assert 0 < s["clean_pages"] < 24
    assert len({r["kind"] for r in recs}) >= 4


@pytest.mark.parametrize("style", list(STYLES))
def test_watermark_pixels_overlap_text_lines(tmp_path, style):
    """The same page drawn with and without its mark differs inside the text-line boxes."""
    seen = 0
    for seed in range(3):
        with_wm = spec_pdf(tmp_path / "a.pdf", seed, "prose", [style], watermarks=True)
        spec_pdf(tmp_path / "b.pdf", seed, "prose", [style], watermarks=False)
        assert [n for n, _ in with_wm.watermarks] == [style]
        imgs = []
        for f in ("a.pdf", "b.pdf"):
            pix = pymupdf.open(tmp_path / f)[0].get_pixmap(dpi=72, colorspace=pymupdf.csGRAY)
            imgs.append(np.frombuffer(pix.samples, np.uint8).reshape(pix.height, pix.stride)[:, : pix.width]
                        .astype(int))
        diff = np.abs(imgs[0] - imgs[1]) > 8
        mask = np.zeros_like(diff)
        for it in with_wm.items:
            x0, y0, x1, y1 = (int(round(v)) for v in it.box())
            mask[max(y0, 0):y1, max(x0, 0):x1] = True
        seen += int((diff & mask).sum())
    assert seen > 50, f"{style}: only {seen} watermark pixels on text lines"
