"""Stage order, caching and resume: `run()` is what `danlu run` and `danlu.run` call."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from danlu.recipe import Recipe, load_recipe
from danlu.runs import Run, StageResult, atomic_write, cache_key, read_json

__all__ = ["STAGES", "RunResult", "run"]


def _data(run: Run, recipe: Recipe) -> StageResult:
    from danlu.data.stage import data

    return data(run, recipe.data)


def _train(run: Run, recipe: Recipe) -> StageResult:
    from danlu.train.stage import train

    return train(run, recipe.train)


def _evaluate(run: Run, recipe: Recipe) -> StageResult:
    from danlu.evaluate.stage import evaluate

    return evaluate(run, recipe.evaluate)


def _export(run: Run, recipe: Recipe) -> StageResult:
    from danlu.export.stage import export

    return export(run, recipe.export)


def _compress(run: Run, recipe: Recipe) -> StageResult:
    from danlu.compress.stage import compress

    return compress(run, recipe.compress)


# (stage, the recipe sections its result depends on, the function). Each stage's key also
# folds in the key of the stage before it, so a changed upstream section reruns what follows.
STAGES: list[tuple[str, tuple[str, ...], Callable[[Run, Recipe], StageResult]]] = [
    ("data", ("seed", "data", "preprocess"), _data),
    ("train", ("model", "train"), _train),
    ("evaluate", ("evaluate",), _evaluate),
    ("export", ("name", "export"), _export),
    ("compress", ("compress",), _compress),
]
# Stages that run only when the recipe has their section.
OPTIONAL = {"compress"}


@dataclass
class RunResult:
    """What `danlu.run` returns: the run folder, each stage's metrics, the package folder."""

    run_dir: Path
    metrics: dict[str, Any] = field(default_factory=dict)
    stages: dict[str, str] = field(default_factory=dict)  # stage -> "ran" | "cached"

    @property
    def package_dir(self) -> Path | None:
        p = self.run_dir / "package"
        return p if (p / "danlu-model.json").is_file() else None


def run(recipe: str | Path | dict | Recipe | None, overrides: list[str] | dict[str, Any] | None = None,
        out: str | Path = "runs", resume: str | Path | None = None,
        on_stage: Callable[[str, str], None] = lambda stage, status: None) -> RunResult:
    """Run every stage of a recipe; with `resume`, skip the stages that finished in that folder."""
    if resume is not None:
        r = Run.open(resume)
        if recipe is not None or overrides:
            # A changed section changes its stage's cache key: that stage and the ones after
            # it rerun in this folder, the others are reused.
            r.recipe = load_recipe(recipe if recipe is not None else r.recipe, overrides)
            atomic_write(r.path("recipe.yaml"), r.recipe.dump())
    else:
        r = Run.create(load_recipe(recipe, overrides), out)
    result = RunResult(r.dir)
    key = ""
    for name, sections, fn in STAGES:
        if name in OPTIONAL and getattr(r.recipe, name) is None:
            continue
        key = cache_key(key, r.recipe.section_hash(*sections))
        if r.is_done(name, key):
            result.stages[name] = "cached"
            result.metrics[name] = r.stage_entry(name).get("metrics", {})
            on_stage(name, "cached")
            continue
        on_stage(name, "running")
        r.mark(name, "running", key)
        try:
            res = fn(r, r.recipe)
        except BaseException as e:
            r.mark(name, "failed", key, error=f"{type(e).__name__}: {e}",
                   traceback=traceback.format_exc(limit=5))
            on_stage(name, "failed")
            raise
        r.mark(name, "finished", key, paths=res.paths, metrics=res.metrics)
        result.stages[name] = "ran"
        result.metrics[name] = res.metrics
        on_stage(name, "finished")
    metrics_file = r.path("eval", "metrics.json")
    if metrics_file.is_file():
        result.metrics["test"] = read_json(metrics_file)["test"]
    return result

