"""Choosing items by name or by named list, as ``--fonts`` and ``--watermarks`` do."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

__all__ = ["resolve_names"]


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
