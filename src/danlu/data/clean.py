"""Cleaning rules for invalid rows and outliers; every removal is counted by reason.

Invalid rows (per chunk, while streaming) are found by the reader (a cell that is not a number:
`wrong_type`, a row with the wrong number of columns: `wrong_column_count`, an image of the wrong
shape: `wrong_shape`), by each feature type (`Feature.invalid`: a missing or non-finite number
`nan_or_inf`, a value outside a declared range `out_of_range`, empty text `empty_text`) and here (a
missing label, `missing_label`). Policy `drop` counts and removes them; `fail` raises DataError
naming the first offending row and column.

Missing values (`preprocess.clean.missing`): `impute` (the default) keeps a row with missing
number cells (the number feature imputes them in the graph: a training median plus a missing
indicator); a cell that is not a number in such a column (`wrong_type`) is imputed as missing
too and its row only counted (`flagged`), not removed, though `invalid: fail` still stops on it.
`imputed` counts the imputed cells per column of the rows kept. `drop` removes rows with a
missing number (`nan_or_inf`) or a non-number cell (`wrong_type`). A missing target always
removes its row (`missing_label`); +-inf is never imputed (`infinite`, or `nan_or_inf` under drop).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from danlu.data.config import OutlierConfig
from danlu.data.readers import Issue
from danlu.data.stats import RunningStats
from danlu.errors import DataError

__all__ = ["CleaningReport", "chunk_issues", "count_bad_lines", "outlier_mask", "select_valid"]

EXAMPLES = 5  # rows kept per reason in cleaning.json, enough to find the pattern


class CleaningReport:
    """Counts per reason plus a few example rows; written as data/cleaning.json."""

    def __init__(self) -> None:
        self.rows_in = 0
        self.removed: Counter[str] = Counter()
        self.flagged: Counter[str] = Counter()
        self.examples: dict[str, list[dict[str, Any]]] = {}
        self.details: dict[str, Any] = {}
        self.imputed: Counter[str] = Counter()  # cells per column

    def count_imputed(self, features: list, values: dict[str, np.ndarray], clean: Any) -> None:
        """Count the missing (NaN) cells, per column, of the features that impute them."""
        for f in features:
            if f.imputes(clean) and len(values[f.name]):
                nan = np.isnan(np.asarray(values[f.name], dtype=np.float64)).sum(axis=0)
                for col, n in zip(f.columns, np.atleast_1d(nan), strict=True):
                    if n:
                        self.imputed[col] += int(n)

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
                "flagged": dict(sorted(self.flagged.items())),
                "imputed": dict(sorted(self.imputed.items())),
                "imputed_total": sum(self.imputed.values()), **self.details,
                "examples": self.examples}


def _fail_or_count(issue: Issue, rows: np.ndarray, policy: str, report: CleaningReport,
                   source: str) -> None:
    idx = np.flatnonzero(issue.mask)
    cols = issue.column[idx] if isinstance(issue.column, np.ndarray) else issue.column
    if policy == "fail":
        col = cols[0] if isinstance(cols, np.ndarray) else cols
        reason = issue.reason.replace("_", " ") + (f" ({issue.detail})" if issue.detail else "")
        what = "remove and count such rows" if issue.removes else \
            "impute such cells as missing and count them"
        raise DataError(f"{reason}; preprocess.clean.invalid is 'fail' (use 'drop' to {what})",
                        row=int(rows[idx[0]]), column=str(col), source=source)
    report.add(issue.reason, rows[idx], cols)


def chunk_issues(chunk: Any, values: dict[str, np.ndarray], features: list, clean: Any,
                 target: str | None) -> list[Issue]:
    """Every issue of a chunk: the reader's, each feature's (`Feature.invalid` on its values),
    and a missing label. A cell that is not a number in a column whose feature imputes missing
    values is only flagged: the reader left NaN there, imputed like any missing cell."""
    imputing = {c for f in features if f.imputes(clean) for c in f.columns}
    issues = [Issue(i.reason, i.mask, i.column, i.detail, removes=False)
              if i.reason == "wrong_type" and isinstance(i.column, str) and i.column in imputing
              else i for i in chunk.issues]
    for f in features:
        issues += f.invalid(values[f.name], clean)
    issues.append(Issue("missing_label", chunk.labels < 0, target or "label"))
    return issues


def select_valid(rows: np.ndarray, issues: list[Issue], policy: str, report: CleaningReport,
                 source: str) -> np.ndarray:
    """Mask of a chunk's valid rows given its issues (the reader's, each feature's, a missing
    label); counts (drop) or raises on (fail) the others. A row is counted once, under the
    first issue that caught it. Issues that do not remove (`removes=False`) are counted as
    `flagged` on the rows kept; `fail` stops on them too."""
    issues = [i for i in issues if i.mask.any()]
    if policy == "fail" and issues:
        # The first offending row across every rule, as a user reading the file would meet it.
        first = min(issues, key=lambda i: rows[np.flatnonzero(i.mask)[0]])
        _fail_or_count(first, rows, "fail", report, source)
    valid = np.ones(len(rows), dtype=bool)
    for issue in issues:
        if issue.removes:
            issue.mask &= valid
            _fail_or_count(issue, rows, "drop", report, source)
            valid &= ~issue.mask
    for issue in issues:
        if not issue.removes:
            idx = np.flatnonzero(issue.mask & valid)
            cols = issue.column[idx] if isinstance(issue.column, np.ndarray) else issue.column
            report.add(issue.reason, rows[idx], cols, removed=False)
    return valid


def count_bad_lines(reader: Any, policy: str, report: CleaningReport, seen: int, source: str,
                    before: int | None = None) -> int:
    """Count the csv rows with the wrong number of cells the reader met since `seen` (removed as
    `wrong_column_count`, and read: rows_in); with `fail`, stop at the first one (when `before`
    is given, only if it comes before that row). Returns how many were seen in all."""
    new = reader.bad_lines[seen:]
    if not new or (before is not None and new[0][0] > before):
        return seen
    if policy == "fail":
        row, text = new[0]
        raise DataError(f"wrong number of columns ({text[:80]!r}, expected "
                        f"{len(reader.columns) + 1}); preprocess.clean.invalid is 'fail' "
                        "(use 'drop' to remove and count such rows)", row=row, source=source)
    report.rows_in += len(new)
    report.removed["wrong_column_count"] += len(new)
    ex = report.examples.setdefault("wrong_column_count", [])
    ex.extend({"row": r, "text": t[:200]} for r, t in new[: max(0, EXAMPLES - len(ex))])
    return seen + len(new)


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
