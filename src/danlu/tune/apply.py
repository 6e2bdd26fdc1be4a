"""The configuration the stages after `tune` use: the base recipe + the best trial's overrides."""

from __future__ import annotations

from typing import Any

from danlu.recipe import Recipe, load_recipe
from danlu.runs import Run, read_json

__all__ = ["best_overrides", "fit_splits", "tuned_recipe"]


def best_overrides(run: Run) -> dict[str, Any]:
    """tune/best.json's overrides, plus the retraining settings when the recipe asks for them."""
    best = read_json(run.path("tune", "best.json"))
    overrides = dict(best["overrides"])
    if run.recipe.tune.retrain_on_train_val and best.get("best_epoch"):
        # No validation split is left to stop on: train as long as the best trial did.
        overrides["train.epochs"] = best["best_epoch"]
        overrides["train.early_stopping.patience"] = 0
    return overrides


def tuned_recipe(run: Run) -> Recipe:
    """The run's recipe with the best configuration applied (what train, evaluate, export see)."""
    return load_recipe(run.recipe, best_overrides(run))


def fit_splits(recipe: Recipe) -> tuple[str, ...]:
    """The splits the train stage fits on: train, or train + val after tuning when asked."""
    t = recipe.tune
    return ("train", "val") if t is not None and t.enabled and t.retrain_on_train_val else ("train",)
