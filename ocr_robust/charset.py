"""Character sets (CTC label encoding) and the table of visually confusable strings.

Charset file: UTF-8, one character per line, the space character is a token (a line holding
a single space); index 0 is the CTC blank and is not in the file.

Confusable table: UTF-8 TSV ``source<TAB>target<TAB>weight``; source and target are non-empty
strings that may differ in length (``rn`` -> ``m``); weight is a positive number, larger
meaning "more often confused". Lines starting with ``#`` and blank lines are ignored.
"""

from __future__ import annotations

import random
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError

__all__ = ["BLANK", "charsets_dir", "resolve_data_file", "Charset", "Confusion", "ConfusableTable",
           "apply_substitutions"]

BLANK = 0


def charsets_dir() -> Path:
    """The folder holding the versioned charset and confusable files (package data, so a
    wheel carries them)."""
    return Path(__file__).resolve().parent / "charsets"


def resolve_data_file(name_or_path: str | Path, suffix: str) -> Path:
    """A path as given, or a bare name (``latin``) looked up in ``ocr_robust/charsets/``."""
    p = Path(name_or_path)
    if p.exists():
        return p
    candidate = charsets_dir() / (p.name if p.suffix else p.name + suffix)
    if candidate.exists():
        return candidate
    raise InputError(p, f"no such file (also looked for {candidate})")


def _read_text(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as e:
        raise InputError(path, f"cannot read: {e.strerror or e}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(path, f"not valid UTF-8 (byte offset {e.start})", line) from None


class Charset:
    """Maps characters to CTC class indices 1..N (0 is the blank)."""

    def __init__(self, chars: Sequence[str], name: str = "custom"):
        seen: dict[str, int] = {}
        for i, c in enumerate(chars):
            if len(c) != 1:
                raise ValueError(f"charset entry {i + 1} is {c!r}: one character expected")
            if c in seen:
                raise ValueError(f"charset entry {i + 1} {c!r} repeats entry {seen[c] + 1}")
            seen[c] = i
        self.chars: list[str] = list(chars)
        self.name = name
        self._index = {c: i + 1 for i, c in enumerate(self.chars)}

    @classmethod
    def load(cls, name_or_path: str | Path = "latin") -> Charset:
        path = resolve_data_file(name_or_path, ".txt")
        text = _read_text(path)
        lines = text.split("\n")
        if lines and lines[-1] == "":
            lines.pop()
        chars: list[str] = []
        first_line: dict[str, int] = {}
        for lineno, raw in enumerate(lines, 1):
            c = raw[:-1] if raw.endswith("\r") else raw
            if len(c) != 1:
                what = "an empty line" if c == "" else f"{len(c)} characters {c!r}"
                raise InputError(path, f"one character per line expected, got {what}", lineno)
            if c in first_line:
                raise InputError(path, f"{c!r} already defined on line {first_line[c]}", lineno)
            first_line[c] = lineno
            chars.append(c)
        if not chars:
            raise InputError(path, "the charset is empty")
        return cls(chars, name=path.stem)

    def __len__(self) -> int:
        return len(self.chars)

    @property
    def num_classes(self) -> int:
        """Output size of a CTC model over this charset (characters + blank)."""
        return len(self.chars) + 1

    def __contains__(self, c: str) -> bool:
        return c in self._index

    def missing(self, text: str) -> list[str]:
        """Characters of ``text`` not in the charset, in order of first appearance."""
        return list(dict.fromkeys(c for c in text if c not in self._index))

    def encode(self, text: str) -> list[int]:
        try:
            return [self._index[c] for c in text]
        except KeyError:
            raise ValueError(
                f"{text!r}: characters not in charset {self.name!r}: {''.join(self.missing(text))!r}"
            ) from None

    def decode(self, ids: Iterable[int]) -> str:
        """Class indices to text; the blank (0) is dropped, nothing is collapsed."""
        return "".join(self.chars[i - 1] for i in ids if i != BLANK)

    def save(self, path: str | Path) -> None:
        Path(path).write_text("".join(c + "\n" for c in self.chars), encoding="utf-8")


@dataclass(frozen=True)
class Confusion:
    source: str
    target: str
    weight: float


HELD_OUT = 0.3  # share of the confusable pairs kept for evaluation (NAME:eval)


class ConfusableTable:
    """Visually confusable strings, used to pick the label an adversary aims for."""

    def __init__(self, entries: Sequence[Confusion], name: str = "custom"):
        self.entries = list(entries)
        self.name = name
        by_source: dict[str, list[Confusion]] = {}
        for e in self.entries:
            by_source.setdefault(e.source, []).append(e)
        self.by_source = by_source
        # Longest sources first so that "rn" is found as well as "r".
        self._sources = sorted(by_source, key=lambda s: (-len(s), s))

    def split(self, held_out: float = HELD_OUT, seed: int = 0) -> tuple[ConfusableTable, ConfusableTable]:
        """(training pairs, evaluation pairs): each unordered pair ({l, 1} holds l -> 1 and
        1 -> l) goes to the evaluation part with probability ``held_out``, decided by a hash of
        the pair and ``seed``, so that the split is the same on every machine and run."""
        def evaluation(e: Confusion) -> bool:
            a, b = sorted((e.source, e.target))
            return zlib.crc32(f"{seed}:{a}\t{b}".encode()) % 10_000 < held_out * 10_000

        train = [e for e in self.entries if not evaluation(e)]
        held = [e for e in self.entries if evaluation(e)]
        return ConfusableTable(train, f"{self.name}:train"), ConfusableTable(held, f"{self.name}:eval")

    @classmethod
    def load(cls, name_or_path: str | Path = "confusables", charset: Charset | None = None) -> ConfusableTable:
        """Read a table; with ``charset`` every source and target must be encodable.
        ``NAME:train`` and ``NAME:eval`` are the two parts of :meth:`split` (adversarial
        training aims at the first; the targeted attack that evaluates it, the second)."""
        base, _, part = str(name_or_path).rpartition(":")
        if part in ("train", "eval") and base:
            train, held = cls.load(base, charset).split()
            return train if part == "train" else held
        path = resolve_data_file(name_or_path, ".tsv")
        text = _read_text(path)
        entries: list[Confusion] = []
        seen: dict[tuple[str, str], int] = {}
        for lineno, raw in enumerate(text.split("\n"), 1):
            line = raw[:-1] if raw.endswith("\r") else raw
            if not line.strip() or line.startswith("#"):
                continue
            cols = line.split("\t")
            if len(cols) != 3:
                raise InputError(path, f"expected 3 tab-separated columns (source, target, weight), got {len(cols)}",
                                 lineno)
            src, tgt, w = cols
            if not src or not tgt:
                raise InputError(path, "source and target must be non-empty", lineno)
            if src == tgt:
                raise InputError(path, f"source and target are the same ({src!r})", lineno)
            try:
                weight = float(w)
            except ValueError:
                raise InputError(path, f"weight {w!r} is not a number", lineno) from None
            if not weight > 0 or weight != weight or weight == float("inf"):
                raise InputError(path, f"weight must be a positive finite number, got {w!r}", lineno)
            if (src, tgt) in seen:
                raise InputError(path, f"pair {src!r} -> {tgt!r} already on line {seen[(src, tgt)]}", lineno)
            if charset is not None:
                bad = charset.missing(src + tgt)
                if bad:
                    raise InputError(path, f"characters not in charset {charset.name!r}: {''.join(bad)!r}", lineno)
            seen[(src, tgt)] = lineno
            entries.append(Confusion(src, tgt, weight))
        if not entries:
            raise InputError(path, "the table has no entries")
        return cls(entries, name=path.stem)

    def __len__(self) -> int:
        return len(self.entries)

    def candidates(self, text: str) -> list[tuple[int, str]]:
        """Every (position, source) where a table source occurs in ``text`` (overlaps included)."""
        found = []
        for i in range(len(text)):
            for s in self._sources:
                if text.startswith(s, i):
                    found.append((i, s))
        return found

    def confuse(self, text: str, rng: random.Random, n: int = 1) -> str:
        """Replace up to ``n`` non-overlapping occurrences of table sources by their targets.

        Sites are drawn without replacement, weighted by the summed weight of their
        substitutions; the target at a site is drawn by weight. Returns ``text`` unchanged
        when no table source occurs in it (the caller decides on a fallback).
        """
        subs = self.substitutions(text, rng, n)
        return apply_substitutions(text, subs)

    def substitutions(self, text: str, rng: random.Random, n: int = 1) -> list[tuple[int, str, str]]:
        """The (position, source, target) choices :meth:`confuse` would apply."""
        sites = self.candidates(text)
        chosen: list[tuple[int, str, str]] = []
        taken = [False] * len(text)
        while sites and len(chosen) < n:
            weights = [sum(e.weight for e in self.by_source[s]) for _, s in sites]
            k = rng.choices(range(len(sites)), weights=weights)[0]
            pos, src = sites[k]
            options = self.by_source[src]
            tgt = rng.choices(options, weights=[e.weight for e in options])[0].target
            chosen.append((pos, src, tgt))
            for j in range(pos, pos + len(src)):
                taken[j] = True
            sites = [(p, s) for p, s in sites if not any(taken[p : p + len(s)])]
        return sorted(chosen)

    def stats(self) -> dict[str, int]:
        c = Counter("multi" if max(len(e.source), len(e.target)) > 1 else "single" for e in self.entries)
        return {"pairs": len(self.entries), "sources": len(self.by_source), **c}


def apply_substitutions(text: str, subs: Sequence[tuple[int, str, str]]) -> str:
    """Apply non-overlapping (position, source, target) substitutions to ``text``."""
    out, last = [], 0
    for pos, src, tgt in sorted(subs):
        if text[pos : pos + len(src)] != src or pos < last:
            raise ValueError(f"substitution {src!r}->{tgt!r} at {pos} does not fit {text!r}")
        out.append(text[last:pos])
        out.append(tgt)
        last = pos + len(src)
    out.append(text[last:])
    return "".join(out)
