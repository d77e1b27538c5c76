import math

import pytest

from ocr_robust.evaluation.metrics import aligned_matches, score


@pytest.mark.parametrize("pred,truth,matched", [
    # hand-worked: truth words, and which survive a minimum word-level alignment
    ("Ferritin 45 ng/mL", "Ferritin 45 ng/mL", 3),
    ("Ferritin 46 ng/mL", "Ferritin 45 ng/mL", 2),           # one substitution
    ("Ferritin ng/mL", "Ferritin 45 ng/mL", 2),              # one deletion
    ("the Ferritin 45 ng/mL", "Ferritin 45 ng/mL", 3),       # one insertion costs no truth word
    ("Ferri tin 45 ng/mL", "Ferritin 45 ng/mL", 2),          # split word: 1 sub + 1 ins
    ("45 Ferritin", "Ferritin 45", 1),                       # swapped: only one can align
    ("", "a b c", 0),
    ("a b c", "", 0),
])
def test_word_matches_hand_worked(pred, truth, matched):
    assert aligned_matches(pred.split(), truth.split()) == matched


def test_scores_hand_worked_example():
    preds = ["hCG 5 mIU/mL", "lCG 5 miu/mL", "", "noise"]
    truth = ["hCG 5 mIU/mL", "hCG 5 mIU/mL", "Negative", ""]
    s = score(preds, truth)
    # words: 3 + 3 + 1 (+0 for the empty truth) = 7; matched: line 1 all 3;
    # line 2: 'lCG'!='hCG', '5'=='5', 'miu/mL'!='mIU/mL' -> 1; line 3: 0 -> 4.
    assert s.words == 7 and s.words_matched == 4
    assert s.word_acc == pytest.approx(4 / 7)
    # caseless: line 2 gains 'mIU/mL' -> 5 matched
    assert s.word_acc_caseless == pytest.approx(5 / 7)
    # chars: 12 + 12 + 8 + 0 = 32; errors: 0 + (1 + 2) + 8 + 5 = 16
    assert s.chars == 32 and s.char_errors == 16 and s.cer == pytest.approx(0.5)
    assert s.line_acc == pytest.approx(1 / 4)
    assert s.hallucination_rate == 1.0


def test_empty_set_gives_nan_not_a_crash():
    s = score([], [])
    assert math.isnan(s.word_acc) and math.isnan(s.cer)


def test_word_accuracy_has_a_bootstrap_interval_that_narrows_with_more_lines():
    from ocr_robust.evaluation.metrics import Scores

    few = Scores().update(["a b c", "x y", "q"] * 10, ["a b c", "x z", "q"] * 10)
    many = Scores().update(["a b c", "x y", "q"] * 200, ["a b c", "x z", "q"] * 200)
    for s in (few, many):
        lo, hi = s.word_acc_ci()
        assert lo <= s.word_acc <= hi and s.word_acc_ci() == (lo, hi)  # reproducible
    assert many.word_acc_ci()[1] - many.word_acc_ci()[0] < few.word_acc_ci()[1] - few.word_acc_ci()[0]
    assert Scores().update(["a"], ["a"]).word_acc_ci() == (1.0, 1.0)
