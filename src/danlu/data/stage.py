"""The data stage: read the source, split it, fit the normalizer on the training split."""

from __future__ import annotations

import io
from dataclasses import dataclass
from typing import Any

import numpy as np

from danlu.data.config import DataConfig
from danlu.data.normalize import Normalizer, make_normalizer
from danlu.data.sources import load_source
from danlu.data.split import split_indices
from danlu.runs import Run, StageResult, atomic_write, read_json, write_json

__all__ = ["Splits", "data", "load_splits"]


def data(run: Run, cfg: DataConfig) -> StageResult:
    """Write data/dataset.npz, split.json, normalizer.json and info.json into the run."""
    recipe = run.recipe
    table = load_source(cfg.source, cfg.target, cfg.image_shape)
    parts = split_indices(table.y, cfg.split.val, cfg.split.test, recipe.seed, cfg.split.stratify)
    norm = Normalizer(recipe.preprocess.normalize).fit(table.x[parts["train"]])
    out = run.stage_dir("data")
    buf = io.BytesIO()
    np.savez_compressed(buf, x=table.x, y=table.y)  # plain arrays: loaded with allow_pickle=False
    atomic_write(out / "dataset.npz", buf.getvalue())
    write_json(out / "split.json", {k: v.tolist() for k, v in parts.items()})
    write_json(out / "normalizer.json", norm.state_dict())
    counts = {s: np.bincount(table.y[parts[s]], minlength=table.num_classes).tolist()
              for s in ("train", "val", "test")}
    info = {"source": cfg.source, "rows": len(table.y), "features": table.x.shape[1],
            "feature_names": table.feature_names, "labels": table.label_names,
            "image_shape": table.image_shape, "class_counts": counts,
            "stratified": bool(parts["stratified"])}
    write_json(out / "info.json", info)
    sizes = {f"{s}_rows": len(parts[s]) for s in ("train", "val", "test")}
    return StageResult(paths={"dataset": "data/dataset.npz", "info": "data/info.json",
                              "normalizer": "data/normalizer.json"}, metrics=sizes)


@dataclass
class Splits:
    """Raw (un-normalized) split arrays plus the fitted normalizer and the data's description."""

    x: dict[str, np.ndarray]
    y: dict[str, np.ndarray]
    normalizer: Normalizer
    info: dict[str, Any]

    @property
    def num_classes(self) -> int:
        return len(self.info["labels"])


def load_splits(run: Run) -> Splits:
    """What the data stage wrote, as arrays per split."""
    d = run.path("data")
    with np.load(d / "dataset.npz", allow_pickle=False) as z:
        x, y = z["x"], z["y"]
    idx = read_json(d / "split.json")
    return Splits(x={s: x[idx[s]] for s in ("train", "val", "test")},
                  y={s: y[idx[s]] for s in ("train", "val", "test")},
                  normalizer=make_normalizer(read_json(d / "normalizer.json")),
                  info=read_json(d / "info.json"))
