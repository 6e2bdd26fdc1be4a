"""Experiment tracking: the recipe's `track:` section, TensorBoard and MLflow behind one Tracker.

Stages call `tracker(run)` and log through it (the train loop's epochs, evaluation, tuning trials,
compression variants); the pipeline opens it with `begin=True` first and calls `finish` last
(artifacts, the run's end status). With tracking off it is a Tracker without backends: every
call does nothing and neither library is imported."""

from __future__ import annotations

from typing import Any

from danlu.track.base import Backend, Tracker, flatten, param_value, scalars
from danlu.track.config import MlflowConfig, TrackConfig

__all__ = ["Backend", "MlflowConfig", "TrackConfig", "Tracker", "check_installed", "flatten",
           "param_value", "recipe_params", "scalars", "tracker"]

TENSORBOARD = "tensorboard"  # RUN/tensorboard/: the event files


def tracker(run: Any, begin: bool = False) -> Tracker:
    """The run folder's tracker, as its recipe's `track:` section says (danlu.runs.Run).

    begin: the pipeline's start: the MLflow run is marked RUNNING (a recipe whose logged
    values changed gets a new one)."""
    cfg: TrackConfig = run.recipe.track
    check_installed(cfg)
    backends: list[Backend] = []
    if cfg.tensorboard:
        from danlu.track._tensorboard import TensorBoardBackend

        backends.append(TensorBoardBackend(run.path(TENSORBOARD)))
    if cfg.mlflow is not None:
        from danlu.track._mlflow import open_mlflow

        backends.append(open_mlflow(run.dir, run.recipe.name, cfg.mlflow, recipe_params(run),
                                    begin))
    return Tracker(backends)


def check_installed(cfg: TrackConfig) -> None:
    """A library the section turns on that is not installed: one line naming the extra (the
    pipeline asks before it makes a run folder)."""
    from importlib.util import find_spec

    from danlu.errors import DanluError

    for on, module, key in ((cfg.tensorboard, "tensorboard", "track.tensorboard"),
                            (cfg.mlflow is not None, "mlflow", "track.mlflow")):
        if not on:
            continue
        try:
            missing = find_spec(module) is None
        except ValueError:  # sys.modules[module] is None: importing it fails
            missing = True
        if missing:
            raise DanluError(f"{key} needs the {module} package, which is not installed: "
                             "pip install 'danlu[track]'")


def recipe_params(run: Any) -> dict[str, str]:
    """The run folder's resolved recipe (RUN/recipe.yaml, every default written out) as
    parameters under dotted keys: data.split.val, train.optimizer.lr, ..."""
    import yaml

    path = run.path("recipe.yaml")
    d = yaml.safe_load(path.read_text()) if path.is_file() else run.recipe.to_dict()
    return {k: param_value(v) for k, v in flatten(d).items()}
