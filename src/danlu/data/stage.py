"""The data stage: clean the source, split it, fit the normalizer on the training split."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from danlu.data.config import DataConfig
from danlu.data.normalize import Normalizer, make_normalizer
from danlu.data.prepare import LABEL, ROW, SPLIT, SPLITS, prepare
from danlu.errors import RecipeError
from danlu.runs import Run, StageResult, read_json

__all__ = ["Splits", "data", "load_splits"]


def data(run: Run, cfg: DataConfig) -> StageResult:
    """Write data/clean.parquet, split.json, normalizer.json, info.json and cleaning.json."""
    recipe = run.recipe
    res = prepare(run.stage_dir("data"), cfg, recipe.preprocess, recipe.seed)
    cleaning = res["cleaning"]
    metrics = {f"{s}_rows": n for s, n in res["sizes"].items()}
    metrics.update(rows_in=cleaning["rows_in"], removed=cleaning["removed_total"])
    return StageResult(paths={"dataset": "data/clean.parquet", "info": "data/info.json",
                              "normalizer": "data/normalizer.json",
                              "cleaning": "data/cleaning.json"}, metrics=metrics)


@dataclass
class Splits:
    """Raw (un-normalized) split arrays plus the fitted normalizer and the data's description."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    normalizer: Normalizer
    info: dict[str, Any]
    # 1-based row numbers in the source, per split (what cleaning reports and errors name).
    rows: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.info["labels"])


def load_splits(run: Run) -> Splits:
    """What the data stage wrote, as arrays per split (text sources: arrays of str)."""
    import pyarrow.parquet as pq

    d = run.path("data")
    info = read_json(d / "info.json")
    arch = getattr(getattr(run.recipe, "model", None), "arch", None)
    if info.get("kind") == "text" and arch in ("mlp", "cnn"):
        raise RecipeError("model.arch", got=arch, expected=f"a text model for the text source "
                          f"{info['source']} (mlp and cnn take numeric features or images)",
                          hint="use model: {arch: transformer, pretrained: minilm} "
                               "(docs/text.md)")
    if info.get("kind") != "text" and arch == "transformer":
        raise RecipeError("model.arch", got=arch, expected=f"mlp or cnn for the {info.get('kind')} "
                          f"source {info['source']} (a transformer reads text)")
    t = pq.read_table(d / "clean.parquet")
    split = t.column(SPLIT).to_numpy()
    y = t.column(LABEL).to_numpy().astype(np.int64)
    rows = t.column(ROW).to_numpy().astype(np.int64)
    if info.get("kind") == "text":
        x = np.array(t.column(info["feature_names"][0]).to_pylist(), dtype=object)
    else:
        x = np.empty((t.num_rows, len(info["feature_names"])), dtype=np.float32)
        for j, name in enumerate(info["feature_names"]):
            x[:, j] = t.column(name).to_numpy(zero_copy_only=False)
    return Splits(x={s: x[split == i] for i, s in enumerate(SPLITS)},
                  y={s: y[split == i] for i, s in enumerate(SPLITS)},
                  normalizer=make_normalizer(read_json(d / "normalizer.json")), info=info,
                  rows={s: rows[split == i] for i, s in enumerate(SPLITS)})
