"""`number` head: regression. The target is standardized with the training split's mean and std;
the network learns the standardized value (MSE or Huber) and the graph de-standardizes, so the
package returns `value` FP32 [-1] in the target's own units. With `transform: log` the network
learns log(1 + y) (standardized) and the graph applies exp(.) - 1 after de-standardizing.
Metrics: MAE, RMSE, R², MAPE."""

from __future__ import annotations

from typing import Any

import numpy as np

from danlu.features.base import Head, heads, spec

__all__ = ["NumberHead"]

# Quantile bins the split stratifies a number target on (deciles: every split sees the tails),
# at most one per ROWS_PER_STRATUM rows, so a split of 2.5% or more has a row of every bin.
STRATA = 10
ROWS_PER_STRATUM = 40
# Huber's delta on the standardized target: errors beyond one standard deviation count linearly.
HUBER_DELTA = 1.0
LOSSES = ("mse", "huber")


def _number(v: Any) -> float:
    """A label cell as a float, NaN when it is not a number."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float, np.integer, np.floating)):
        return float(v)
    try:
        return float(str(v).strip())
    except ValueError:
        return float("nan")


@heads.register("number")
class NumberHead(Head):
    """Regression: one standardized output; the package returns `value` in the target's units."""

    type = "number"
    task = "regression"
    target_dtype = "float64"
    epoch_metrics = ("loss", "rmse", "mae")
    default_metric = "val.rmse"
    metric_names = ("loss", "rmse", "mae", "r2", "mape")
    lower_better = frozenset({"loss", "rmse", "mae", "mape"})
    options_taken = ("loss", "transform")
    conflicts_are_noise = False
    # compress.budget.max_metric_drop by default: RMSE (an error) may grow by 5%.
    default_max_drop = 0.05

    def __init__(self, column: str | None, labels: list[str],
                 options: dict[str, Any] | None = None):
        super().__init__(column, [], options)
        self.mean_, self.std_, self.spread_ = 0.0, 1.0, 1.0

    @property
    def log(self) -> bool:
        """True: the network learns log(1 + y) (`data.target.transform: log`)."""
        return self.options.get("transform") == "log"

    def _t(self, y: np.ndarray) -> np.ndarray:
        """The target as the network learns it (before standardizing)."""
        return np.log1p(y) if self.log else y

    # ---- data stage --------------------------------------------------------------------
    def invalid(self, codes: np.ndarray, values: list, column: str | None) -> list[Any]:
        from danlu.data.readers.base import Issue

        numbers = self._numbers(values)
        bad = ~np.isfinite(numbers[codes]) & (codes >= 0)  # -1 is a missing_label issue
        return [Issue("wrong_type", bad, column or "target", "the target is not a number")]

    def targets(self, reader: Any, codes: np.ndarray, after_cleaning: bool = False) -> np.ndarray:
        return self._numbers(reader.label_values)[codes]

    def _numbers(self, values: list) -> np.ndarray:
        """The reader's label values so far as floats (NaN: not a number), extended as new
        values arrive (a chunk's codes index them; -1 reads the trailing NaN)."""
        seen = self.__dict__.setdefault("_seen", [])
        seen.extend(_number(v) for v in values[len(seen):])
        return np.array([*seen, np.nan])

    def strata(self, y: np.ndarray) -> np.ndarray:
        y = np.asarray(y, np.float64)
        if not len(y):
            return np.zeros(0, np.int64)
        bins = max(1, min(STRATA, len(y) // ROWS_PER_STRATUM))
        edges = np.unique(np.quantile(y, np.linspace(0, 1, bins + 1)[1:-1]))
        return np.searchsorted(edges, y, side="right").astype(np.int64)

    def groups(self, y: np.ndarray) -> np.ndarray:
        return np.unique(np.asarray(y, np.float64), return_inverse=True)[1].astype(np.int64)

    def fit(self, y: np.ndarray) -> NumberHead:
        y = np.asarray(y, np.float64)
        if self.log and len(y) and y.min() <= -1:
            from danlu.errors import DataError

            raise DataError(f"data.target.transform is 'log' but the target has values <= -1 "
                            f"(smallest {y.min():g}); log(1 + y) needs y > -1: remove the "
                            "transform", column=self.column)
        t = self._t(y)
        self.mean_ = float(t.mean()) if len(t) else 0.0
        std = float(t.std()) if len(t) else 0.0
        self.std_ = std if std > 1e-12 else 1.0  # a constant target: learn offsets from the mean
        spread = float(y.std()) if len(y) else 0.0
        self.spread_ = spread if spread > 1e-12 else 1.0
        return self

    def state_dict(self) -> dict[str, Any]:
        # mean/std: of what the network learns (log(1 + y) under transform: log); spread: the
        # target's own std (export's parity tolerance is in the target's units)
        return {"mean": self.mean_, "std": self.std_, "spread": self.spread_}

    def load_state_dict(self, state: dict[str, Any]) -> NumberHead:
        if state:
            self.mean_, self.std_ = float(state["mean"]), float(state["std"])
            self.spread_ = float(state.get("spread", state["std"]))
        return self

    def target_summary(self, y: np.ndarray, split: np.ndarray, splits: tuple[str, ...]
                       ) -> dict[str, Any]:
        def stats(v: np.ndarray) -> dict[str, float]:
            if not len(v):
                return {"rows": 0}
            return {"rows": len(v), "mean": float(v.mean()), "std": float(v.std()),
                    "min": float(v.min()), "max": float(v.max())}

        return {"target_stats": {s: stats(y[split == i]) for i, s in enumerate(splits)}}

    # ---- the model ---------------------------------------------------------------------
    @property
    def size(self) -> int:
        return 1

    def outputs(self):
        return [spec("value", "FP32", [-1])]

    def loss(self):
        from danlu.features.graph import StandardizedLoss

        return StandardizedLoss(self.options.get("loss", "mse"), self.mean_, self.std_,
                                HUBER_DELTA, self.log)

    def module(self):
        from danlu.features.graph import Destandardize

        return Destandardize(self.mean_, self.std_, self.log)

    def scores(self, out: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """regression_metrics plus `loss`: the training loss on the standardized target."""
        from danlu.evaluate.regression import regression_metrics

        pred, y = np.asarray(out, np.float64).reshape(-1), np.asarray(y, np.float64).reshape(-1)
        m: dict[str, Any] = regression_metrics(pred, y)
        with np.errstate(invalid="ignore"):  # a prediction <= -1 under log: NaN loss, said so
            z = (self._t(pred) - self._t(y)) / self.std_
        if self.options.get("loss", "mse") == "huber":
            a = np.abs(z)
            m["loss"] = float(np.where(a <= HUBER_DELTA, 0.5 * z ** 2,
                                       HUBER_DELTA * (a - 0.5 * HUBER_DELTA)).mean())
        else:
            m["loss"] = float((z ** 2).mean())
        m["n"] = len(y)  # rows scored, as classification writes it
        return m

    def evaluate(self, out: np.ndarray, y: np.ndarray, cfg: Any, seed: int) -> dict[str, Any]:
        from danlu.evaluate.regression import bootstrap_regression_ci

        m = self.scores(out, y)
        b = cfg.bootstrap
        if b.resamples and len(y):
            m["ci"] = bootstrap_regression_ci(out, y, b.resamples, b.confidence, seed)
            m["ci_method"] = {"kind": "percentile bootstrap", "resamples": b.resamples,
                              "confidence": b.confidence, "seed": seed}
        m["warnings"] = [] if "mape" in m or not len(y) else [
            {"kind": "mape", "message": "MAPE is not reported: some targets are 0 (a percentage "
                                        "error of a 0 target is undefined)"}]
        return m

    def headline(self, metrics: dict[str, Any]) -> dict[str, Any]:
        return {k: metrics[k] for k in ("rmse", "mae", "r2", "mape") if k in metrics}

    # ---- compression -------------------------------------------------------------------
    def metric_drop(self, metric: str, value: float, reference: float) -> tuple[float, str]:
        """An error (rmse, mae, mape, loss) grows RELATIVELY: 0.05 = 5% above the reference's
        (its units are the target's, so a fraction reads the same on every table); R², already
        a fraction, falls absolutely (0.05 = 0.05 of R²)."""
        if not self.lower_is_better(metric):
            return reference - value, "absolute"
        return (value - reference) / max(abs(reference), 1e-12), "relative"

    def interval(self, out: np.ndarray, y: np.ndarray, metric: str,
                 seed: int = 0) -> list[float] | None:
        from danlu.evaluate.regression import bootstrap_regression_ci

        return bootstrap_regression_ci(out, y, 1000, 0.95, seed).get(metric)

    def compare(self, y: np.ndarray, out: np.ndarray, reference: np.ndarray,
                seed: int = 0) -> dict[str, Any]:
        """The RMSE difference (out - reference; negative: `out` errs less) with a paired
        bootstrap interval."""
        from danlu.evaluate.stats import paired_bootstrap_errors

        c = paired_bootstrap_errors(y, reference, out, "rmse", seed=seed)
        return {"rmse_diff": c["diff"], "ci": c["ci"], "confidence": c["confidence"],
                "bootstrap_p": c["p_value"], "significantly_worse": c["ci"][0] > 0}

    def soft_loss(self, student: Any, teacher: Any, temperature: float) -> Any:
        """MSE between the student's and the teacher's standardized outputs (the raw network
        outputs; a value has no temperature)."""
        from torch.nn import functional as F

        return F.mse_loss(student.float().reshape(-1), teacher.float().reshape(-1))

    def rows(self, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        return [{"value": v} for v in np.asarray(outputs["value"]).reshape(-1).tolist()]

    def test_score(self, outputs: tuple[np.ndarray, ...], y: np.ndarray) -> dict[str, float]:
        err = np.asarray(outputs[0], np.float64).reshape(-1) - np.asarray(y, np.float64)
        return {"test_rmse": float(np.sqrt((err ** 2).mean()))}

    def agreement(self, ref: tuple[np.ndarray, ...], got: tuple[np.ndarray, ...]) -> None:
        return None  # a value, no labels: parity is its max |difference|

    def parity_atol(self, atol: float) -> float:
        """Export's tolerance is for probabilities in [0, 1]; a value differs in the target's
        units, so it scales with the target's spread."""
        return atol * max(self.spread_, 1.0)
