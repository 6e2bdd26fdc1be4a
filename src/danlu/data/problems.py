"""The data mistakes users make, each as one DataError naming the file, the column and the fix.

`danlu init` (inspect.py) and the data stage (prepare.py) meet the same mistakes — a file with
a header and no rows, a target with one class, a column with no value, cleaning that leaves
nothing — and say them in the same words.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from danlu.errors import DataError

__all__ = ["Presence", "no_rows", "nothing_left", "one_class"]


def no_rows(source: str, columns: list[str]) -> DataError:
    """A file with a header line and no data rows."""
    shown = ", ".join(columns[:8]) + (", ..." if len(columns) > 8 else "")
    return DataError(f"the file has a header line ({shown}) but no data rows; add rows below "
                     "the header", source=source)


def one_class(source: str, target: str | None, values: list, after_cleaning: bool = False
              ) -> DataError:
    """A target column whose rows all hold one value (or none): nothing to classify."""
    seen = f"one value ({values[0]!r})" if values else "no value"
    where = ("after cleaning (data/cleaning.json says which rows were removed and why), "
             if after_cleaning else "")
    return DataError(f"{where}the target has {seen} in every row; classification needs 2 or "
                     "more classes: pick another column as the target (--target / data.target)",
                     column=target, source=source)


def nothing_left(source: str, report: Any) -> DataError:
    """Cleaning removed every row read: the reasons, the columns that caused them, the fix."""
    examples = report.examples
    parts = []
    for reason, n in report.removed.most_common(3):
        cols = sorted({e["column"] for e in examples.get(reason, []) if "column" in e})
        parts.append(f"{reason} {n}" + (f" (column {', '.join(map(repr, cols))})" if cols else ""))
    return DataError(f"cleaning removed every row ({report.rows_in} read; {'; '.join(parts)}): "
                     "drop the column(s) named (data.drop), give them another feature type in "
                     "data.features, or fix those cells in the file",
                     source=source)


class Presence:
    """Which feature columns hold a value in at least one row (streamed chunk by chunk)."""

    def __init__(self, columns: list[str]):
        self.missing = set(columns)  # columns with no value seen so far

    def update(self, chunk: Any) -> None:
        if not self.missing:
            return
        wrong = {i.column for i in chunk.issues if isinstance(i.column, str) and i.mask.any()}
        for c in list(self.missing):
            v = chunk.columns.get(c)
            if v is None or v.ndim != 1 or c in wrong:  # a cell that is not a number is a value
                self.missing.discard(c)
            elif v.dtype == object:
                if any(x is not None and str(x).strip() for x in v):
                    self.missing.discard(c)
            elif not np.isnan(v).all():
                self.missing.discard(c)

    def check(self, source: str, declared: bool) -> None:
        """A DataError for the first column with no value in any row (declared: the recipe
        named it in data.features; else it came from inference)."""
        if not self.missing:
            return
        c = sorted(self.missing)[0]
        fix = ("remove it from data.features or add it to data.drop" if declared else
               "add it to data.drop")
        raise DataError(f"missing in every row: {fix}", column=c, source=source)
