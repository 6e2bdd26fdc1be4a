"""`danlu tune` errors a user meets first, and a trial whose combination the recipe rejects."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from danlu.errors import RecipeError
from danlu.tune.results import trial_rows
from danlu.tune.stage import optimize, tune
from danlu.tune.study import open_study
from tests.conftest import ROOT
from tests.tune.conftest import tune_section


def test_tune_needs_a_tune_section(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("name: plain\ndata: {source: 'sklearn:iris'}\nmodel: {arch: mlp}\n")
    r = subprocess.run([sys.executable, "-m", "danlu.cli", "tune", str(recipe), "--out",
                        str(tmp_path)], check=False, capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"})
    assert r.returncode == 2
    assert "recipe error" in r.stderr and "tune" in r.stderr and "search space" in r.stderr
    assert not list(tmp_path.glob("plain-*"))  # refused before any run folder is made


def test_grid_with_a_range_fails_the_cli_before_training(tmp_path):
    r = subprocess.run([sys.executable, "-m", "danlu.cli", "tune", str(ROOT / "recipes/digits.yaml"),
                        "tune.sampler=grid", "--out", str(tmp_path)], check=False,
                       capture_output=True, text=True, timeout=120,
                       env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"})
    assert r.returncode == 2
    assert "tune.space.train.optimizer.lr" in r.stderr and "explicit value list" in r.stderr


def test_a_value_the_recipe_rejects_is_refused_up_front_and_fails_only_its_trial(make_run):
    # model.arch=mlp keeps the CNN's `channels` key: load_recipe refuses that combination.
    run = make_run(tune_section(trials=2, space={"model.arch": {"choice": ["cnn", "mlp"]}}))
    with pytest.raises(RecipeError, match=r"tune.space.model.arch: got 'mlp'.*model.channels"):
        tune(run, run.recipe.tune)
    # Past the up-front check (which tries one key at a time), a bad combination fails only
    # its own trial, with the recipe error recorded, and the study goes on.
    optimize(run, run.recipe.tune)
    study = open_study(run, run.recipe.tune, seed=0)
    rows = trial_rows(study)
    failed = [r for r in rows if r["state"] == "fail"]
    assert failed and all("model.channels" in r["error"] for r in failed)
    assert sum(r["state"] == "complete" for r in rows) == 2
    assert {r["overrides"]["model.arch"] for r in rows if r["state"] == "complete"} == {"cnn"}
