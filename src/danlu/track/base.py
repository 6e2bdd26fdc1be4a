"""The one tracker stages call, and the ~20-line base every backend (TensorBoard, MLflow) fills.

Stages never test which backends are on: they call a `Tracker`, which hands each call to its
backends (none when the recipe's `track:` section is off, so every call is free)."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["Backend", "Tracker", "flatten", "param_value", "scalars"]

# MLflow keeps at most this many characters of a parameter's value (MAX_PARAM_VAL_LENGTH).
PARAM_CHARS = 6000
# The end status of a child run whose block raised: a pruned Optuna trial was stopped on
# purpose (KILLED), anything else FAILED. By class name: this module imports no optuna.
ENDED_BY = {"TrialPruned": "KILLED"}


class Backend:
    """One tracking library behind the Tracker. `child` opens a nested run (a tuning trial, a
    compression variant); `close` ends it with an MLflow status (FINISHED, FAILED, KILLED) or,
    for the top run, None: flush only, its status is the pipeline's to set (`finish`)."""

    def log_params(self, params: dict[str, str]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int) -> None: ...

    def set_tags(self, tags: dict[str, str]) -> None: ...

    def log_artifacts(self, paths: list[Path]) -> None: ...

    def child(self, name: str, params: dict[str, str], tags: dict[str, str]) -> Backend:
        raise NotImplementedError

    def close(self, status: str | None = None) -> None: ...

    def finish(self, status: str) -> None: ...


class Tracker:
    """What stages call: the train loop's epoch rows, evaluation metrics, tuning trials and
    compression variants as child runs, the run's artifacts. A context manager: leaving it
    closes it (a child run ends FINISHED, or FAILED/KILLED when the block raised)."""

    def __init__(self, backends: Iterable[Backend] = ()):
        self.backends = list(backends)

    @property
    def enabled(self) -> bool:
        return bool(self.backends)

    def log_params(self, params: Mapping[str, Any]) -> None:
        """Parameters under dotted keys (nested mappings are flattened: train.optimizer.lr)."""
        if self.backends:
            flat = {k: param_value(v) for k, v in flatten(params).items()}
            for b in self.backends:
                b.log_params(flat)

    def log_metrics(self, metrics: Mapping[str, Any], step: int = 0) -> None:
        """The numbers of `metrics` (see `scalars`), at `step`."""
        values = scalars(metrics)
        if self.backends and values:
            for b in self.backends:
                b.log_metrics(values, step)

    def log_epoch(self, row: Mapping[str, Any]) -> None:
        """One row of train/history.jsonl (train_loss, val_<metric>..., lr, seconds) at step
        = its epoch."""
        self.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=int(row["epoch"]))

    def log_split(self, split: str, metrics: Mapping[str, Any]) -> None:
        """A split's final metrics from eval/metrics.json as `<split>.<metric>`, with each
        bootstrap interval as `<split>.<metric>_ci_low` / `_ci_high`."""
        out = {f"{split}.{k}": v for k, v in metrics.items() if k != "ci"}
        for name, (low, high) in (metrics.get("ci") or {}).items():
            out[f"{split}.{name}_ci_low"], out[f"{split}.{name}_ci_high"] = low, high
        self.log_metrics(out)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        for b in self.backends:
            b.set_tags({k: str(v) for k, v in tags.items()})

    def log_artifacts(self, paths: Iterable[Path]) -> None:
        """Files and folders (a folder keeps its name: package/...) that exist, as artifacts."""
        existing = [Path(p) for p in paths if Path(p).exists()]
        for b in self.backends:
            b.log_artifacts(existing)

    def child(self, name: str, params: Mapping[str, Any] | None = None,
              tags: Mapping[str, Any] | None = None) -> Tracker:
        """A nested run (MLflow: tagged mlflow.parentRunId; TensorBoard: a subfolder `name`)."""
        flat = {k: param_value(v) for k, v in flatten(params or {}).items()}
        return Tracker(b.child(name, flat, {k: str(v) for k, v in (tags or {}).items()})
                       for b in self.backends)

    def close(self, status: str | None = None) -> None:
        for b in self.backends:
            b.close(status)

    def finish(self, status: str) -> None:
        """End the run folder's own run (the pipeline's last call): FINISHED or FAILED."""
        for b in self.backends:
            b.finish(status)

    def __enter__(self) -> Tracker:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(None if exc_type is None else ENDED_BY.get(exc_type.__name__, "FAILED"))


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"train": {"optimizer": {"lr": 0.002}}} -> {"train.optimizer.lr": 0.002}; lists stay."""
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def param_value(v: Any) -> str:
    text = v if isinstance(v, str) else json.dumps(v)
    return text if len(text) <= PARAM_CHARS else text[:PARAM_CHARS - 1] + "…"


def scalars(d: Mapping[str, Any]) -> dict[str, float]:
    """The finite numbers of a flat mapping (bools as 0/1; lists, strings and None left out)."""
    out = {}
    for k, v in d.items():
        if isinstance(v, bool | int | float) and math.isfinite(float(v)):
            out[k] = float(v)
    return out
