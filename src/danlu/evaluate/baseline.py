"""evaluate.baseline: scikit-learn's HistGradientBoosting beside a table model.

Fitted on the split(s) the model was trained on, with early stopping on danlu's own val split,
numbers as they are (NaN included) and categories as native categoricals (ordinal codes of the
feature's fitted vocabulary); scored on the test split by the model's own head (the same
metrics and intervals as eval/metrics.json) and compared row for row with the model: a paired
bootstrap interval of the difference in the headline metric and, for classes, McNemar's test.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from danlu.runs import Run, read_json, write_json

__all__ = ["BASELINES", "Baseline", "fit_baseline", "gbdt_baseline", "table_matrix"]

# HistGradientBoosting bins a categorical column's codes into its max_bins (255) bins: a
# vocabulary larger than that goes in as ordinal numbers instead.
MAX_CATEGORY_CODES = 255


def table_matrix(features: list[Any], values: dict[str, np.ndarray]) -> tuple[np.ndarray, list[bool],
                                                                              list[str]]:
    """(float64 [n, k] columns, which are categorical, their names) of table features' values."""
    cols, categorical, names = [], [], []
    for f in features:
        x, codes = f.table_columns(values[f.name])
        cols.append(x)
        categorical += [0 < codes <= MAX_CATEGORY_CODES] * x.shape[1]
        names += f.columns if len(f.columns) == x.shape[1] else [f"{f.name}[{j}]" for j in range(x.shape[1])]
    return np.hstack(cols), categorical, names


def _classify(est: Any, x: np.ndarray, n_outputs: int) -> np.ndarray:
    """Probabilities over all of the head's labels (a label absent from training gets 0)."""
    probs = np.zeros((len(x), n_outputs))
    probs[:, est.classes_.astype(np.int64)] = est.predict_proba(x)
    return probs


def _compare_classes(y: np.ndarray, model_out: np.ndarray, gbdt_out: np.ndarray,
                     resamples: int, confidence: float, seed: int) -> dict[str, Any]:
    from danlu.evaluate.stats import compare_labels

    y = np.asarray(y, np.int64)
    ours, theirs = np.argmax(model_out, axis=1), np.argmax(gbdt_out, axis=1)
    c = compare_labels(y, ours, theirs, seed, resamples, confidence)
    return {"metric": "accuracy", "danlu": float((ours == y).mean()), "gbdt": float((theirs == y).mean()),
            "diff": c["accuracy_diff"], "ci": c["ci"], "confidence": confidence,
            "p_value": c["bootstrap_p"], "mcnemar": c["mcnemar"]}


def _compare_values(y: np.ndarray, model_out: np.ndarray, gbdt_out: np.ndarray,
                    resamples: int, confidence: float, seed: int) -> dict[str, Any]:
    from danlu.evaluate.stats import paired_bootstrap_errors

    c = paired_bootstrap_errors(y, gbdt_out, model_out, "rmse", resamples, confidence, seed)
    return {"metric": "rmse", "danlu": c["candidate"], "gbdt": c["baseline"], "diff": c["diff"],
            "ci": c["ci"], "confidence": confidence, "p_value": c["p_value"]}


@dataclass(frozen=True)
class Baseline:
    """The GBDT for one head type: its scikit-learn class, how its predictions become the
    head's first output, and the paired comparison of the headline metric."""

    estimator: str  # a sklearn.ensemble class
    classes: bool  # fitted on class indices (validation rows of unseen classes are left out)
    outputs: Callable[[Any, np.ndarray, int], np.ndarray]
    compare: Callable[..., dict[str, Any]]


# By head type; a head without an entry gets no baseline.
BASELINES: dict[str, Baseline] = {
    "category": Baseline("HistGradientBoostingClassifier", True, _classify, _compare_classes),
    "number": Baseline("HistGradientBoostingRegressor", False,
                       lambda est, x, n: est.predict(x), _compare_values),
}


def fit_baseline(kind: Baseline, x: np.ndarray, y: np.ndarray, categorical: list[bool], seed: int,
                 val: tuple[np.ndarray, np.ndarray] | None = None,
                 threads: int = 1) -> tuple[Any, float]:
    """(the fitted estimator, fit seconds): scikit-learn's defaults, categorical columns native,
    early stopping on `val` when given (else sklearn's own: 10% of x, above 10,000 rows), on
    `threads` OpenMP threads."""
    import sklearn.ensemble
    from threadpoolctl import threadpool_limits

    est = getattr(sklearn.ensemble, kind.estimator)(
        categorical_features=np.asarray(categorical, bool) if any(categorical) else None,
        early_stopping=True if val is not None else "auto", random_state=seed)
    extra = {}
    if val is not None:
        extra = {"X_val": val[0], "y_val": val[1]}
    with threadpool_limits(threads):
        start = time.perf_counter()
        est.fit(x, y, **extra)
        return est, time.perf_counter() - start


def gbdt_baseline(run: Run, splits: Any, head: Any, test_out: np.ndarray, cfg: Any,
                  seed: int) -> dict[str, Any] | None:
    """Write eval/baseline.json and return it; None (no file) when evaluate.baseline is none,
    a feature is not a table column type or the head has no baseline."""
    from threadpoolctl import threadpool_limits

    features = splits.features()
    kind = BASELINES.get(head.type)
    if cfg.baseline == "none" or kind is None or not all(f.tabular for f in features):
        run.path("eval", "baseline.json").unlink(missing_ok=True)  # from an earlier evaluation
        return None
    summary_file = run.path("train", "summary.json")
    summary = read_json(summary_file) if summary_file.is_file() else {}
    fit_on = summary.get("fit_on", ["train"])
    tables = {s: table_matrix(features, splits.values[s]) for s in {*fit_on, "val", "test"}}
    x = {s: t[0] for s, t in tables.items()}
    _, categorical, names = tables["test"]
    xtr = np.vstack([x[s] for s in fit_on])
    ytr = np.concatenate([splits.y[s] for s in fit_on])
    val = None
    if "val" not in fit_on:
        keep = np.isin(splits.y["val"], ytr) if kind.classes else slice(None)
        if len(splits.y["val"][keep]):
            val = (x["val"][keep], splits.y["val"][keep])
    # One thread unless train.threads says more: HistGradientBoosting's OpenMP team spins when
    # the cores are shared (40,000 x 10 rows on 2 busy cores: 37 s on 2 threads, 1.2 s on one).
    threads = run.recipe.train.threads or 1
    est, seconds = fit_baseline(kind, xtr, ytr, categorical, seed, val, threads)
    with threadpool_limits(threads):
        out = np.asarray(kind.outputs(est, x["test"], head.size)).reshape(np.shape(test_out))
    y = splits.y["test"]
    # The comparison always gets an interval, even where bootstrap.resamples: 0 turns them off.
    resamples = cfg.bootstrap.resamples or 1000
    result = {
        "model": f"sklearn.ensemble.{kind.estimator}", "params": est.get_params(),
        "fit_on": list(fit_on),
        "early_stopping": "on danlu's val split (loss)" if val is not None else
                          "scikit-learn's default (its own 10% of the rows, above 10,000 rows)",
        "iterations": int(est.n_iter_), "columns": names,
        "categorical": [n for n, c in zip(names, categorical, strict=True) if c],
        "fit_seconds": seconds, "threads": threads, "danlu_fit_seconds": summary.get("seconds"),
        "test": head.evaluate(out, y, cfg, seed),
        "comparison": kind.compare(y, test_out, out, resamples, cfg.bootstrap.confidence, seed),
    }
    result["params"]["categorical_features"] = result["categorical"]
    write_json(run.path("eval", "baseline.json"), result)
    return result
