"""The model's view of a run's data: features bound to the model family, network input tensors
per split. The train stage, tuning trials, compare-optimizers and compression all start here."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from danlu.models import family
from danlu.models.packaged import Encoding, Packaged

__all__ = ["Inputs"]


class Inputs:
    """splits + a model config -> fresh fitted features (bound to the family: a text model's
    tokenizer), the network, and (x, y) tensors of any splits, as fit() trains on them."""

    def __init__(self, splits: Any, model_cfg: Any, device: torch.device | str = "cpu"):
        self.splits, self.cfg, self.device = splits, model_cfg, torch.device(device)
        self.family = family(model_cfg)
        self.features, self.head = splits.features(), splits.head
        self.family.check(model_cfg, self.features)
        self.family.bind(model_cfg, self.features)
        self.encoding = Encoding(self.features)

    @property
    def labels(self) -> list[str]:
        return self.head.labels

    def build(self, cfg: Any = None) -> nn.Module:
        """A fresh network for `cfg` (default: this config), on the device."""
        return family(cfg or self.cfg).build(cfg or self.cfg, self.features, self.head).to(self.device)

    def values(self, *names: str) -> dict[str, np.ndarray]:
        parts = [self.splits.values[s] for s in names]
        return {f.name: np.concatenate([p[f.name] for p in parts]) for f in self.features}

    def xy(self, *names: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's input and the targets of the named splits, on the device."""
        x = self.encoding.network_input(self.values(*names))
        y = torch.from_numpy(np.concatenate([self.splits.y[s] for s in names]))
        return x.to(self.device), y.to(self.device)

    def lengths(self, *names: str) -> torch.Tensor | None:
        """Per-row cost (text tokens) for length-bucketed batches, or None."""
        values = self.values(*names)
        keys = [f.sort_key(values[f.name]) for f in self.features]
        keys = [k for k in keys if k is not None]
        return torch.from_numpy(np.asarray(keys[0])) if keys else None

    def packaged(self, net: nn.Module) -> Packaged:
        """The deployable module around a trained network (on the CPU, eval mode)."""
        return Packaged(self.features, net.cpu(), self.head).eval()
