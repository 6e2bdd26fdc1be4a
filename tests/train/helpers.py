"""Small real data sets and models shared by the training tests."""

from __future__ import annotations

import torch

from danlu.data.readers import open_reader
from danlu.features import build_features
from danlu.features.category import CategoryHead
from danlu.models import models
from danlu.models.mlp import MLPConfig
from danlu.models.packaged import Encoding
from danlu.recipe import load_recipe
from danlu.train.config import TrainConfig


def dataset(name: str = "iris", rows: int | None = None):
    """(x, y, head) of a bundled scikit-learn table: its number feature fitted and applied (as
    the data and train stages do), the classification head of its labels."""
    reader = open_reader(f"sklearn:{name}")
    chunk = next(reader.chunks())
    raw = next(iter(chunk.columns.values())) if reader.groups else \
        torch.stack([torch.from_numpy(chunk.columns[c]) for c in reader.columns], 1).numpy()
    (feature,) = build_features([("features", "number", list(reader.columns), {})])
    x = Encoding([feature.partial_fit(raw)]).network_input({"features": raw})
    y = torch.from_numpy(chunk.labels)
    return x[:rows], y[:rows], CategoryHead(None, [str(v) for v in reader.label_values])


def mlp(features: int, classes: int, hidden: int = 16, dropout: float = 0.0, seed: int = 0):
    """An MLP family network for `features` number columns and `classes` labels."""
    torch.manual_seed(seed)
    (feature,) = build_features([("features", "number", [f"x{j}" for j in range(features)], {})])
    return models["mlp"].build(MLPConfig(hidden=[hidden], dropout=dropout), [feature],
                               CategoryHead(None, [str(k) for k in range(classes)]))


def train_cfg(**train) -> TrainConfig:
    train.setdefault("early_stopping", {"patience": 0})
    return load_recipe({"train": train}).train
