import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ocr_robust.charset import Charset, ConfusableTable, apply_substitutions
from ocr_robust.errors import InputError

LATIN = Charset.load("latin")
TABLE = ConfusableTable.load("confusables", charset=LATIN)


def test_latin_charset_has_ascii_and_document_symbols():
    assert len(LATIN) == 95 + 16
    for c in " azAZ09~" + "µ°±×·–—‘’“”€£¥§©":
        assert c in LATIN
    assert LATIN.num_classes == len(LATIN) + 1  # blank


def test_encode_decode_round_trip_and_blank_is_zero():
    text = "Ferritin 45.2 ng/mL ±3 µmol/L × 10^9"
    ids = LATIN.encode(text)
    assert 0 not in ids
    assert LATIN.decode(ids) == text
    assert LATIN.decode([0] + ids[:3] + [0]) == text[:3]
    with pytest.raises(ValueError, match="ß"):
        LATIN.encode("Straße")


@pytest.mark.parametrize("content,problem,line", [
    ("a\nbc\n", "one character per line", 2),
    ("a\nb\na\n", "already defined on line 1", 3),
    ("a\n\nb\n", "empty line", 2),
])
def test_malformed_charset_names_file_and_line(tmp_path, content, problem, line):
    f = tmp_path / "bad.txt"
    f.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as e:
        Charset.load(f)
    assert e.value.line == line and problem in str(e.value) and str(f) in str(e.value)


def test_charset_bad_utf8_gives_line(tmp_path):
    f = tmp_path / "bad.txt"
    f.write_bytes(b"a\nb\n\xff\n")
    with pytest.raises(InputError, match=r"bad.txt:3: not valid UTF-8"):
        Charset.load(f)


def test_confusable_table_is_curated_and_rich():
    assert len(TABLE) >= 150
    pairs = {(e.source, e.target) for e in TABLE.entries}
    for a, b in [("rn", "m"), ("cl", "d"), ("vv", "w"), ("li", "h"), ("l", "1"), ("O", "0")]:
        assert (a, b) in pairs and (b, a) in pairs
    assert all(e.weight > 0 for e in TABLE.entries)
    assert TABLE.stats()["multi"] >= 10


@pytest.mark.parametrize("content,problem", [
    ("l\t1\n", "expected 3 tab-separated columns"),
    ("l\t1\tabc\n", "is not a number"),
    ("l\t1\t-1\n", "positive"),
    ("l\t1\t1\nl\t1\t0.5\n", "already on line 2"),
    ("l\tl\t1\n", "the same"),
    ("ß\tB\t1\n", "not in charset"),
])
def test_malformed_table_names_file_and_line(tmp_path, content, problem):
    f = tmp_path / "bad.tsv"
    f.write_text("# comment\n" + content, encoding="utf-8")
    with pytest.raises(InputError) as e:
        ConfusableTable.load(f, charset=LATIN)
    assert problem in str(e.value)
    assert e.value.line == content.count("\n") + 1 and str(f) in str(e.value)


def test_confuse_uses_table_sources_including_multichar():
    rng = random.Random(0)
    outs = {TABLE.confuse("rn", rng, 1) for _ in range(200)}
    targets = {e.target for e in TABLE.by_source["rn"]} | {e.target for e in TABLE.by_source["r"]} | \
        {t + "n" for t in [e.target for e in TABLE.by_source["r"]]} | {"r" + e.target for e in TABLE.by_source["n"]}
    assert "m" in outs and outs <= targets


def test_confuse_without_confusable_characters_returns_text_unchanged(tmp_path):
    assert TABLE.confuse("", random.Random(0), 3) == ""
    (tmp_path / "t.tsv").write_text("rn\tm\t1\n", encoding="utf-8")
    t = ConfusableTable.load(tmp_path / "t.tsv")
    assert t.confuse("hello", random.Random(0), 2) == "hello"
    assert t.confuse("corner", random.Random(0), 2) == "comer"


def test_confuse_is_deterministic_for_a_seed():
    a = [TABLE.confuse("Ferritin 10 ng/mL", random.Random(s), 2) for s in range(20)]
    b = [TABLE.confuse("Ferritin 10 ng/mL", random.Random(s), 2) for s in range(20)]
    assert a == b and len(set(a)) > 5


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=LATIN.chars, max_size=40), seed=st.integers(0, 2**32), n=st.integers(1, 4))
def test_confuse_only_makes_table_substitutions(text, seed, n):
    subs = TABLE.substitutions(text, random.Random(seed), n)
    assert len(subs) <= n
    pairs = {(e.source, e.target) for e in TABLE.entries}
    end = -1
    for pos, src, tgt in subs:
        assert (src, tgt) in pairs
        assert text[pos:pos + len(src)] == src
        assert pos >= end  # non-overlapping
        end = pos + len(src)
    out = TABLE.confuse(text, random.Random(seed), n)
    assert out == apply_substitutions(text, subs)
    assert LATIN.missing(out) == []
    if TABLE.candidates(text):
        assert subs
    if len(subs) == 1:
        assert out != text


def test_the_confusable_table_splits_by_pair_into_training_and_evaluation_parts():
    """The realtime mode aims at the training pairs; the targeted attack that evaluates it at
    pairs it never trained on (issue 20)."""
    from ocr_robust.evaluation.attacks import attack_store
    from ocr_robust.training import MODES

    train, held = TABLE.split()
    pairs = lambda t: {frozenset((e.source, e.target)) for e in t.entries}  # noqa: E731
    assert not pairs(train) & pairs(held) and len(train) + len(held) == len(TABLE)
    assert 0.2 < len(held) / len(TABLE) < 0.4
    assert [e.source for e in TABLE.split()[1].entries] == [e.source for e in held.entries]  # the same every time
    assert pairs(ConfusableTable.load("confusables:eval", LATIN)) == pairs(held)
    assert MODES["realtime"]().table_name == "confusables:train"
    import inspect

    assert inspect.signature(attack_store).parameters["confusables"].default == "confusables:eval"
