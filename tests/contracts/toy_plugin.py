"""A feature type and a model family defined OUTSIDE danlu, as a user's plug-in would be.

`toy_square`: one number column that enters the model as [x, x^2] (the square is computed
inside the exported graph). `toy_linear`: one linear layer over the features' parts. Importing
this module registers both (DANLU_PLUGINS=tests.contracts.toy_plugin makes `danlu serve`
import it)."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from danlu.data.readers import Issue
from danlu.features.base import Feature, features, spec
from danlu.models.base import Family, models
from danlu.models.config import ModelSection


class _Square:
    """x [B, 1] -> [x, x^2] [B, 2]; a torch module made on first use (torch imported lazily)."""

    @staticmethod
    def make():
        import torch
        from torch import nn

        class Square(nn.Module):
            def forward(self, x: torch.Tensor) -> torch.Tensor:
                return torch.cat([x, x * x], dim=1)

        return Square()


if "toy_square" not in features:

    @features.register("toy_square")
    class SquareFeature(Feature):
        type = "toy_square"

        def invalid(self, values: np.ndarray, clean: Any) -> list[Issue]:
            bad = ~np.isfinite(values).all(axis=1)
            return [Issue("nan_or_inf", bad, self.name)] if bad.any() else []

        def client_input(self):
            return spec(self.name, "FP32", [-1, 1])

        def module(self):
            return _Square.make()

        def width(self) -> int:
            return 2


class ToyLinearConfig(ModelSection):
    arch: Literal["toy_linear"] = "toy_linear"


if "toy_linear" not in models:

    @models.register("toy_linear")
    class ToyLinear(Family):
        config = ToyLinearConfig
        accepts = ("toy_square",)

        def build(self, cfg, features, head):
            from torch import nn

            return nn.Linear(sum(f.width() for f in features), head.size)
