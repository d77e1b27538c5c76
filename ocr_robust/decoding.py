"""CTC decoding: greedy, prefix beam search, optional lexicon biasing; per-line confidence.

Input is one line's log-probabilities ``T x C`` (class 0 = blank) as a torch tensor or
NumPy array. Confidence is the per-frame geometric mean of the decoded result's
probability, ``exp(log p / T)``, so that it is comparable between short and long lines:
for greedy decoding ``p`` is the probability of the best path, for beam search the total
probability of the best prefix (summed over its alignments). A number in 0..1.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

import editdistance
import numpy as np

from .charset import BLANK, Charset

__all__ = ["NEG_INF", "Decoded", "greedy_ids", "greedy", "greedy_batch", "beam_search", "apply_lexicon", "decode"]

NEG_INF = -math.inf


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    m = max(a, b)
    return m + math.log1p(math.exp(-abs(a - b)))


@dataclass
class Decoded:
    text: str
    confidence: float


def _np(logp) -> np.ndarray:
    if hasattr(logp, "detach"):
        logp = logp.detach().float().cpu().numpy()
    return np.asarray(logp, dtype=np.float64)


def _collapse(best: np.ndarray) -> np.ndarray:
    """Along axis 0: True where a best-path class starts a new run and is not the blank
    (CTC's "merge repeats, drop blanks", without a loop over frames)."""
    prev = np.concatenate([np.full_like(best[:1], BLANK), best[:-1]])
    return (best != prev) & (best != BLANK)


def greedy_ids(logp) -> list[int]:
    """The best path's class ids with repeats merged and blanks removed."""
    best = np.asarray(logp).argmax(1)
    return best[_collapse(best)].tolist()


def greedy(logp, charset: Charset) -> Decoded:
    lp = _np(logp)
    score = float(lp.max(1).sum())
    return Decoded(charset.decode(greedy_ids(lp)), math.exp(score / max(1, len(lp))))


def greedy_batch(logp, lengths: Sequence[int], charset: Charset) -> list[Decoded]:
    """``logp`` is ``T x N x C``; ``lengths`` the valid frames of each line. The same result
    as :func:`greedy` on each line, computed for the batch at once in numpy: one argmax, one
    collapse mask and one masked sum; Python runs once per line, never per frame."""
    if hasattr(logp, "detach"):
        logp = logp.detach().float().cpu().numpy()
    lp = np.asarray(logp)
    n_frames = np.asarray(lengths, dtype=np.int64)
    best = lp.argmax(2)  # T x N
    valid = np.arange(lp.shape[0])[:, None] < n_frames[None, :]
    keep = _collapse(best) & valid
    score = (np.take_along_axis(lp, best[..., None], 2)[..., 0].astype(np.float64) * valid).sum(0)
    conf = np.exp(score / np.maximum(1, n_frames))
    return [Decoded(charset.decode(best[keep[:, n], n].tolist()), float(conf[n])) for n in range(lp.shape[1])]


def beam_search(logp, charset: Charset, beam: int = 8, prune: float = -12.0) -> list[tuple[str, float]]:
    """CTC prefix beam search; returns up to ``beam`` (text, log-probability), best first.
    Classes whose frame log-probability is below ``prune`` are not extended."""
    lp = _np(logp)
    # prefix -> (log p ending in blank, log p ending in non-blank)
    beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}
    for t in range(lp.shape[0]):
        frame = lp[t]
        cand = [int(c) for c in np.nonzero(frame > prune)[0]]
        if BLANK not in cand:
            cand.append(BLANK)
        nxt: dict[tuple[int, ...], list[float]] = defaultdict(lambda: [NEG_INF, NEG_INF])
        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            for c in cand:
                p = frame[c]
                if c == BLANK:
                    e = nxt[prefix]
                    e[0] = _logaddexp(e[0], total + p)
                    continue
                last = prefix[-1] if prefix else None
                new = prefix + (c,)
                e = nxt[new]
                if c == last:
                    e[1] = _logaddexp(e[1], pb + p)  # a repeat needs a blank in between
                    same = nxt[prefix]
                    same[1] = _logaddexp(same[1], pnb + p)  # collapsed into the same prefix
                else:
                    e[1] = _logaddexp(e[1], total + p)
        ranked = sorted(nxt.items(), key=lambda kv: _logaddexp(*kv[1]), reverse=True)[:beam]
        beams = {k: (v[0], v[1]) for k, v in ranked}
    out = [(charset.decode(k), _logaddexp(*v)) for k, v in beams.items()]
    return sorted(out, key=lambda x: x[1], reverse=True)


def apply_lexicon(candidates: list[tuple[str, float]], lexicon: set[str], max_edits: int = 1,
                  bonus: float = 2.0) -> str:
    """Pick among beam candidates, favouring lines whose words are in ``lexicon``; a word
    within ``max_edits`` of exactly one lexicon word of the same length is corrected to it.
    ``bonus`` is the log-probability credit per in-lexicon word."""

    def fix(word: str) -> str:
        if word in lexicon or not word.isalpha():
            return word
        near = [w for w in lexicon if len(w) == len(word) and editdistance.eval(w, word) <= max_edits]
        return near[0] if len(near) == 1 else word

    best, best_score = candidates[0][0], NEG_INF
    for text, lp in candidates:
        words = text.split()
        score = lp + bonus * sum(w in lexicon for w in words)
        if score > best_score:
            best, best_score = text, score
    return " ".join(fix(w) for w in best.split())


def decode(logp, charset: Charset, method: str = "greedy", beam: int = 8, lexicon: set[str] | None = None) -> Decoded:
    """One line: ``method`` is ``greedy`` or ``beam``; a lexicon implies beam search."""
    if method == "greedy" and not lexicon:
        return greedy(logp, charset)
    if method not in ("greedy", "beam"):
        raise ValueError(f"unknown decoder {method!r}: greedy or beam")
    cands = beam_search(logp, charset, beam=beam)
    conf = math.exp(cands[0][1] / max(1, len(_np(logp))))
    if lexicon:
        return Decoded(apply_lexicon(cands, lexicon), conf)
    return Decoded(cands[0][0], conf)
