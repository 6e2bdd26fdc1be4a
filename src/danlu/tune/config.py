"""Recipe section `tune` (pydantic only, no torch, no optuna)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from danlu.data.config import Section
from danlu.train.config import VAL_METRICS

__all__ = ["OBJECTIVE_METRICS", "PARAM_KINDS", "PrunerConfig", "TuneConfig", "split_objective"]

# What a trial can be scored on: the validation metrics, plus two costs of the trained network
# (median ms per single-row forward pass on this CPU, and the parameter count).
OBJECTIVE_METRICS = (*VAL_METRICS, "latency_ms", "params")
# How a searched key is drawn: float = uniform, log_float = log-uniform, int = uniform integer,
# choice = one of a list.
PARAM_KINDS = ("float", "log_float", "int", "choice")

SamplerName = Literal["grid", "random", "tpe", "gp", "cmaes", "nsga2"]


class PrunerConfig(Section):
    # median: stop a trial whose objective at epoch k is worse than the median of earlier trials
    # at epoch k (Optuna MedianPruner); hyperband: successive halving over epochs (Li et al. 2018).
    name: Literal["none", "median", "hyperband"] = "median"
    # Trials that always run to the end before pruning starts: the median needs a few to compare.
    startup_trials: int = Field(3, ge=0)
    # Epochs every trial gets before it may be pruned (the first epochs are noisy).
    warmup_epochs: int = Field(1, ge=0)


class TuneConfig(Section):
    # A recipe may carry a tune section without running it on every `danlu run`
    # (recipes/digits.yaml does, to keep `make demo` fast); `danlu tune` always runs it.
    enabled: bool = True
    # grid | random | tpe | gp | cmaes | nsga2 (multi-objective); all are Optuna's samplers.
    sampler: SamplerName = "tpe"
    # Finished (complete + pruned) trials the study should hold; failed trials do not count.
    trials: int = Field(20, ge=1)
    # Stop starting new trials after this long (wall clock of this process); None = no limit.
    timeout_minutes: float | None = Field(None, gt=0)
    # One metric to optimize (names as in eval/metrics.json, with "val.").
    objective: str = "val.accuracy"
    direction: Literal["maximize", "minimize"] = "maximize"
    # Several objectives ("metric:direction") give a Pareto front instead of one best; the
    # configuration trained afterwards is the front's best on the first objective.
    objectives: list[str] | None = None
    pruner: PrunerConfig = PrunerConfig()
    # Random trials before TPE / GP / CMA-ES start modelling the space (NSGA-II: population).
    startup_trials: int = Field(5, ge=1)
    # Dotted recipe path -> {float|log_float|int|choice: ..., when: {dotted path: [values]}}.
    space: dict[str, dict[str, Any]] = Field(default_factory=dict)
    # Any Optuna storage URL (sqlite:///..., postgresql://..., journal:PATH); None = a SQLite file
    # in the run folder (tune/study.db).
    storage: str | None = None
    # The study's name in the storage; workers with the same storage and name share one study.
    # None = the run folder's name.
    study: str | None = None
    # Local worker processes on this machine, all on one study.
    workers: int = Field(1, ge=1)
    # A running trial that misses heartbeats for 2x this long is marked failed and retried.
    heartbeat_seconds: int = Field(10, ge=1)
    # After the study, train the best configuration on train + val (for the best trial's number
    # of epochs) instead of train alone. Val metrics of that model are then in-sample.
    retrain_on_train_val: bool = False

    @field_validator("pruner", mode="before")
    @classmethod
    def _pruner_shorthand(cls, v: Any) -> Any:
        return {"name": v} if isinstance(v, str) else v  # `pruner: median`

    @field_validator("objective")
    @classmethod
    def _objective(cls, v: str) -> str:
        if v not in OBJECTIVE_METRICS:
            raise ValueError(f"expected one of {', '.join(OBJECTIVE_METRICS)}")
        return v

    @field_validator("objectives")
    @classmethod
    def _objectives(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return v
        if len(v) < 2:
            raise ValueError("expected two or more 'metric:direction' items, e.g. "
                             "[val.accuracy:maximize, latency_ms:minimize]; use `objective` for one")
        for item in v:
            split_objective(item)
        return v

    @field_validator("space")
    @classmethod
    def _space(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        for path, spec in v.items():
            _check_param(path, spec)
        return v

    @model_validator(mode="after")
    def _consistent(self) -> TuneConfig:
        if self.enabled and not self.space:
            raise ValueError("expected a search space: tune.space maps dotted recipe paths to "
                             "ranges, e.g. {train.optimizer.lr: {log_float: [1.0e-4, 1.0e-1]}}")
        if self.objectives and self.sampler in ("cmaes", "gp"):
            raise ValueError(f"sampler {self.sampler!r} optimizes one objective; for "
                             "`objectives` use sampler: nsga2, tpe, random or grid")
        if self.sampler == "nsga2" and not self.objectives:
            raise ValueError("sampler 'nsga2' is for several `objectives`; for one objective use "
                             "tpe, gp, cmaes, random or grid")
        return self

    @property
    def goals(self) -> list[tuple[str, str]]:
        """[(metric, direction)], one item per objective."""
        if self.objectives:
            return [split_objective(o) for o in self.objectives]
        return [(self.objective, self.direction)]


def split_objective(item: str) -> tuple[str, str]:
    """"val.accuracy:maximize" -> ("val.accuracy", "maximize"), checked."""
    metric, _, direction = item.rpartition(":")
    if not metric or direction not in ("maximize", "minimize") or metric not in OBJECTIVE_METRICS:
        raise ValueError(f"each item as 'metric:maximize' or 'metric:minimize' (not {item!r}), e.g. "
                         f"val.accuracy:maximize; metrics: {', '.join(OBJECTIVE_METRICS)}")
    return metric, direction


def _check_param(path: str, spec: Any) -> None:
    """One entry of tune.space: exactly one kind, a valid range or list, a valid `when`."""
    where = f"{path!r}"
    if not isinstance(spec, dict):
        raise ValueError(f"{where}: expected a mapping like {{float: [0.0, 0.5]}}, got {spec!r}")
    kinds = [k for k in spec if k in PARAM_KINDS]
    unknown = [k for k in spec if k not in (*PARAM_KINDS, "when", "step")]
    if unknown or len(kinds) != 1:
        raise ValueError(f"{where}: expected exactly one of {', '.join(PARAM_KINDS)} (plus an "
                         f"optional `when`), got keys {sorted(spec)}")
    dist, value = kinds[0], spec[kinds[0]]
    if dist == "choice":
        if not isinstance(value, list) or not value:
            raise ValueError(f"{where}: choice expects a non-empty list, got {value!r}")
    else:
        ok = (isinstance(value, list) and len(value) == 2
              and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value)
              and value[0] < value[1])
        if dist == "int":
            ok = ok and all(isinstance(x, int) for x in value)
        if dist == "log_float":
            ok = ok and value[0] > 0
        if not ok:
            raise ValueError(f"{where}: {dist} expects [low, high] with low < high"
                             f"{' and low > 0' if dist == 'log_float' else ''}"
                             f"{' (integers)' if dist == 'int' else ''}, got {value!r}")
    if "step" in spec and dist not in ("float", "int"):
        raise ValueError(f"{where}: step applies to float and int ranges only")
    when = spec.get("when")
    if when is not None and (not isinstance(when, dict) or not all(
            isinstance(vals, list) and vals for vals in when.values())):
        raise ValueError(f"{where}: when expects {{dotted.path: [values...]}}, got {when!r}")
