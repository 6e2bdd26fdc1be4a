"""Hyperparameter tuning with Optuna: the `tune` recipe section and the stage verb."""

from __future__ import annotations

from typing import Any

from danlu.tune.config import PrunerConfig, TuneConfig

__all__ = ["PrunerConfig", "TuneConfig", "tune"]


def __getattr__(name: str) -> Any:
    # The stage verb imports optuna and torch: load it on first use so the config stays cheap.
    if name == "tune":
        from danlu.tune.stage import tune

        return tune
    raise AttributeError(f"module 'danlu.tune' has no attribute {name!r}")
