"""Words of a reading matched to its truth: the alignment word accuracy counts
(``evaluation.metrics``) and the attacks minimise (``adversarial.attacks``), written once
here, below both."""

from __future__ import annotations

__all__ = ["aligned_matches", "words_matched"]


def aligned_matches(pred: list[str], truth: list[str]) -> int:
    """Number of truth tokens matched (equal and aligned) in a minimum edit-distance
    alignment of ``pred`` to ``truth``; among minimum alignments, the one with most matches."""
    n, m = len(truth), len(pred)
    if n == 0 or m == 0:
        return 0
    # cost[i][j], matches[i][j]: best (min cost, then max matches) for truth[:i] vs pred[:j]
    prev_c = list(range(m + 1))
    prev_k = [0] * (m + 1)
    for i in range(1, n + 1):
        cur_c = [i] + [0] * m
        cur_k = [0] * (m + 1)
        t = truth[i - 1]
        for j in range(1, m + 1):
            same = pred[j - 1] == t
            options = (
                (prev_c[j - 1] + (0 if same else 1), -(prev_k[j - 1] + int(same))),  # match / substitute
                (prev_c[j] + 1, -prev_k[j]),  # truth word deleted
                (cur_c[j - 1] + 1, -cur_k[j - 1]),  # extra predicted word
            )
            c, negk = min(options)
            cur_c[j], cur_k[j] = c, -negk
        prev_c, prev_k = cur_c, cur_k
    return prev_k[m]


def words_matched(reads: list[str], truths: list[str]) -> list[int]:
    """Truth words matched by each reading (whitespace tokens, :func:`aligned_matches`)."""
    return [aligned_matches(r.split(), t.split()) for r, t in zip(reads, truths, strict=True)]
