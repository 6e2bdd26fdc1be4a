"""Helpers for the tuning tests: small digits runs (a tiny CNN, 1-3 epochs) and study readers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from danlu.recipe import load_recipe
from danlu.runs import Run
from tests.conftest import DIGITS

# Small and quick: a CNN of 8/16 channels trains an epoch of digits in ~0.1 s on 2 cores.
SMALL = {"model.channels": [8, 16], "model.hidden": 32, "train.epochs": 2,
         "train.early_stopping.patience": 0, "evaluate.gate": {}}
SPACE = {"train.optimizer.lr": {"log_float": [1.0e-3, 3.0e-2]},
         "model.dropout": {"float": [0.0, 0.4]}}


def tune_section(**kw: Any) -> dict[str, Any]:
    return {"enabled": True, "sampler": "random", "trials": 3, "pruner": "none",
            "space": SPACE, "heartbeat_seconds": 1, "startup_trials": 2, **kw}


@pytest.fixture
def make_run(tmp_path):
    """A run folder whose data stage has finished, with the given tune section and overrides."""
    from danlu.data.stage import data

    def make(tune: dict[str, Any], **overrides: Any) -> Run:
        recipe = load_recipe(DIGITS, {**SMALL, "tune": tune, **overrides})
        run = Run.create(recipe, tmp_path / "runs")
        data(run, recipe.data)
        return run

    return make


def read_trials(run_dir: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run_dir / "tune" / "trials.jsonl").read_text().splitlines()]
