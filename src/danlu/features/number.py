"""`number`: numeric columns. Every number column of a recipe forms one feature, the table's
FP32 matrix (`features [-1, k]`), normalized in the graph with statistics of the training split."""

from __future__ import annotations

from typing import Any

import numpy as np

from danlu.data.readers import Issue
from danlu.features.base import Feature, features
from danlu.features.normalize import Normalizer

__all__ = ["NumberFeature", "range_issue"]


@features.register("number")
class NumberFeature(Feature):
    type = "number"
    group = "features"
    augmentations = ("noise", "mixup")
    # preprocess.clean.outliers applies to numbers (flagged by train statistics).
    outliers = True
    options_taken = ("normalize", "per")
    tabular = True

    @classmethod
    def recognise(cls, column: Any) -> str | None:
        if column.numeric and not column.all_missing:
            return f"numbers ({column.describe()})"
        return None

    def invalid(self, values: np.ndarray, clean: Any) -> list[Issue]:
        issues = []
        bad = ~np.isfinite(values)
        if bad.any():
            issues.append(Issue("nan_or_inf", bad.any(axis=1),
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
        self._normalizer().partial_fit(values)
        return self

    def state_dict(self) -> dict[str, Any]:
        n = self._normalizer()
        if not hasattr(n, "shift_"):  # no training rows: the identity
            n.fit(np.zeros((1, len(self.columns))))
        return {"normalize": n.state_dict()}

    def load_state_dict(self, state: dict[str, Any], folder: Any = None) -> NumberFeature:
        self.normalizer_ = Normalizer().load_state_dict(state["normalize"])
        return self

    def table_columns(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        """The raw numbers, NaN as is (trees split missing values to the side that fits best)."""
        return np.asarray(values, np.float64).reshape(len(values), -1), 0

    def module(self):
        from danlu.features.graph import Normalize

        s = self.state_dict()["normalize"]
        return Normalize(s["shift"], s["scale"])


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
