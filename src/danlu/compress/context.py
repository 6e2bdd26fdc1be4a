"""What every variant is built and measured with: the run's splits as client values, the
baseline's fitted features and head (every variant shares them: a student tokenizes like its
teacher, a model from another run keeps that run's normalizer), network-input tensors for the
torch steps, calibration batches for static int8, and the export settings its packages get."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from danlu.compress.config import CompressConfig
from danlu.data.stage import Splits
from danlu.features.base import NOTE, take
from danlu.runs import Run

__all__ = ["Context"]


@dataclass
class Context:
    run: Run
    cfg: CompressConfig
    splits: Splits
    features: list[Any]  # the baseline's fitted Feature objects
    head: Any
    family: Any  # the baseline's model family (danlu.models Family)
    baseline: Path  # the baseline's package folder (compress/baseline): features, head, assets
    # The baseline package's test outputs as served, once measured (the metric gate's reference).
    baseline_outputs: tuple[np.ndarray, ...] | None = None
    _xy: dict[str, tuple[torch.Tensor, torch.Tensor]] = field(default_factory=dict, repr=False)

    @property
    def seed(self) -> int:
        return self.run.recipe.seed

    @property
    def metric(self) -> str:
        """The metric variants are gated and compared on (compress.budget.metric, else the
        head's main metric)."""
        return self.cfg.budget.metric or self.head.main_metric

    @property
    def max_drop(self) -> float:
        """The limit on `metric`'s drop: budget.max_metric_drop, else the head's default, else
        budget.max_accuracy_drop."""
        b = self.cfg.budget
        if b.max_metric_drop is not None:
            return b.max_metric_drop
        return self.head.default_max_drop if self.head.default_max_drop is not None \
            else b.max_accuracy_drop

    @cached_property
    def export(self) -> Any:
        """The run's export settings, at the latency section's threads: every variant's package
        is built, gated and its runtime chosen as the export stage does it."""
        return self.run.recipe.export.model_copy(update={"threads": self.cfg.latency.threads})

    def values(self, split: str) -> dict[str, np.ndarray]:
        """Client values of a split (what `danlu serve` receives), by feature name."""
        return self.splits.values[split]

    def y(self, split: str) -> np.ndarray:
        return self.splits.y[split]

    def xy(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        """The network's input and the targets of a split, encoded by the baseline's features as
        danlu.train.inputs.Inputs encodes them for training (cached: the torch steps share them)."""
        if split not in self._xy:
            from danlu.models.packaged import Encoding

            x = Encoding(self.features).network_input(self.values(split))
            self._xy[split] = x, torch.from_numpy(self.y(split))
        return self._xy[split]

    def feeds(self, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Client values -> the graph's inputs (each feature's torch-free `encode`)."""
        out: dict[str, np.ndarray] = {}
        for f in self.features:
            out.update({k: v for k, v in f.encode(values[f.name]).items()
                        if not k.startswith(NOTE)})
        return out

    def calibration(self, n: int, batch: int = 32) -> list[dict[str, np.ndarray]]:
        """n training rows (seeded) as batches of graph inputs, for static int8 calibration."""
        values = self.values("train")
        rows = len(self.y("train"))
        idx = np.sort(np.random.default_rng(self.seed).choice(rows, size=min(n, rows), replace=False))
        if len(idx) > batch:  # whole batches only: ORT's histogram calibrators (entropy,
            idx = idx[:len(idx) // batch * batch]  # percentile) stack them, a ragged one fails
        return [self.feeds(take(values, idx[i:i + batch])) for i in range(0, len(idx), batch)]
