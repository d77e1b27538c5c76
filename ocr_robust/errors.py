"""Errors a user can cause, each naming the file (and line, where there is one)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["InputError", "TooLarge", "ExportError"]


class InputError(Exception):
    """Bad user input: a file that cannot be used, with where and why.

    ``str(err)`` is the one-line message shown to the user, e.g.
    ``ocr_robust/charsets/x.tsv:12: expected 3 tab-separated columns, got 2``.
    """

    def __init__(self, path: str | Path, problem: str, line: int | None = None):
        self.path = str(path)
        self.problem = problem
        self.line = line
        where = self.path if line is None else f"{self.path}:{line}"
        super().__init__(f"{where}: {problem}")


class ExportError(RuntimeError):
    """An export whose outputs do not match the PyTorch model (parity check failed)."""


class TooLarge(InputError):
    """Input over a size limit (pixels, pages, bytes): refused before the work, not during it."""
