"""Small real data sets and models shared by the training tests."""

from __future__ import annotations

import torch

from danlu.data.normalize import Normalizer
from danlu.data.readers import open_reader
from danlu.models import InputSpec, build_model
from danlu.models.config import MLPConfig
from danlu.recipe import load_recipe
from danlu.train.config import TrainConfig


def dataset(name: str = "iris", rows: int | None = None):
    """(x, y, label names) of a bundled scikit-learn set, z-scored."""
    reader = open_reader(f"sklearn:{name}")
    t = next(reader.chunks())
    x, y = torch.from_numpy(Normalizer().fit_transform(t.x)), torch.from_numpy(t.labels)
    return x[:rows], y[:rows], reader.label_values


def mlp(features: int, classes: int, hidden: int = 16, dropout: float = 0.0, seed: int = 0):
    torch.manual_seed(seed)
    return build_model(MLPConfig(hidden=[hidden], dropout=dropout), InputSpec(features), classes)


def train_cfg(**train) -> TrainConfig:
    train.setdefault("early_stopping", {"patience": 0})
    return load_recipe({"train": train}).train
