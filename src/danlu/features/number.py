"""`number`: numeric columns. Every number column of a recipe forms one feature, the table's
FP32 matrix (`features [-1, k]`), normalized in the graph with statistics of the training split.

Missing values (NaN: an empty or "NA" cell, a client's null) are imputed inside the graph: each
column's median of the training split replaces them (IsNaN + Where in the ONNX graph), then the
columns are normalized, then one 0/1 missing indicator is appended per column that had a missing
value in training (`width()` = columns + indicators). The median is exact while the training
split has at most `median_sample` rows; above that it is the median of a seeded uniform sample of
that many rows (bottom-k sampling, data.stats.RunningStats), whose rank error is about
sqrt(0.25 / s) for a column with s present values in the sample: +-0.16 percentile points at
s = 100,000, +-0.5 at 10,000 (one standard error).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from danlu.data.readers import Issue
from danlu.features.base import Feature, features
from danlu.features.normalize import Normalizer

__all__ = ["MEDIAN_CELLS", "NumberFeature", "median_sample", "range_issue"]

# Cells (rows x columns, float64) kept to estimate the medians: 80 MB at most.
MEDIAN_CELLS = 10_000_000


def median_sample(columns: int) -> int:
    """Rows sampled for the medians: 100,000 up to 100 columns, then fewer (10,000 at least)."""
    return int(min(100_000, max(10_000, MEDIAN_CELLS // max(columns, 1))))


@features.register("number")
class NumberFeature(Feature):
    type = "number"
    group = "features"
    augmentations = ("noise", "mixup")
    # preprocess.clean.outliers applies to numbers (flagged by train statistics).
    outliers = True
    options_taken = ("normalize", "per", "bins")
    tabular = True

    @classmethod
    def recognise(cls, column: Any) -> str | None:
        if column.numeric and not column.all_missing:
            return f"numbers ({column.describe()})"
        return None

    def imputes(self, clean: Any) -> bool:
        return getattr(clean, "missing", "impute") == "impute"

    def invalid(self, values: np.ndarray, clean: Any) -> list[Issue]:
        issues = []
        # impute: a missing cell is imputed in the graph, only +-inf is invalid (`infinite`);
        # drop: a missing or infinite cell removes its row (`nan_or_inf`).
        imputes = self.imputes(clean)
        bad = np.isinf(values) if imputes else ~np.isfinite(values)
        if bad.any():
            issues.append(Issue("infinite" if imputes else "nan_or_inf", bad.any(axis=1),
                                np.asarray(self.columns, dtype=object)[bad.argmax(axis=1)]))
        if clean.ranges:
            issues.append(range_issue(values, self.columns, clean.ranges))
        return issues

    def _normalizer(self) -> Normalizer:
        n = getattr(self, "normalizer_", None)
        if n is None:
            if self.options.get("per", "feature") == "channel":
                from danlu.errors import RecipeError

                raise RecipeError("preprocess.per", got="channel", expected="image data for "
                                  "per-channel normalization", hint="use per: feature, or declare "
                                  "the pixel columns as an image feature")
            n = self.normalizer_ = Normalizer(self.options.get("normalize", "zscore"))
        return n

    def partial_fit(self, values: np.ndarray) -> NumberFeature:
        from danlu.data.stats import RunningStats

        self._normalizer().partial_fit(values)
        if getattr(self, "stats_", None) is None:
            k = len(self.columns)
            self.stats_ = RunningStats(k, sample=median_sample(k))
        self.stats_.update(values, keep_sample=True)
        self.impute_ = self.bins_ = None  # refreshed on the next state_dict()
        return self

    def _impute(self) -> dict[str, Any]:
        """{median, missing (training cells per column), indicators (columns), estimate}."""
        state = getattr(self, "impute_", None)
        if state is not None:
            return state
        stats = getattr(self, "stats_", None)
        if stats is None or stats.n == 0:  # no training rows
            k = len(self.columns)
            median, missing, estimate = np.zeros(k), np.zeros(k, dtype=np.int64), "exact"
        else:
            median, missing = stats.quantile(0.5), stats.missing
            estimate = "exact" if stats.exact_quantiles else (
                f"approximate (uniform sample of {stats.sample_size} rows)")
        state = self.impute_ = {
            "median": [float(np.float32(m)) for m in median],
            "missing": [int(m) for m in missing],
            "indicators": [c for c, m in zip(self.columns, missing, strict=True) if m > 0],
            "median_estimate": estimate}
        return state

    def state_dict(self) -> dict[str, Any]:
        n = self._normalizer()
        if not hasattr(n, "shift_"):  # no training rows: the identity
            n.fit(np.zeros((1, len(self.columns))))
        state = {"normalize": n.state_dict(), "impute": self._impute()}
        if self.options.get("bins"):
            state["bins"] = self._bins()
        return state

    def _bins(self) -> list[list[float]]:
        """Per column, the training split's quantiles at 0, 1/T, ..., 1 (T = options.bins):
        the edges of its piecewise-linear encoding."""
        edges = getattr(self, "bins_", None)
        if edges is None:
            t = int(self.options["bins"])
            stats = getattr(self, "stats_", None)
            if stats is None or stats.n == 0:
                q = np.zeros((len(self.columns), t + 1))
            else:
                q = np.stack([stats.quantile(i / t) for i in range(t + 1)], axis=1)
            edges = self.bins_ = [[float(np.float32(v)) for v in row] for row in q]
        return edges

    def load_state_dict(self, state: dict[str, Any], folder: Any = None) -> NumberFeature:
        self.normalizer_ = Normalizer().load_state_dict(state["normalize"])
        # States written before imputation: NaN becomes the mean (0 after normalizing).
        self.impute_ = state.get("impute") or {
            "median": list(state["normalize"]["shift"]), "missing": [0] * len(self.columns),
            "indicators": [], "median_estimate": "none (an older state)"}
        self.bins_ = state.get("bins")
        if self.bins_:
            self.options["bins"] = len(self.bins_[0]) - 1
        return self

    def table_columns(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        """The raw numbers, NaN as is (trees split missing values to the side that fits best)."""
        return np.asarray(values, np.float64).reshape(len(values), -1), 0

    def width(self) -> int:
        bins = int(self.options.get("bins") or 0)
        return len(self.columns) * (1 + bins) + len(self._impute()["indicators"])

    def module(self):
        from danlu.features.graph import ImputeNormalize

        s = self.state_dict()
        norm, imp = s["normalize"], s["impute"]
        return ImputeNormalize(imp["median"], norm["shift"], norm["scale"],
                               [self.columns.index(c) for c in imp["indicators"]], s.get("bins"))


def range_issue(x: np.ndarray, names: list[str],
                ranges: dict[str, tuple[float | None, float | None]]) -> Issue:
    """Rows with a value outside the declared ranges, and the first offending column of each."""
    from danlu.errors import RecipeError

    unknown = [c for c in ranges if c != "*" and c not in names]
    if unknown:
        raise RecipeError(f"preprocess.clean.ranges.{unknown[0]}", got=unknown[0],
                          expected=f"a number column or '*': one of {', '.join(names[:20])}")
    lo = np.full(len(names), -np.inf)
    hi = np.full(len(names), np.inf)
    for col, (a, b) in ranges.items():
        sel = slice(None) if col == "*" else names.index(col)
        lo[sel] = -np.inf if a is None else a
        hi[sel] = np.inf if b is None else b
    with np.errstate(invalid="ignore"):
        out = (x < lo) | (x > hi)
    return Issue("out_of_range", out.any(axis=1), np.asarray(names, dtype=object)[out.argmax(axis=1)],
                 "outside preprocess.clean.ranges")
