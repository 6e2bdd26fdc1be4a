"""Scoring classification outputs: every metric with bootstrap intervals and the warnings where
accuracy misleads. What the `category` head's `evaluate` runs (no torch import here beyond
evaluate.metrics)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["score_classification"]


def score_classification(probs: np.ndarray, y: np.ndarray, labels: list[str], cfg: Any,
                         seed: int) -> dict[str, Any]:
    """One split's metrics, their bootstrap intervals (`ci`) and imbalance `warnings`."""
    import torch

    from danlu.evaluate.metrics import classification_metrics
    from danlu.evaluate.stats import bootstrap_ci
    from danlu.evaluate.summary import imbalance_warnings

    probs, y = np.asarray(probs, dtype=np.float64), np.asarray(y, dtype=np.int64)
    m = classification_metrics(torch.from_numpy(probs), torch.from_numpy(y), labels)
    b = cfg.bootstrap
    if b.resamples:
        m["ci"] = bootstrap_ci(y, probs.argmax(axis=1), probs, resamples=b.resamples,
                               confidence=b.confidence, seed=seed, n_classes=len(labels))
        m["ci_method"] = {"kind": "percentile bootstrap", "resamples": b.resamples,
                          "confidence": b.confidence, "seed": seed}
    m["warnings"] = imbalance_warnings(m, labels, cfg.imbalance.majority_share,
                                       cfg.imbalance.accuracy_gap)
    return m
