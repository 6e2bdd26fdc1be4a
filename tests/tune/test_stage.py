"""The tune stage on real digits trials: every sampler, pruning, several objectives, the pipeline."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

import danlu
from danlu.runs import read_json
from danlu.tune.stage import tune
from tests.conftest import DIGITS
from tests.tune.conftest import SMALL, read_trials, tune_section

SAMPLER_SPACES = {
    "grid": {"train.optimizer.lr": {"choice": [0.003, 0.01]},
             "model.channels": {"choice": [[8, 16], [16, 32]]}},
    "random": None, "tpe": None, "gp": None, "cmaes": None,
}


@pytest.mark.parametrize("sampler", list(SAMPLER_SPACES))
def test_each_sampler_runs_trials_and_records_the_best(make_run, sampler):
    space = SAMPLER_SPACES[sampler]
    cfg = tune_section(sampler=sampler, trials=4 if sampler == "grid" else 3,
                       **({"space": space} if space else {}))
    run = make_run(cfg)
    result = tune(run, run.recipe.tune)
    rows = read_trials(run.dir)
    best = read_json(run.path("tune", "best.json"))
    assert [r["number"] for r in rows] == list(range(len(rows)))
    assert sum(r["state"] == "complete" for r in rows) == best["trials"]["finished"] == len(rows)
    assert len(rows) == (4 if sampler == "grid" else 3)
    done = [r for r in rows if r["state"] == "complete"]
    top = max(done, key=lambda r: (r["values"][0], -r["number"]))
    assert best["trial"] == top["number"] and best["values"] == top["values"]
    assert best["overrides"] == top["overrides"] and best["sampler"] == sampler
    assert all(0.0 <= r["values"][0] <= 1.0 and r["epochs"] == 2 for r in done)
    if sampler == "grid":  # the whole 2x2 grid, each point once
        points = {(r["overrides"]["train.optimizer.lr"], tuple(r["overrides"]["model.channels"]))
                  for r in rows}
        assert len(points) == 4
    assert result.metrics["finished"] == len(rows)
    written = read_json(run.path("tune", "plots.json"))["written"]
    assert {"optimization_history", "parallel_coordinate"} <= set(written)
    for rel in written.values():
        assert (run.dir / rel).read_text().lstrip().startswith("<?xml")


def test_median_pruner_stops_bad_trials_early(make_run):
    # SGD with learning rates down to 1e-5 makes some trials hopeless after an epoch or two.
    space = {"train.optimizer.lr": {"log_float": [1.0e-5, 0.1]}}
    cfg = tune_section(trials=10, space=space,
                       pruner={"name": "median", "startup_trials": 2, "warmup_epochs": 1})
    run = make_run(cfg, **{"train.epochs": 4, "train.optimizer.name": "sgd"})
    result = tune(run, run.recipe.tune)
    rows = read_trials(run.dir)
    pruned = [r for r in rows if r["state"] == "pruned"]
    assert len(pruned) >= 2, [(r["state"], r["values"], r["epochs"]) for r in rows]
    assert all(r["epochs"] < 4 and len(r["intermediate"]) == r["epochs"] for r in pruned)
    assert result.metrics["pruned"] == len(pruned)
    best = read_json(run.path("tune", "best.json"))
    assert best["trials"]["finished"] == 10 and best["trials"]["pruned"] == len(pruned)
    assert best["epochs_total"] == sum(r["epochs"] for r in rows) < 10 * 4


def test_several_objectives_give_a_pareto_front(make_run):
    cfg = tune_section(sampler="nsga2", trials=4, objectives=["val.accuracy:maximize",
                                                              "params:minimize"],
                       space={"model.hidden": {"int": [8, 64]},
                              "model.channels": {"choice": [[4, 8], [8, 16], [16, 32]]}})
    run = make_run(cfg)
    tune(run, run.recipe.tune)
    best = read_json(run.path("tune", "best.json"))
    front = best["pareto_front"]
    rows = {r["number"]: r for r in read_trials(run.dir)}
    assert front and all(len(p["values"]) == 2 for p in front)
    for p in front:  # nothing on the front is beaten on both objectives by another trial
        acc, size = p["values"]
        assert not any(r["values"][0] >= acc and r["values"][1] <= size and
                       r["values"] != p["values"] for r in rows.values())
    assert best["trial"] == max(front, key=lambda p: p["values"][0])["trial"]
    assert (run.path("tune", "pareto_front.svg")).is_file()


def test_run_with_tune_enabled_packages_the_best_configuration(tmp_path):
    tune_cfg = tune_section(trials=3, space={"model.dropout": {"float": [0.0, 0.4]},
                                             "model.hidden": {"choice": [16, 48]}})
    result = danlu.run(DIGITS, {**SMALL, "tune": tune_cfg}, out=tmp_path)
    assert result.stages == {s: "ran" for s in ("data", "tune", "train", "evaluate", "export", "report")}
    best = read_json(result.run_dir / "tune/best.json")
    trained = read_json(result.run_dir / "train/model/model.json")["config"]
    assert trained["dropout"] == best["overrides"]["model.dropout"]
    assert trained["hidden"] == best["overrides"]["model.hidden"]
    weights = load_file(str(result.run_dir / "train/model/model.safetensors"))
    assert any(t.ndim == 2 and t.shape[0] == best["overrides"]["model.hidden"]
               for t in weights.values())
    assert result.package_dir is not None
    # recipe.yaml stays the recipe asked for; tune/recipe.yaml is what train used.
    asked = danlu.load_recipe(result.run_dir / "recipe.yaml")
    used = danlu.load_recipe(result.run_dir / "tune/recipe.yaml")
    assert asked.model.hidden == 32 and used.model.hidden == best["overrides"]["model.hidden"]
    # Resume: the study and the training on its best configuration are reused.
    again = danlu.run(None, resume=result.run_dir)
    assert set(again.stages.values()) == {"cached"}
    # The train key follows the tuned configuration, not the recipe's own model section.
    stages = read_json(result.run_dir / "manifest.json")["stages"]
    plain = danlu.run(DIGITS, {**SMALL, "train.epochs": 1}, out=tmp_path / "plain")
    assert "tune" not in plain.stages
    assert read_json(plain.run_dir / "manifest.json")["stages"]["train"]["key"] != stages["train"]["key"]


def test_retrain_on_train_val_fits_both_splits_for_the_best_epochs(tmp_path):
    tune_cfg = tune_section(trials=2, retrain_on_train_val=True)
    result = danlu.run(DIGITS, {**SMALL, "tune": tune_cfg}, out=tmp_path)
    best = read_json(result.run_dir / "tune/best.json")
    summary = read_json(result.run_dir / "train/summary.json")
    assert summary["fit_on"] == ["train", "val"]
    assert summary["epochs_run"] == best["best_epoch"]
    history = (result.run_dir / "train/history.jsonl").read_text().splitlines()
    assert len(history) == best["best_epoch"] and json.loads(history[0])["epoch"] == 1
