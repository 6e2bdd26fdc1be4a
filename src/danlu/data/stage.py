"""The data stage: clean the source, split it, fit the features on the training split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from danlu.data.config import DataConfig
from danlu.data.prepare import LABEL, ROW, SPLIT, SPLITS, prepare, table_values
from danlu.runs import Run, StageResult, read_json

__all__ = ["Splits", "data", "load_splits"]


def data(run: Run, cfg: DataConfig) -> StageResult:
    """Write data/clean.parquet, split.json, features.json, info.json and cleaning.json."""
    recipe = run.recipe
    res = prepare(run.stage_dir("data"), cfg, recipe.preprocess, recipe.seed)
    cleaning = res["cleaning"]
    metrics = {f"{s}_rows": n for s, n in res["sizes"].items()}
    metrics.update(rows_in=cleaning["rows_in"], removed=cleaning["removed_total"])
    return StageResult(paths={"dataset": "data/clean.parquet", "info": "data/info.json",
                              "features": "data/features.json",
                              "cleaning": "data/cleaning.json"}, metrics=metrics)


@dataclass
class Splits:
    """The cleaned rows per split as raw feature values, the fitted features and the target."""

    # split -> {feature name: values}: float [n, k] (numbers, images) or object [n] (strings)
    values: dict[str, dict[str, np.ndarray]]
    y: dict[str, np.ndarray]
    described: list[dict[str, Any]]  # data/features.json: the fitted features
    target: dict[str, Any]
    info: dict[str, Any]
    # 1-based row numbers in the source, per split (what cleaning reports and errors name).
    rows: dict[str, np.ndarray] = field(default_factory=dict)

    def features(self) -> list[Any]:
        """Fresh fitted Feature objects (each caller may bind them to its model)."""
        from danlu.features import load_features

        return load_features(self.described)

    @property
    def head(self) -> Any:
        from danlu.features import load_head

        return load_head(self.target)

    @property
    def labels(self) -> list[str]:
        return self.target["labels"]

    @property
    def num_classes(self) -> int:
        return len(self.labels)


def load_splits(run: Run) -> Splits:
    """What the data stage wrote, as raw values per split and feature."""
    import pyarrow.parquet as pq

    d = run.path("data")
    info, spec = read_json(d / "info.json"), read_json(d / "features.json")
    t = pq.read_table(d / "clean.parquet")
    split = t.column(SPLIT).to_numpy()
    rows = t.column(ROW).to_numpy().astype(np.int64)
    splits = Splits(values={}, y={}, described=spec["features"], target=spec["target"],
                    info=info, rows={})
    # label indices (int64) or a number head's targets (float64): the head says
    y = t.column(LABEL).to_numpy().astype(splits.head.target_dtype)
    values = {f.name: table_values(t, f) for f in splits.features()}
    for i, s in enumerate(SPLITS):
        sel = split == i
        splits.values[s] = {k: v[sel] for k, v in values.items()}
        splits.y[s], splits.rows[s] = y[sel], rows[sel]
    return splits
