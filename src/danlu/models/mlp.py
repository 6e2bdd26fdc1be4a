"""`mlp`: a multi-layer perceptron over a vector: a table's numbers and one-hot categories, or an
image's pixels as they come (flat)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from danlu.models.base import WIDTH_FAMILY_VARIANTS, Family, models
from danlu.models.config import ModelSection

__all__ = ["MLPConfig", "MLPFamily"]


class MLPConfig(ModelSection):
    arch: Literal["mlp"] = "mlp"
    # Two hidden layers of 128 fit every bundled tabular set in seconds on 2 cores.
    hidden: list[Annotated[int, Field(ge=1)]] = [128, 128]
    dropout: float = Field(0.1, ge=0, lt=1)


@models.register("mlp")
class MLPFamily(Family):
    config = MLPConfig
    accepts = ("number", "category", "image")  # image: its pixels as a flat vector

    def build(self, cfg, features, head):
        """Linear -> ReLU -> Dropout per hidden width, then a linear layer to the head."""
        from torch import nn

        layers: list[nn.Module] = []
        width = sum(f.width() for f in features)
        for h in cfg.hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(cfg.dropout)]
            width = h
        layers.append(nn.Linear(width, head.size))
        return nn.Sequential(*layers)

    def compress_variants(self):
        return [dict(v) for v in WIDTH_FAMILY_VARIANTS]

    def scaled(self, cfg, width):
        return cfg.model_copy(update={"hidden": [max(1, round(h * width)) for h in cfg.hidden]})

    def widths(self, net, cfg):
        from torch import nn

        linears = [m for m in net.modules() if isinstance(m, nn.Linear)]
        return cfg.model_copy(update={"hidden": [m.out_features for m in linears[:-1]]})
