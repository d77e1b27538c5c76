"""Property-based tests (hypothesis): the charset and confusion code, the label parser, the
degradation spec parser and PDF opening hold for any input, and fail only with the project's
one-line errors."""

import random
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ocr_robust.adversarial.confusion import TextConfuser
from ocr_robust.charset import Charset, ConfusableTable
from ocr_robust.data.store import FolderStore
from ocr_robust.errors import InputError
from ocr_robust.evaluation.metrics import Scores, char_substitutions
from ocr_robust.pdf.degrade import parse_degrade
from ocr_robust.pdf.read import PageReader

CHARSET = Charset.load("latin")
TABLE = ConfusableTable.load("confusables", CHARSET)
CONFUSER = TextConfuser(TABLE, CHARSET)
READER = PageReader(timeout_s=20)  # opening runs in a page worker, as in the service
in_charset = st.text(alphabet=st.sampled_from(CHARSET.chars), max_size=60)


@given(in_charset)
def test_charset_encode_decode_round_trips(text):
    ids = CHARSET.encode(text)
    assert all(1 <= i < CHARSET.num_classes for i in ids) and CHARSET.decode(ids) == text


@given(st.text(max_size=40))
def test_missing_characters_are_exactly_those_outside_the_charset(text):
    missing = CHARSET.missing(text)
    assert set(missing) == {c for c in text if c not in CHARSET}


@given(in_charset, st.integers(0, 2**32))
def test_confusion_stays_in_the_charset_and_changes_the_line(text, seed):
    out = CONFUSER.confuse(text, random.Random(seed))
    assert not CHARSET.missing(out)
    assert out != text  # fallback edit or hallucination target: never the truth
    subs = TABLE.substitutions(text, random.Random(seed), CONFUSER.n_subs(text)) if text.strip() else []
    for pos, src, dst in subs:  # table substitutions replace a source the line really has
        assert text[pos : pos + len(src)] == src and src != dst


@given(st.binary(max_size=400))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=60)
def test_any_labels_file_gives_samples_or_named_problems(tmp_path_factory, raw):
    d = tmp_path_factory.mktemp("labels")
    (d / "images").mkdir()
    (d / "images" / "a.png").write_bytes(b"x")
    (d / "labels.tsv").write_bytes(raw)
    store = FolderStore(d)
    for p in store.problems:
        assert p.startswith(str(d / "labels.tsv") + ":")
    for s in store.samples:
        assert s.name == "images/a.png" and "\t" not in s.text


@given(st.text(max_size=40))
def test_degradation_specs_parse_or_fail_with_a_value_error(spec):
    try:
        degs = parse_degrade(spec)
    except ValueError as e:
        assert str(e)
        return
    assert all(d.lo <= d.hi for d in degs)


@given(st.binary(max_size=2000))
@settings(max_examples=80, deadline=None)
def test_any_bytes_open_as_a_pdf_or_fail_with_one_input_error(data):
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "upload.pdf"
        f.write_bytes(data)
        try:
            n = READER.open(f, "upload.pdf")
        except InputError as e:
            assert str(e).startswith("upload.pdf: ")
            return
    assert n > 0


@given(in_charset, in_charset)
def test_metrics_are_bounded_and_substitutions_are_real(pred, truth):
    s = Scores().update([pred], [truth])
    assert 0 <= s.words_matched <= s.words and s.char_errors >= 0
    for a, b in char_substitutions(pred, truth):
        assert a != b and a in truth and b in pred
