"""Multi-layer perceptron for flat feature rows."""

from __future__ import annotations

from torch import nn

from danlu.models import InputSpec, models
from danlu.models.config import MLPConfig


@models.register("mlp")
def mlp(cfg: MLPConfig, spec: InputSpec, num_classes: int) -> nn.Module:
    """Linear -> ReLU -> Dropout per hidden width, then a linear classifier (logits)."""
    layers: list[nn.Module] = []
    width = spec.features
    for h in cfg.hidden:
        layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(cfg.dropout)]
        width = h
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)
