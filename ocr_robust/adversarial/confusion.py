"""Label confusion: the second, *confused* target the adversary pushes the model toward.

For text (the product's case) a confused label replaces characters of the true label by
visually confusable ones from the confusable table (``l`` -> ``1``, ``rn`` -> ``m``). Lines
without a confusable character fall back to a random edit (substitution, insertion or
deletion), and an empty label (a no-text image) gets a short random text: there the
adversary tries to make the model hallucinate.

The generic confusions of METHODS.md section 1 for other tasks are here too, as reusable
functions: classification (cyclic shift of the class), multi-label (invert or all zeros)
and segmentation (all zeros or a class remap without fixed points).
"""

from __future__ import annotations

import random
from dataclasses import dataclass

import torch

from ..charset import Charset, ConfusableTable, apply_substitutions

__all__ = ["TextConfuser", "random_edit", "confuse_class", "confuse_multilabel", "derangement", "confuse_segmentation"]


@dataclass
class TextConfuser:
    """``confuse(text, rng)`` -> a different text the adversary aims for.

    The number of table substitutions is ``max(1, round(rate * len(text)))`` capped at
    ``max_subs``; sites and targets are drawn by table weight. ``fallback`` says what a line
    without any table source gets: ``edit`` (a random substitution, insertion or deletion
    with characters of the charset) or ``none`` (the line keeps its label, so the adversary
    has no target for it and only the true-label loss trains on it).
    """

    table: ConfusableTable
    charset: Charset
    rate: float = 0.05
    max_subs: int = 3
    fallback: str = "edit"
    hallucination_max_len: int = 3

    def __post_init__(self) -> None:
        if self.fallback not in ("edit", "none"):
            raise ValueError(f"fallback must be 'edit' or 'none', got {self.fallback!r}")
        self._letters = [c for c in self.charset.chars if not c.isspace()]

    def n_subs(self, text: str) -> int:
        return max(1, min(self.max_subs, int(round(self.rate * len(text)))))

    def confuse(self, text: str, rng: random.Random) -> str:
        if not text.strip():  # no-text image: the adversary wants any text read
            n = rng.randint(1, self.hallucination_max_len)
            return "".join(rng.choice(self._letters) for _ in range(n))
        subs = self.table.substitutions(text, rng, self.n_subs(text))
        if subs:
            return apply_substitutions(text, subs)
        if self.fallback == "none":
            return text
        return random_edit(text, self._letters, rng)


def random_edit(text: str, letters: list[str], rng: random.Random) -> str:
    """One random edit that changes ``text``: substitute, insert or delete a character."""
    while True:
        op = rng.choice(("sub", "ins", "del") if len(text) > 1 else ("sub", "ins"))
        i = rng.randrange(len(text) + (op == "ins"))
        if op == "sub":
            out = text[:i] + rng.choice(letters) + text[i + 1:]
        elif op == "ins":
            out = text[:i] + rng.choice(letters) + text[i:]
        else:
            out = text[:i] + text[i + 1:]
        if out != text:
            return out


def confuse_class(labels: torch.Tensor, num_classes: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Classification: each label cyclically shifted by a random non-zero amount. Takes class
    indices (N) or one-hot rows (N x C) and returns the same form; never the true class."""
    onehot = labels.dim() == 2
    idx = labels.argmax(1) if onehot else labels
    shift = torch.randint(1, num_classes, idx.shape, generator=generator, device="cpu").to(idx.device)
    out = (idx + shift) % num_classes
    return torch.nn.functional.one_hot(out, num_classes).to(labels.dtype) if onehot else out


def confuse_multilabel(labels: torch.Tensor, how: str = "invert") -> torch.Tensor:
    """Multi-label (N x C multi-hot): ``invert`` every label, or ``zeros`` (no label at all)."""
    if how == "invert":
        return 1 - labels
    if how == "zeros":
        return torch.zeros_like(labels)
    raise ValueError(f"how must be 'invert' or 'zeros', got {how!r}")


def derangement(n: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A random permutation of 0..n-1 with no fixed point (n >= 2)."""
    if n < 2:
        raise ValueError("a remap needs at least 2 classes")
    while True:
        p = torch.randperm(n, generator=generator)
        if not (p == torch.arange(n)).any():
            return p


def confuse_segmentation(mask: torch.Tensor, num_classes: int, how: str = "remap",
                         generator: torch.Generator | None = None) -> torch.Tensor:
    """Segmentation (integer class mask): ``zeros`` (all background) or ``remap`` (every
    class replaced by another through a random permutation without fixed points)."""
    if how == "zeros":
        return torch.zeros_like(mask)
    if how == "remap":
        return derangement(num_classes, generator).to(mask.device)[mask]
    raise ValueError(f"how must be 'remap' or 'zeros', got {how!r}")

