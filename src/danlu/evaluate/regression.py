"""Scoring regression outputs: MAE, RMSE, R² and MAPE (scikit-learn's definitions) and their
percentile bootstrap intervals. What the `number` head runs; numpy only."""

from __future__ import annotations

import numpy as np

__all__ = ["bootstrap_regression_ci", "regression_metrics"]


def regression_metrics(pred: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """MAE, RMSE, R² and (when no target is 0) MAPE as fractions, scikit-learn's definitions."""
    pred, y = np.asarray(pred, np.float64).reshape(-1), np.asarray(y, np.float64).reshape(-1)
    err = pred - y
    ss_tot = float(((y - y.mean()) ** 2).sum()) if len(y) else 0.0
    out = {"mae": float(np.abs(err).mean()), "rmse": float(np.sqrt((err ** 2).mean())),
           # sklearn's r2_score: 1 - SS_res / SS_tot; a constant target gives 1.0 when predicted
           # exactly, else 0.0 (its force_finite default)
           "r2": float(1 - (err ** 2).sum() / ss_tot) if ss_tot > 0
           else (1.0 if not err.any() else 0.0)}
    if len(y) and (y != 0).all():
        out["mape"] = float((np.abs(err) / np.abs(y)).mean())
    return out


def _replicate_metrics(pred: np.ndarray, y: np.ndarray, idx: np.ndarray) -> dict[str, np.ndarray]:
    """regression_metrics of each bootstrap resample (rows `idx` [b, n]) at once."""
    p, t = pred[idx], y[idx]
    err = p - t
    sse = (err ** 2).sum(axis=1)
    ss_tot = ((t - t.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
    r2 = np.where(ss_tot > 0, 1 - sse / np.where(ss_tot > 0, ss_tot, 1), (sse == 0).astype(float))
    out = {"mae": np.abs(err).mean(axis=1), "rmse": np.sqrt((err ** 2).mean(axis=1)), "r2": r2}
    if (y != 0).all():
        out["mape"] = (np.abs(err) / np.abs(t)).mean(axis=1)
    return out


def bootstrap_regression_ci(pred: np.ndarray, y: np.ndarray, resamples: int, confidence: float,
                            seed: int) -> dict[str, list[float]]:
    """Percentile bootstrap interval [low, high] of each regression metric (evaluate.stats'
    seeded resampling)."""
    from danlu.evaluate.stats import _resample_indices

    pred, y = np.asarray(pred, np.float64).reshape(-1), np.asarray(y, np.float64).reshape(-1)
    rng = np.random.default_rng(seed)
    reps: dict[str, list[np.ndarray]] = {}
    for idx in _resample_indices(len(y), resamples, rng):
        for k, v in _replicate_metrics(pred, y, idx).items():
            reps.setdefault(k, []).append(v)
    q = [(1 - confidence) / 2, (1 + confidence) / 2]
    return {k: [float(x) for x in np.quantile(np.concatenate(v), q)] for k, v in reps.items()}
