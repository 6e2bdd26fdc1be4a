"""Training: the `train` recipe section, optimizers and the loop."""

from __future__ import annotations

from typing import Any

from danlu.train.config import EarlyStoppingConfig, OptimizerConfig, TrainConfig

__all__ = ["EarlyStoppingConfig", "OptimizerConfig", "TrainConfig", "train"]


def __getattr__(name: str) -> Any:
    # The stage verb imports torch: load it on first use so the config stays cheap to import.
    if name == "train":
        from danlu.train.stage import train

        return train
    raise AttributeError(f"module 'danlu.train' has no attribute {name!r}")
