"""Stage order, caching and resume: `run()` is what `danlu run` and `danlu.run` call."""

from __future__ import annotations

import dataclasses
import functools
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from danlu import track
from danlu.recipe import Recipe, load_recipe
from danlu.runs import Run, StageResult, atomic_write, cache_key, read_json
from danlu.train.nodes import ONE_NODE, Nodes

__all__ = ["STAGES", "RunResult", "run"]


def with_features(recipe: Recipe) -> Recipe:
    """The recipe with data.features filled in when it has none (the source's own features,
    or inferred from its first chunk) and the columns inference left out added to data.drop,
    so the resolved recipe says what the model reads and what it does not."""
    if recipe.data.features is not None:
        return recipe
    from danlu.data.features import resolve
    from danlu.data.readers import open_reader

    d = recipe.data
    reader = open_reader(d.source, d.target.column, d.chunk_rows, d.drop)
    entries, dropped = resolve(d, reader)
    features = {k: v.model_dump(mode="json", exclude_none=True) for k, v in entries.items()}
    return load_recipe(recipe, {"data.features": features, "data.drop": [*d.drop, *dropped]})


def _data(run: Run, recipe: Recipe) -> StageResult:
    from danlu.data.stage import data

    return data(run, recipe.data)


def _tune(run: Run, recipe: Recipe) -> StageResult:
    from danlu.tune.stage import tune

    return tune(run, recipe.tune)


def _tuning(recipe: Recipe) -> bool:
    return recipe.tune is not None and recipe.tune.enabled


def _after(name: str, run: Run) -> Run:
    """The run as the next stages see it: after `tune`, its recipe holds the best configuration."""
    if name != "tune":
        return run
    from danlu.tune.apply import tuned_recipe

    return dataclasses.replace(run, recipe=tuned_recipe(run))


def _train(run: Run, recipe: Recipe, nodes: Nodes = ONE_NODE) -> StageResult:
    from danlu.train.stage import train
    from danlu.tune.apply import fit_splits

    return train(run, recipe.train, fit_on=fit_splits(recipe), nodes=nodes)


def _evaluate(run: Run, recipe: Recipe) -> StageResult:
    from danlu.evaluate.stage import evaluate

    return evaluate(run, recipe.evaluate)


def _export(run: Run, recipe: Recipe) -> StageResult:
    from danlu.export.stage import export

    return export(run, recipe.export)


def _compress(run: Run, recipe: Recipe) -> StageResult:
    from danlu.compress.stage import compress

    return compress(run, recipe.compress)


def _report(run: Run, recipe: Recipe) -> StageResult:
    from danlu.report import write_report

    return StageResult(paths={"report": write_report(run.dir).name})


# (stage, the recipe sections its result depends on, the function). Each stage's key also
# folds in the key of the stage before it, so a changed upstream section reruns what follows.
STAGES: list[tuple[str, tuple[str, ...], Callable[[Run, Recipe], StageResult]]] = [
    ("data", ("seed", "data", "preprocess"), _data),
    # Only when the recipe enables it; later stages then key on the tuned model/train sections.
    ("tune", ("tune", "model", "train"), _tune),
    ("train", ("model", "train"), _train),
    ("evaluate", ("evaluate",), _evaluate),
    ("export", ("name", "export"), _export),
    ("compress", ("compress",), _compress),
    ("report", (), _report),
]
# Stages that run only when the recipe has their section.
OPTIONAL = {"compress"}


def _report_after_failure(run: Run, error: BaseException) -> None:
    """A run stopped by its gate still gets report.html: the metrics say why it stopped."""
    from danlu.errors import GateError

    if isinstance(error, GateError):
        try:
            _report(run, run.recipe)
        except Exception:  # the gate's error is the one to show; a report is a bonus here
            pass


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


def _stages(r: Run, result: RunResult, on_stage: Callable[[str, str], None],
            until: str | None, nodes: Nodes) -> None:
    """Each stage in order: skipped when its key matches a finished entry, else run and marked."""
    key = ""
    cur = r  # the run as each stage sees it (after `tune`: the best configuration applied)
    for name, sections, fn in STAGES:
        if name == "tune" and not _tuning(r.recipe):
            continue  # no tune stage: the other stages' keys are what they were without one
        if name in OPTIONAL and getattr(r.recipe, name) is None:
            continue  # an optional stage the recipe does not ask for
        key = cache_key(key, cur.recipe.section_hash(*sections))
        if name == "train":
            fn = functools.partial(_train, nodes=nodes)
        last = name == until or (name == "train" and nodes.rank != 0)
        if r.is_done(name, key):
            result.stages[name] = "cached"
            result.metrics[name] = r.stage_entry(name).get("metrics", {})
            on_stage(name, "cached")
            cur = _after(name, cur)
            if last:
                break
            continue
        on_stage(name, "running")
        r.mark(name, "running", key)
        try:
            res = fn(cur, cur.recipe)
        except BaseException as e:
            r.mark(name, "failed", key, error=f"{type(e).__name__}: {e}",
                   traceback=traceback.format_exc(limit=5))
            try:
                r.log_error(name, e)
            except OSError:  # a full disk must not hide the stage's own error
                pass
            on_stage(name, "failed")
            _report_after_failure(r, e)
            raise
        r.mark(name, "finished", key, paths=res.paths, metrics=res.metrics)
        result.stages[name] = "ran"
        result.metrics[name] = res.metrics
        on_stage(name, "finished")
        cur = _after(name, cur)
        if last:
            break


def _finish(r: Run, tracked: track.Tracker, status: str) -> None:
    """The tracker's last calls: the report and the package as artifacts, the end status."""
    tracked.log_artifacts([r.path("report.html"), r.path("package")])
    tracked.finish(status)


def run(recipe: str | Path | dict | Recipe | None, overrides: list[str] | dict[str, Any] | None = None,
        out: str | Path = "runs", resume: str | Path | None = None,
        on_stage: Callable[[str, str], None] = lambda stage, status: None,
        until: str | None = None, nodes: Nodes = ONE_NODE) -> RunResult:
    """Run every stage of a recipe; with `resume`, skip the stages that finished in that folder.

    `until` names the last stage to run (e.g. "train" for `danlu train`, "data" for
    `danlu data prepare`). `nodes`: this machine's place in a training across machines
    (danlu.train.nodes.Nodes); a node other than 0 stops after training, since node 0
    holds the weights and evaluates, exports and reports."""
    if resume is not None:
        r = Run.open(resume)
        if recipe is not None or overrides or r.recipe.data.features is None:
            # A changed section changes its stage's cache key: that stage and the ones after
            # it rerun in this folder, the others are reused.
            r.recipe = with_features(load_recipe(recipe if recipe is not None else r.recipe,
                                                 overrides))
            atomic_write(r.path("recipe.yaml"), r.recipe.dump())
    else:
        resolved = with_features(load_recipe(recipe, overrides))
        track.check_installed(resolved.track)  # a missing library: one line, no run folder
        r = Run.create(resolved, out)
    result = RunResult(r.dir)
    tracked = track.tracker(r, begin=True)  # the recipe's `track:` section (off: no-op calls)
    try:
        _stages(r, result, on_stage, until, nodes)
    except BaseException:
        try:
            _finish(r, tracked, "FAILED")
        except Exception:  # the stage's error is the one to show
            pass
        raise
    _finish(r, tracked, "FINISHED")
    metrics_file = r.path("eval", "metrics.json")
    if metrics_file.is_file():
        result.metrics["test"] = read_json(metrics_file)["test"]
    return result

