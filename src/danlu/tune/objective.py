"""One trial: the base recipe + the trial's overrides, trained and scored with the train/evaluate code."""

from __future__ import annotations

import os
import socket
import statistics
import time
from collections.abc import Callable
from typing import Any

import optuna
import torch

from danlu.data.stage import load_splits
from danlu.errors import RecipeError
from danlu.recipe import Recipe, load_recipe
from danlu.runs import Run
from danlu.track import Tracker
from danlu.train.inputs import Inputs
from danlu.train.loop import fit, val_scores
from danlu.train.stage import resolve_device, seed_everything
from danlu.tune.config import TuneConfig
from danlu.tune.space import suggest

__all__ = ["make_objective", "measure"]


def make_objective(run: Run, cfg: TuneConfig, worker: int = 0,
                   tracked: Tracker | None = None) -> Callable[[optuna.Trial], Any]:
    """The function Optuna calls per trial; the data split is loaded once per worker. Each trial
    is a child run of `tracked` (the run folder's tracker): its overrides, curves and values."""
    tracked = tracked or Tracker()
    base: Recipe = run.recipe
    base_dict = base.to_dict()
    inputs = Inputs(load_splits(run), base.model, resolve_device(base.train.device))
    data = {s: inputs.xy(s) for s in ("train", "val")}
    lengths = inputs.lengths("train") if base.train.length_bucketing else None
    goals = cfg.goals
    check_goals(goals, inputs.head)
    # Pruning needs the objective each epoch: fit() reports the head's epoch metrics (loss,
    # accuracy and macro F1; loss, rmse and mae).
    reported = f"val_{goals[0][0].removeprefix('val.')}"
    prunable = len(goals) == 1 and goals[0][0].removeprefix("val.") in inputs.head.epoch_metrics

    def objective(trial: optuna.Trial) -> float | list[float]:
        overrides = suggest(trial, cfg.space, base_dict)
        trial.set_user_attr("overrides", overrides)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}:{worker}")
        with tracked.child(f"tune/trial-{trial.number}", params=overrides,
                           tags={"danlu.stage": "tune", "danlu.trial": trial.number}) as t:
            return run_trial(trial, overrides, t)

    def run_trial(trial: optuna.Trial, overrides: dict[str, Any], t: Tracker) -> float | list[float]:
        try:
            recipe = load_recipe(base_dict, overrides)
        except RecipeError as e:  # an invalid combination fails this trial, with the reason kept
            trial.set_user_attr("error", str(e))
            raise
        if recipe.model.arch != base.model.arch:
            raise RecipeError("tune.space.model.arch", got=recipe.model.arch,
                              expected=f"the base recipe's model family ({base.model.arch}): a "
                                       "trial trains on the base model's encoded inputs")
        seed_everything(recipe.seed)
        model = inputs.family.prepare(inputs.build(recipe.model), recipe.train)

        def on_epoch(row: dict[str, Any]) -> None:
            trial.set_user_attr("epochs", row["epoch"])
            t.log_epoch(row)
            if prunable:
                trial.report(row[reported], row["epoch"])
                if trial.should_prune():
                    raise optuna.TrialPruned(f"pruned after epoch {row['epoch']}")

        result = fit(model, data["train"], data["val"], inputs.head, recipe.train, recipe.seed,
                     on_epoch, lengths=lengths)
        trial.set_user_attr("best_epoch", result.best_epoch)
        values = [measure(model, metric, data["val"], inputs.head) for metric, _ in goals]
        t.log_metrics({"best_epoch": result.best_epoch,
                       **{metric: v for (metric, _), v in zip(goals, values, strict=True)}})
        return values[0] if len(values) == 1 else values

    return objective


def check_goals(goals: list[tuple[str, str]], head) -> None:
    """Each val.* objective is a metric of the run's head, optimized the way it improves."""
    for metric, direction in goals:
        if not metric.startswith("val."):
            continue
        name = metric.removeprefix("val.")
        if name not in head.metric_names:
            raise RecipeError("tune.objective", got=metric,
                              expected=f"a metric of the {head.type} head: "
                                       f"{', '.join('val.' + m for m in head.metric_names)}, "
                                       "latency_ms or params")
        better = "minimize" if head.lower_is_better(name) else "maximize"
        if direction != better:
            raise RecipeError("tune.direction", got=f"{metric}:{direction}",
                              expected=f"{better} for {metric} (lower is "
                                       f"{'better' if better == 'minimize' else 'worse'})",
                              hint=f"write tune: {{objective: {metric}, direction: {better}}}")


def measure(model: torch.nn.Module, metric: str, val: tuple[torch.Tensor, torch.Tensor],
            head) -> float:
    """One objective value of a trained network: a val.* metric, latency_ms or params."""
    if metric == "params":
        return float(sum(p.numel() for p in model.parameters()))
    if metric == "latency_ms":
        return _latency_ms(model, val[0][:1])
    return float(val_scores(model, head, val)[metric.removeprefix("val.")])


def _latency_ms(model: torch.nn.Module, row: torch.Tensor, repeats: int = 30) -> float:
    """Median ms of one single-row forward pass (eager, no grad), after 5 warm-up calls."""
    model.eval()
    times = []
    with torch.inference_mode():
        for i in range(repeats + 5):
            t0 = time.perf_counter()
            model(row)
            if i >= 5:
                times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)
