"""danlu's error types: each names what was wrong, what was expected and how to fix it."""

from __future__ import annotations

from typing import Any

__all__ = ["DanluError", "DataError", "GateError", "ParityError", "RecipeError"]


class DanluError(Exception):
    """Base of every error danlu raises on purpose; the CLI prints it without a traceback."""


class RecipeError(DanluError, ValueError):
    """A recipe value is wrong: names the dotted path, the value, the expectation and a fix."""

    def __init__(self, path: str, *, got: Any = None, expected: str, hint: str | None = None):
        self.path, self.got, self.expected, self.hint = path, got, expected, hint
        msg = f"{path}: got {got!r}, expected {expected}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class DataError(DanluError, ValueError):
    """A data row is unusable: names the row number (1-based, as in a spreadsheet), column, reason."""

    def __init__(self, reason: str, *, row: int | None = None, column: str | None = None,
                 source: str | None = None):
        self.reason, self.row, self.column, self.source = reason, row, column, source
        where = ", ".join(p for p in (
            source and f"{source}", row is not None and f"row {row}",
            column is not None and f"column {column!r}") if p)
        super().__init__(f"{where}: {reason}" if where else reason)


class GateError(DanluError):
    """The evaluation gate failed: the model is not packaged."""


class ParityError(DanluError):
    """The exported model disagrees with the trained one beyond tolerance."""
