"""Recognition metrics, one definition used everywhere (training, bench, benchmark reports).

- word accuracy: ground-truth words matched in a word-level edit-distance alignment of
  prediction to truth, divided by the number of ground-truth words (exact, case-sensitive);
  ``word_acc_caseless`` is the same after lower-casing both;
- CER: character edit distance (Levenshtein, ``editdistance``) / ground-truth characters;
- line accuracy: share of lines read exactly.

Words are whitespace-separated tokens. Sums are over the whole set (micro averages), so a
long line weighs more than a short one. A line with no ground-truth text (a no-text image)
adds nothing to the word and character totals; it counts for line accuracy.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

import editdistance

from ..words import aligned_matches

__all__ = ["aligned_matches", "Scores", "score", "char_substitutions", "confusion_counts"]


@dataclass
class Scores:
    lines: int = 0
    words: int = 0
    words_matched: int = 0
    words_matched_caseless: int = 0
    chars: int = 0
    char_errors: int = 0
    lines_exact: int = 0
    empty_lines: int = 0  # ground truth empty (no-text images)
    empty_read_as_text: int = 0  # ... read as non-empty: hallucinations
    samples: list[tuple[str, str]] = field(default_factory=list, repr=False)
    per_line: list[tuple[int, int]] = field(default_factory=list, repr=False)  # (words matched, words)

    def add(self, pred: str, truth: str) -> None:
        self.lines += 1
        pw, tw = pred.split(), truth.split()
        self.words += len(tw)
        matched = aligned_matches(pw, tw)
        self.words_matched += matched
        self.per_line.append((matched, len(tw)))
        self.words_matched_caseless += aligned_matches([w.lower() for w in pw], [w.lower() for w in tw])
        self.chars += len(truth)
        self.char_errors += editdistance.eval(pred, truth)
        self.lines_exact += int(pred == truth)
        if not truth.strip():
            self.empty_lines += 1
            self.empty_read_as_text += int(bool(pred.strip()))

    @classmethod
    def merged(cls, parts: Iterable[Scores]) -> Scores:
        """The scores of the union of the sets ``parts`` were computed on (the shards of a
        validation set scored on several ranks): counts add, per-line records concatenate."""
        out = cls()
        for p in parts:
            for k, v in asdict(p).items():
                setattr(out, k, getattr(out, k) + (list(v) if isinstance(v, list) else v))
        return out

    def update(self, preds: Iterable[str], truths: Iterable[str]) -> Scores:
        for p, t in zip(preds, truths, strict=True):
            self.add(p, t)
        return self

    @property
    def word_acc(self) -> float:
        return self.words_matched / self.words if self.words else float("nan")

    def word_acc_ci(self, level: float = 0.95, resamples: int = 2000, seed: int = 0) -> tuple[float, float]:
        """A bootstrap confidence interval of the word accuracy (percentile method): lines
        drawn with replacement, ``resamples`` times, each time words matched / words."""
        import numpy as np

        if not self.per_line:
            return float("nan"), float("nan")
        m = np.array(self.per_line, dtype=np.float64)
        idx = np.random.default_rng(seed).integers(0, len(m), size=(resamples, len(m)))
        accs = m[idx, 0].sum(1) / np.maximum(m[idx, 1].sum(1), 1)
        lo, hi = np.quantile(accs, [(1 - level) / 2, 1 - (1 - level) / 2])
        return float(lo), float(hi)

    @property
    def word_acc_caseless(self) -> float:
        return self.words_matched_caseless / self.words if self.words else float("nan")

    @property
    def cer(self) -> float:
        return self.char_errors / self.chars if self.chars else float("nan")

    @property
    def line_acc(self) -> float:
        return self.lines_exact / self.lines if self.lines else float("nan")

    @property
    def hallucination_rate(self) -> float:
        return self.empty_read_as_text / self.empty_lines if self.empty_lines else float("nan")

    def summary(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k != "samples"}
        d.update(word_acc=self.word_acc, word_acc_caseless=self.word_acc_caseless, cer=self.cer,
                 line_acc=self.line_acc, hallucination_rate=self.hallucination_rate)
        return d


def score(preds: Iterable[str], truths: Iterable[str]) -> Scores:
    return Scores().update(preds, truths)


def char_substitutions(pred: str, truth: str) -> list[tuple[str, str]]:
    """(truth character, predicted character) pairs substituted in one minimum-edit
    alignment of ``pred`` to ``truth`` (ties prefer substitution, then deletion)."""
    n, m = len(truth), len(pred)
    d = [[0] * (m + 1) for _ in range(n + 1)]
    for i in range(n + 1):
        d[i][0] = i
    for j in range(m + 1):
        d[0][j] = j
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j - 1] + (truth[i - 1] != pred[j - 1]), d[i - 1][j] + 1, d[i][j - 1] + 1)
    out, i, j = [], n, m
    while i > 0 and j > 0:
        if d[i][j] == d[i - 1][j - 1] + (truth[i - 1] != pred[j - 1]):
            if truth[i - 1] != pred[j - 1]:
                out.append((truth[i - 1], pred[j - 1]))
            i, j = i - 1, j - 1
        elif d[i][j] == d[i - 1][j] + 1:
            i -= 1
        else:
            j -= 1
    return out[::-1]


def confusion_counts(preds: Iterable[str], truths: Iterable[str]) -> Counter:
    """How often each (truth character, read character) substitution occurs over a set."""
    c: Counter = Counter()
    for p, t in zip(preds, truths, strict=True):
        if p != t:
            c.update(char_substitutions(p, t))
    return c
