"""Recipe section `evaluate` (pydantic only, no torch)."""

from __future__ import annotations

import difflib
from typing import Literal

from pydantic import Field, field_validator

from danlu.data.config import Section

__all__ = ["GATE_METRICS", "BootstrapConfig", "EvaluateConfig", "ImbalanceConfig"]

# Test-split metrics a gate may name: classification (a minimum; fractions in [0, 1]) and
# regression: r2 a minimum (at most 1), mae/rmse/mape a maximum (in the target's units; mape a
# fraction) -- a model whose error is above it is not packaged.
FRACTION_METRICS = ("accuracy", "balanced_accuracy",
                    *(f"{m}_{a}" for m in ("precision", "recall", "f1")
                      for a in ("macro", "micro", "weighted")))
MAXIMUM_METRICS = ("mae", "rmse", "mape")
GATE_METRICS = (*FRACTION_METRICS, "r2", *MAXIMUM_METRICS)


class BootstrapConfig(Section):
    # 1,000 resamples put the interval ends within ~0.3 pt of their limit on a 360-row test
    # split and take well under a second; 0 turns the intervals off.
    resamples: int = Field(1000, ge=0, le=1_000_000)
    # Two-sided coverage of the percentile intervals written next to every headline metric.
    confidence: float = Field(0.95, gt=0, lt=1)


class ImbalanceConfig(Section):
    # Above this share of the test rows in one class, accuracy rewards predicting that class.
    majority_share: float = Field(0.6, gt=0, le=1)
    # Accuracy this far (absolute) from balanced accuracy means the classes fare unequally.
    accuracy_gap: float = Field(0.05, ge=0, le=1)


class EvaluateConfig(Section):
    # Bounds on test-split metrics, e.g. {accuracy: 0.95} or {r2: 0.5, rmse: 500}: a minimum for
    # classification metrics and r2, a maximum for errors (mae, rmse, mape); a miss stops
    # packaging (non-zero exit).
    gate: dict[str, float] = Field(default_factory=dict)
    bootstrap: BootstrapConfig = BootstrapConfig()
    # When either limit is crossed, metrics.json, the CLI and the report warn that accuracy
    # misleads here and lead with macro-F1 and balanced accuracy.
    imbalance: ImbalanceConfig = ImbalanceConfig()
    # gbdt: beside a model of table features only (numbers, categories), fit scikit-learn's
    # HistGradientBoosting on the same training split and compare on the test rows
    # (eval/baseline.json) — seconds on tables, and it says whether a GBDT would do better.
    # none: skip it. Models with image or text inputs never get one.
    baseline: Literal["gbdt", "none"] = "gbdt"

    @field_validator("gate")
    @classmethod
    def _known_metrics(cls, v: dict[str, float]) -> dict[str, float]:
        for name, minimum in v.items():
            if name not in GATE_METRICS:
                near = difflib.get_close_matches(name, GATE_METRICS, n=1)
                hint = f"; did you mean {near[0]!r}?" if near else ""
                raise ValueError(f"gate metric {name!r} is not one of {', '.join(GATE_METRICS)}{hint}")
            if name in FRACTION_METRICS and not 0 <= minimum <= 1:
                raise ValueError(f"gate minimum for {name} must be in [0, 1], got {minimum}")
            if name == "r2" and minimum > 1:
                raise ValueError(f"gate minimum for r2 must be at most 1, got {minimum}")
            if name in MAXIMUM_METRICS and minimum < 0:
                raise ValueError(f"gate maximum for {name} must be >= 0, got {minimum}")
        return v
