"""Choosing items by name or by named list, as ``--fonts`` and ``--watermarks`` do, and a
machine's share of a file list (``ingest --shard``)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["resolve_names", "parse_shard", "shard_of"]


def resolve_names(spec: str | Iterable[str], items: Iterable[str], lists: Mapping[str, list[str]], what: str,
                  allow_empty: bool = False) -> list[str]:
    """Items from a comma-separated string (or list) of item names and list names, in order,
    without repeats; an unknown name raises ``ValueError`` listing what exists."""
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec) if s.strip()]
    known = list(items)
    out: list[str] = []
    for name in names:
        if name in lists:
            out.extend(lists[name])
        elif name in known:
            out.append(name)
        else:
            raise ValueError(f"unknown {what} or {what} list {name!r}; lists: {', '.join(lists)}; "
                             f"{what}s: {', '.join(known)}")
    out = list(dict.fromkeys(out))
    if not out and not allow_empty:
        raise ValueError(f"{what} selection {spec!r} is empty on this machine")
    return out


def parse_shard(spec: str) -> tuple[int, int]:
    """``"I/N"`` (0 <= I < N) -> (I, N)."""
    try:
        i, n = (int(v) for v in spec.split("/"))
    except ValueError:
        raise ValueError(f"--shard: expected I/N such as 0/4, got {spec!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise ValueError(f"--shard: expected 0 <= I < N, got {spec!r}")
    return i, n


def shard_of(paths: Iterable[str], spec: str) -> list[str]:
    """Shard ``I/N`` of ``paths``: every N-th of the sorted, de-duplicated list, from the
    I-th. The N shards are disjoint and together hold every path, whatever order each
    machine listed them in, so N jobs of a scheduler (a Slurm array, a Kubernetes indexed
    job) can each run ``ingest --shard I/N`` on the same arguments."""
    i, n = parse_shard(spec)
    return sorted(set(paths))[i::n]
