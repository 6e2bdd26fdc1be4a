"""The two plug-in kinds of the data path: a Feature (one typed model input) and a Head (the
model's output). Stages ask these; they never test a feature's type.

numpy only at import (the server imports features to encode raw values); torch is imported
inside the methods that build graph modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from danlu.registry import Registry

if TYPE_CHECKING:
    from torch import nn

__all__ = ["NOTE", "Feature", "Head", "Spec", "count", "features", "heads", "spec", "take"]

# Spec: one tensor as danlu-model.json writes it, {"name", "datatype", "shape"} (-1 = any size).
Spec = dict[str, Any]
# Keys of an `encode` result that start with NOTE are per-row notes (e.g. "text was cut"), not
# graph inputs: they travel with a batch's outputs until a protocol reports them.
NOTE = "__"


def spec(name: str, datatype: str, shape: list[int]) -> Spec:
    return {"name": name, "datatype": datatype, "shape": list(shape)}


# Values of several features travel as {feature name: array with one row per sample}.
def take(values: dict[str, np.ndarray], idx: Any) -> dict[str, np.ndarray]:
    """The rows `idx` of every feature's values."""
    return {k: v[idx] for k, v in values.items()}


def count(values: dict[str, np.ndarray]) -> int:
    """Rows in `values`."""
    return len(next(iter(values.values()))) if values else 0


class Feature:
    """One typed input of a model: how its raw column(s) are recognised, checked and fitted on the
    training split, encoded without torch (the same call in training, evaluation, parity and the
    server), and what it adds to the exported graph. One subclass per type, in `features`.

    Values of a feature are numpy arrays with one row per sample: `float64 [n, k]` for numbers
    and images, `object [n]` (str or None) for strings."""

    type: ClassVar[str]
    # How readers parse the feature's columns: "float" or "string".
    parse: ClassVar[str] = "float"
    # Set: every column of this type in a recipe forms ONE feature of this name (one model input,
    # e.g. a table's numbers as one FP32 matrix `features`); None: one feature per column.
    group: ClassVar[str | None] = None
    # preprocess.augment steps this type takes.
    augmentations: ClassVar[tuple[str, ...]] = ()
    # Recipe/preprocess options the type takes (e.g. "normalize", "per", "shape").
    options_taken: ClassVar[tuple[str, ...]] = ()
    # [channels, height, width] where the values are images (image steps act on them).
    image_shape: list[int] | None = None
    # A table column type (numbers, categories): a model of only such features gets a
    # gradient-boosted baseline beside it (evaluate.baseline), fed by `table_columns`.
    tabular: ClassVar[bool] = False

    def __init__(self, name: str, columns: list[str], options: dict[str, Any] | None = None):
        self.name, self.columns, self.options = name, list(columns), dict(options or {})

    @classmethod
    def recognise(cls, column: Any) -> str | None:
        """Why a raw column (danlu.data.inspect.ColumnStats) is of this type, or None."""
        return None

    # ---- data stage --------------------------------------------------------------------
    def invalid(self, values: np.ndarray, clean: Any) -> list[Any]:
        """Issues (danlu.data.readers.Issue) for rows this feature cannot use, under the
        recipe's preprocess.clean rules."""
        return []

    def imputes(self, clean: Any) -> bool:
        """Whether this feature keeps rows with missing cells (NaN) and imputes them in the graph
        under preprocess.clean (`missing: impute`); its columns' cells that are not numbers
        (`wrong_type`) are then imputed too, counted, not removed."""
        return False

    def hashes(self, values: np.ndarray) -> np.ndarray:
        """A 64-bit hash per row (equal values, equal hashes): exact duplicates and leakage."""
        from danlu.data.dedup import row_hashes

        return row_hashes(values)

    def sketch(self, values: np.ndarray) -> tuple[np.ndarray, ...] | None:
        """A compact per-row summary kept while streaming, for near duplicates (None: none)."""
        return None

    def near_pairs(self, sketch: tuple[np.ndarray, ...], cfg: Any) -> tuple[np.ndarray, dict]:
        """(pairs [m, 2] of row indices, how they were found) from the kept rows' sketches."""
        raise NotImplementedError

    def partial_fit(self, values: np.ndarray) -> Feature:
        """Fold in training rows (streamed in chunks); learned state ends in `_`."""
        return self

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any], folder: Any = None) -> Feature:
        return self

    def assets(self) -> list[Any]:
        """Files the fitted feature needs beside the model (copied into model folders)."""
        return []

    def describe(self) -> dict[str, Any]:
        """name, type, columns, options and fitted state: data/features.json and model.json."""
        return {"name": self.name, "type": self.type, "columns": self.columns,
                "options": self.options, "state": self.state_dict()}

    # ---- encoding (torch-free) ---------------------------------------------------------
    def client_input(self) -> Spec:
        """What a client sends for this feature."""
        return spec(self.name, "FP32", [-1, len(self.columns)])

    def column_inputs(self) -> list[Spec]:
        """What a client sends for this feature in the raw-row form: one tensor per raw column,
        a value per row ([-1]) of the client input's datatype (a number column FP32, a category
        or text column BYTES). A type whose columns mean nothing apart (an image's pixels)
        returns its client input as the one "column"."""
        whole = self.client_input()
        return [spec(c, whole["datatype"], [-1]) for c in self.columns]

    def from_columns(self, values: dict[str, np.ndarray]) -> np.ndarray:
        """The client input from the raw-row form: `values` holds one array per
        `column_inputs()` name (a value per row); one column of a one-value-per-row input is
        that input, several are stacked as its columns (a table's numbers: [n, k])."""
        cols = [values[s["name"]] for s in self.column_inputs()]
        if len(cols) == 1 and len(cols[0].shape) == len(self.client_input()["shape"]):
            return cols[0]
        return np.stack(cols, axis=1)

    def graph_inputs(self) -> list[Spec]:
        """What the exported graph takes for it (the client input when nothing runs outside)."""
        return [self.client_input()]

    def encode(self, values: np.ndarray) -> dict[str, np.ndarray]:
        """Client values -> the graph's inputs (and NOTE-prefixed per-row notes)."""
        return {self.name: np.ascontiguousarray(values, dtype=np.float32)}

    def unseen(self, values: np.ndarray) -> int | None:
        """How many values were never seen in training (a category's `__unknown__`), or None
        for a type without a vocabulary. Counted in evaluation and by the server."""
        return None

    def form(self) -> dict[str, Any]:
        """How a client (the playground page, the v2 metadata) should ask for this input."""
        return {"name": self.name, "type": self.type, "widget": "numbers",
                "columns": list(self.columns)}

    def table_columns(self, values: np.ndarray) -> tuple[np.ndarray, int]:
        """(float64 [n, k] columns for a tree model, missing as NaN; how many category codes
        they hold, 0 for measurements) — what the GBDT baseline fits on. Only `tabular` types
        answer."""
        raise NotImplementedError(f"feature type {self.type!r} is not a table column type")

    def sort_key(self, values: np.ndarray) -> np.ndarray | None:
        """Per-row cost (e.g. tokens) to batch similar rows together in inference, or None."""
        return None

    # ---- inside the model (torch) ------------------------------------------------------
    def module(self) -> nn.Module:
        """Graph inputs -> this feature's part of the network's input (in the exported graph)."""
        raise NotImplementedError

    def width(self) -> int:
        """Columns this feature adds to the network's input vector."""
        return len(self.columns)

    # True: the columns are measurements (noise and mixup may perturb them); False: codes
    # (one-hot, indices) that a perturbation would turn into values no row has.
    continuous: ClassVar[bool] = True

    def learned(self) -> tuple[nn.Module, int] | None:
        """(a trainable module on this feature's `width()` columns of the network input, the
        columns it outputs) when the feature has a part that is learned with the network (a
        large category's embedding), else None. Families that take a vector put it first."""
        return None

    def examples(self, batch: Any) -> list[Any]:
        """(example tensor with 2 rows, {axis: torch.export.Dim}) per graph input, for export;
        `batch` is the Dim every input shares."""
        import torch

        return [(torch.zeros(2, len(self.columns)), {0: batch})]


class Head:
    """The model's output: its size, loss, metrics, decoding in the graph and what clients get.
    One subclass per type, in `heads`. Fitted state (a regression target's mean and std) follows
    Feature: `fit` on the training split's targets, `state_dict`/`load_state_dict`."""

    type: ClassVar[str]
    # danlu-model.json `task`.
    task: ClassVar[str] = "classification"
    # How the data stage stores the target (`__label__`) and load_splits returns y.
    target_dtype: ClassVar[str] = "int64"
    # Metrics of `scores` recorded per training epoch (history.jsonl as val_<name>); early
    # stopping and tuning may watch any of them.
    epoch_metrics: ClassVar[tuple[str, ...]] = ("loss",)
    # Metrics of `scores` that early stopping, tuning and the gate may name.
    metric_names: ClassVar[tuple[str, ...]] = ("loss",)
    # What early stopping watches when the recipe names nothing (train.early_stopping.metric).
    default_metric: ClassVar[str] = "val.loss"
    # Metrics where a smaller value is better (early stopping, plateau schedules, the gate).
    lower_better: ClassVar[frozenset[str]] = frozenset({"loss", "log_loss"})
    # compress.budget.max_metric_drop when the recipe sets none (None: max_accuracy_drop).
    default_max_drop: ClassVar[float | None] = None
    # data.target options the head takes (e.g. "loss").
    options_taken: ClassVar[tuple[str, ...]] = ()

    def __init__(self, column: str | None, labels: list[str],
                 options: dict[str, Any] | None = None):
        self.column, self.labels = column, list(labels)
        self.options = {k: v for k, v in (options or {}).items() if v is not None}

    def lower_is_better(self, metric: str) -> bool:
        """Whether a smaller `metric` (with or without "val.") is better."""
        return metric.removeprefix("val.") in self.lower_better

    @property
    def main_metric(self) -> str:
        """The metric compression gates and compares when the recipe names none (accuracy,
        rmse): the head's default metric without "val."."""
        return self.default_metric.removeprefix("val.")

    # ---- compression (danlu.compress asks these) ----------------------------------------
    def metric_drop(self, metric: str, value: float, reference: float) -> tuple[float, str]:
        """(how much worse `value` is than `reference`, how that is counted) in the units of
        compress.budget.max_metric_drop. Here: the absolute difference in the bad direction
        (accuracy 0.95 vs 0.96: 0.01)."""
        return ((value - reference) if self.lower_is_better(metric) else (reference - value),
                "absolute")

    def interval(self, out: np.ndarray, y: np.ndarray, metric: str,
                 seed: int = 0) -> list[float] | None:
        """A 95% percentile bootstrap interval of one `scores` metric, or None."""
        return None

    def compare(self, y: np.ndarray, out: np.ndarray, reference: np.ndarray,
                seed: int = 0) -> dict[str, Any]:
        """`out` against `reference` (first outputs) on the same rows: `<main>_diff` (out minus
        reference of `main_metric`), its paired bootstrap `ci`, `bootstrap_p` and
        `significantly_worse` (the whole interval on the bad side of zero)."""
        raise NotImplementedError

    def soft_loss(self, student: Any, teacher: Any, temperature: float) -> Any:
        """Distillation's soft term between raw network outputs (torch tensors)."""
        raise NotImplementedError

    # ---- data stage --------------------------------------------------------------------
    def invalid(self, codes: np.ndarray, values: list, column: str | None) -> list[Any]:
        """Issues (danlu.data.readers.Issue) for rows whose target this head cannot use; `codes`
        index the reader's `values` (its label_values so far)."""
        return []

    def targets(self, reader: Any, codes: np.ndarray, after_cleaning: bool = False) -> np.ndarray:
        """The kept rows' targets as stored (`target_dtype`) from the reader's label codes; sets
        `labels` where the head has classes. Raises DataError for a target it cannot learn."""
        return codes

    def new_targets(self, reader: Any, codes: np.ndarray) -> np.ndarray:
        """Targets of new data (danlu evaluate) as this fitted head stores them; a DataError
        for targets it does not know (a class the model never saw)."""
        return self.targets(reader, codes)

    def strata(self, y: np.ndarray) -> np.ndarray:
        """Int codes the split stratifies on (classes; bins of a number)."""
        return np.asarray(y, np.int64)

    def groups(self, y: np.ndarray) -> np.ndarray:
        """Int codes equal exactly where targets are equal (exact duplicates, conflicts)."""
        return np.asarray(y, np.int64)

    # True: identical features with different targets are label noise, removed as
    # `label_conflict`; False (a noisy number): every such row is kept (leakage still keeps a
    # group of identical features out of val/test when it is in train).
    conflicts_are_noise: ClassVar[bool] = True

    def fit(self, y: np.ndarray) -> Head:
        """Learn state from the training split's targets; returns self."""
        return self

    def state_dict(self) -> dict[str, Any]:
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> Head:
        return self

    def target_summary(self, y: np.ndarray, split: np.ndarray, splits: tuple[str, ...]
                       ) -> dict[str, Any]:
        """What data/info.json says about the target per split (class counts; mean/std)."""
        return {"class_counts": {s: np.bincount(y[split == i], minlength=len(self.labels)).tolist()
                                 for i, s in enumerate(splits)}}

    @property
    def size(self) -> int:
        """Width of the network's raw output."""
        raise NotImplementedError

    def outputs(self) -> list[Spec]:
        raise NotImplementedError

    def loss(self) -> nn.Module:
        raise NotImplementedError

    def module(self) -> nn.Module:
        """Raw network output -> the package's outputs (in the exported graph)."""
        raise NotImplementedError

    def scores(self, out: np.ndarray, y: np.ndarray) -> dict[str, Any]:
        """The metrics of this head's family for predictions `out` (first output) against y."""
        raise NotImplementedError

    def evaluate(self, out: np.ndarray, y: np.ndarray, cfg: Any, seed: int) -> dict[str, Any]:
        """A split's metrics.json entry: `scores` plus intervals and warnings (evaluate cfg)."""
        return self.scores(out, y)

    def curves(self, out: np.ndarray, y: np.ndarray) -> dict[str, Any] | None:
        """Curves for the report (ROC, PR, ...), or None."""
        return None

    def headline(self, metrics: dict[str, Any]) -> dict[str, Any]:
        """The few metrics a stage result and the CLI show."""
        return {k: v for k, v in metrics.items() if isinstance(v, float)}

    def rows(self, outputs: dict[str, np.ndarray]) -> list[dict[str, Any]]:
        """The package's outputs as one dict per row (TF-Serving /v1 `predictions`)."""
        names = list(outputs)
        cols = [outputs[k].tolist() for k in names]
        return [dict(zip(names, r, strict=True)) for r in zip(*cols, strict=True)]

    def test_score(self, outputs: tuple[np.ndarray, ...], y: np.ndarray) -> dict[str, float]:
        """One runtime's score on the test rows for danlu-model.json (`test_accuracy`)."""
        return {"test_accuracy": float((np.asarray(outputs[-1]) == y).mean())}

    def agreement(self, ref: tuple[np.ndarray, ...], got: tuple[np.ndarray, ...]) -> float | None:
        """Share of rows whose decoded output (the last: a label) two runtimes agree on, or
        None where the head decodes no labels."""
        return float((np.asarray(got[-1]) == np.asarray(ref[-1])).mean())

    def parity_atol(self, atol: float) -> float:
        """Export's parity tolerance on the first output, from export's (for probabilities)."""
        return atol

    def describe(self) -> dict[str, Any]:
        out = {"type": self.type, "column": self.column, "labels": self.labels}
        if self.options:
            out["options"] = dict(self.options)
        state = self.state_dict()
        if state:
            out["state"] = state
        return out


# Feature types and heads by name; danlu.features adds the built-ins on first lookup.
features: Registry[type[Feature]] = Registry("feature type", "data.features")
heads: Registry[type[Head]] = Registry("head", "data.target.head")
