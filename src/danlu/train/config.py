"""Recipe section `train` (pydantic only, no torch)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from danlu.data.config import Section

__all__ = ["EarlyStoppingConfig", "OptimizerConfig", "TrainConfig"]

# Validation metrics early stopping may watch (names as in eval/metrics.json, with "val.").
VAL_METRICS = ("val.loss", "val.accuracy", *(f"val.{m}_{a}" for m in ("precision", "recall", "f1")
                                             for a in ("macro", "micro", "weighted")))

OptimizerName = Literal["sgd", "momentum", "nesterov", "adagrad", "adam", "adamw", "rmsprop"]


class OptimizerConfig(Section):
    name: OptimizerName = "adam"
    # 1e-3 is Adam's published default (Kingma & Ba 2015); SGD-family recipes want ~0.05.
    lr: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    # Used by momentum and nesterov only; 0.9 is the usual heavy-ball value.
    momentum: float = Field(0.9, ge=0, lt=1)
    # Used by adam and adamw only (torch defaults).
    betas: tuple[float, float] = (0.9, 0.999)


class EarlyStoppingConfig(Section):
    # A validation metric: val.loss (minimized) or any classification metric (maximized).
    metric: str = "val.accuracy"
    # Epochs without improvement before stopping; 0 turns early stopping off.
    patience: int = Field(5, ge=0)

    @field_validator("metric")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in VAL_METRICS:
            raise ValueError(f"expected one of {', '.join(VAL_METRICS)}")
        return v


class TrainConfig(Section):
    epochs: int = Field(30, ge=1)
    # 64 keeps the 2-core CPU busy without hurting generalization on small sets.
    batch_size: int = Field(64, ge=1)
    optimizer: OptimizerConfig = OptimizerConfig()
    early_stopping: EarlyStoppingConfig = EarlyStoppingConfig()
    # cpu is the only device here; "auto" picks cuda > mps > cpu.
    device: Literal["auto", "cpu", "cuda", "mps"] = "auto"
    # Torch intra-op threads; 0 keeps torch's default (all cores).
    threads: int = Field(0, ge=0)
