"""Cleaning rules for invalid rows and outliers; every removal is counted by reason.

Invalid rows (per chunk, while streaming): a missing or non-finite value (`nan_or_inf`), a value
outside a declared range (`out_of_range`), a cell that is not a number (`wrong_type`), a row
with the wrong number of columns (`wrong_column_count`), empty text (`empty_text`), an image of
the wrong shape (`wrong_shape`), a missing label (`missing_label`). Policy `drop` counts and
removes them; `fail` raises DataError naming the first offending row and column.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from danlu.data.config import CleanConfig, OutlierConfig
from danlu.data.readers import Chunk, Issue, Reader
from danlu.data.stats import RunningStats
from danlu.errors import DataError, RecipeError

__all__ = ["CleaningReport", "check_chunk", "outlier_mask"]

EXAMPLES = 5  # rows kept per reason in cleaning.json, enough to find the pattern


class CleaningReport:
    """Counts per reason plus a few example rows; written as data/cleaning.json."""

    def __init__(self) -> None:
        self.rows_in = 0
        self.removed: Counter[str] = Counter()
        self.flagged: Counter[str] = Counter()
        self.examples: dict[str, list[dict[str, Any]]] = {}
        self.details: dict[str, Any] = {}

    def add(self, reason: str, rows: np.ndarray, columns: Any = None, removed: bool = True) -> None:
        if len(rows) == 0:
            return
        (self.removed if removed else self.flagged)[reason] += len(rows)
        ex = self.examples.setdefault(reason, [])
        for i in range(min(EXAMPLES - len(ex), len(rows))):
            col = columns[i] if isinstance(columns, (list, np.ndarray)) else columns
            ex.append({"row": int(rows[i]), **({"column": str(col)} if col is not None else {})})

    def to_dict(self, rows_out: int) -> dict[str, Any]:
        return {"rows_in": self.rows_in, "rows_out": rows_out,
                "removed": dict(sorted(self.removed.items())),
                "removed_total": sum(self.removed.values()),
                "flagged": dict(sorted(self.flagged.items())), **self.details,
                "examples": self.examples}


def _fail_or_count(issue: Issue, rows: np.ndarray, policy: str, report: CleaningReport,
                   source: str) -> None:
    idx = np.flatnonzero(issue.mask)
    cols = issue.column[idx] if isinstance(issue.column, np.ndarray) else issue.column
    if policy == "fail":
        col = cols[0] if isinstance(cols, np.ndarray) else cols
        reason = issue.reason.replace("_", " ") + (f" ({issue.detail})" if issue.detail else "")
        raise DataError(f"{reason}; preprocess.clean.invalid is 'fail' (use 'drop' to remove and "
                        "count such rows)", row=int(rows[idx[0]]), column=str(col), source=source)
    report.add(issue.reason, rows[idx], cols)


def check_chunk(chunk: Chunk, reader: Reader, cfg: CleanConfig, report: CleaningReport,
                source: str) -> np.ndarray:
    """Mask of the chunk's valid rows; counts (drop) or raises on (fail) the others."""
    issues = list(chunk.issues)
    if chunk.x is not None:
        bad = ~np.isfinite(chunk.x)
        if bad.any():
            issues.append(Issue("nan_or_inf", bad.any(axis=1),
                                np.asarray(reader.feature_names, dtype=object)[bad.argmax(axis=1)]))
        if cfg.ranges:
            issues.append(_range_issue(chunk.x, reader.feature_names, cfg.ranges))
    if chunk.text is not None:
        empty = np.array([not t.strip() for t in chunk.text], dtype=bool)
        issues.append(Issue("empty_text", empty, reader.feature_names[0]))
    issues.append(Issue("missing_label", chunk.labels < 0, getattr(reader, "target", None) or "label"))
    issues = [i for i in issues if i.mask.any()]
    if cfg.invalid == "fail" and issues:
        # The first offending row across every rule, as a user reading the file would meet it.
        first = min(issues, key=lambda i: chunk.rows[np.flatnonzero(i.mask)[0]])
        _fail_or_count(first, chunk.rows, "fail", report, source)
    valid = np.ones(len(chunk), dtype=bool)
    for issue in issues:
        # A row is counted once, under the first rule that caught it (in the order above).
        issue.mask &= valid
        _fail_or_count(issue, chunk.rows, "drop", report, source)
        valid &= ~issue.mask
    return valid


def _range_issue(x: np.ndarray, names: list[str],
                 ranges: dict[str, tuple[float | None, float | None]]) -> Issue:
    unknown = [c for c in ranges if c != "*" and c not in names]
    if unknown:
        raise RecipeError(f"preprocess.clean.ranges.{unknown[0]}", got=unknown[0],
                          expected=f"a feature column or '*': one of {', '.join(names[:20])}")
    lo = np.full(len(names), -np.inf)
    hi = np.full(len(names), np.inf)
    for col, (a, b) in ranges.items():
        sel = slice(None) if col == "*" else names.index(col)
        lo[sel] = -np.inf if a is None else a
        hi[sel] = np.inf if b is None else b
    with np.errstate(invalid="ignore"):
        out = (x < lo) | (x > hi)
    return Issue("out_of_range", out.any(axis=1),
                 np.asarray(names, dtype=object)[out.argmax(axis=1)], "outside preprocess.clean.ranges")


def outlier_mask(x: np.ndarray, stats: RunningStats, cfg: OutlierConfig) -> np.ndarray:
    """Rows with any feature beyond the z-score or IQR fence (statistics from the train split)."""
    if cfg.method == "zscore":
        std = stats.std
        with np.errstate(divide="ignore", invalid="ignore"):
            z = np.abs(x - stats.mean) / std
        z[:, std <= 1e-12] = 0  # a constant column has no outliers
        return (z > cfg.threshold).any(axis=1)
    q1, q3 = stats.quantile(0.25), stats.quantile(0.75)
    iqr = q3 - q1
    out = (x < q1 - cfg.threshold * iqr) | (x > q3 + cfg.threshold * iqr)
    out[:, iqr <= 1e-12] = False  # Tukey's fences collapse on a (near-)constant column
    return out.any(axis=1)
