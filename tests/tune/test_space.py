"""The search space: dotted paths, conditions, grids; bad spaces fail before any trial runs."""

from __future__ import annotations

import optuna
import pytest

from danlu.errors import RecipeError
from danlu.recipe import load_recipe
from danlu.tune.space import check_space, grid_space, suggest
from tests.conftest import DIGITS

CONDITIONAL = {
    "train.optimizer.name": {"choice": ["sgd", "momentum", "adam"]},
    "train.optimizer.momentum": {"float": [0.5, 0.99], "when": {"train.optimizer.name": ["momentum"]}},
    "model.channels": {"choice": [[16, 32], [32, 64]]},
}


def _recipe(space, **tune):
    return load_recipe(DIGITS, {"tune": {"space": space, **tune}})


def test_grid_with_a_continuous_range_is_refused_naming_the_path():
    recipe = _recipe({"train.optimizer.lr": {"choice": [0.001, 0.01]},
                      "model.dropout": {"float": [0.0, 0.5]}}, sampler="grid")
    with pytest.raises(RecipeError) as e:
        check_space(recipe)
    assert e.value.path == "tune.space.model.dropout"
    assert "explicit value list" in str(e.value) and "choice: [0.0, 0.25, 0.5]" in str(e.value)
    with pytest.raises(RecipeError, match=r"tune.space.train.optimizer.lr.*log_float"):
        grid_space({"train.optimizer.lr": {"log_float": [1e-4, 1e-1]}})


def test_grid_takes_lists_int_ranges_and_stepped_floats():
    grid = grid_space({"a.b": {"choice": [[16, 32], [32, 64]]}, "c": {"int": [1, 3]},
                       "d": {"float": [0.0, 0.5], "step": 0.25}})
    assert grid == {"a.b": ["[16, 32]", "[32, 64]"], "c": [1, 2, 3], "d": [0.0, 0.25, 0.5]}


def test_conditional_parameter_is_drawn_only_when_its_condition_holds():
    base = load_recipe(DIGITS).to_dict()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = []
    for _ in range(30):
        trial = study.ask()
        chosen = suggest(trial, CONDITIONAL, base)
        seen.append(chosen)
        assert ("train.optimizer.momentum" in chosen) == (chosen["train.optimizer.name"] == "momentum")
        assert chosen["model.channels"] in ([16, 32], [32, 64])  # lists come back as lists
        load_recipe(base, chosen)  # every drawn configuration is a valid recipe
        study.tell(trial, 0.0)
    assert {c["train.optimizer.name"] for c in seen} == {"sgd", "momentum", "adam"}


def test_unknown_path_is_refused_with_did_you_mean():
    with pytest.raises(RecipeError, match=r"did you mean 'train.optimizer.lr'") as e:
        check_space(_recipe({"train.optimizer.lrr": {"log_float": [1e-4, 1e-1]}}))
    assert e.value.path == "tune.space.train.optimizer.lrr"


def test_values_the_recipe_rejects_are_refused_before_any_trial():
    with pytest.raises(RecipeError, match=r"tune.space.model.dropout.*1\.5"):
        check_space(_recipe({"model.dropout": {"float": [0.0, 1.5]}}))
    with pytest.raises(RecipeError, match=r"tune.space.data.source.*fixed"):
        check_space(_recipe({"data.source": {"choice": ["sklearn:iris"]}}))


@pytest.mark.parametrize("space, message", [
    ({"model.dropout": {"float": [0.5, 0.1]}}, "low < high"),
    ({"model.dropout": {"float": [0.1, 0.5], "choice": [0.1]}}, "exactly one of"),
    ({"train.optimizer.lr": {"log_float": [0, 0.1]}}, "low > 0"),
    ({"model.hidden": {"int": [8.5, 64]}}, "integers"),
    ({"model.dropout": {"choice": []}}, "non-empty list"),
])
def test_malformed_space_entries_name_the_key(space, message):
    with pytest.raises(RecipeError, match=message) as e:
        _recipe(space)
    assert e.value.path == "tune.space" and next(iter(space)) in str(e.value)


def test_objectives_and_samplers_are_checked():
    with pytest.raises(RecipeError, match="not 'val.accuracy:up'"):
        _recipe({"model.dropout": {"float": [0, 0.5]}}, objectives=["val.accuracy:up", "x"])
    with pytest.raises(RecipeError, match="nsga2"):
        _recipe({"model.dropout": {"float": [0, 0.5]}}, sampler="cmaes",
                objectives=["val.accuracy:maximize", "latency_ms:minimize"])
    with pytest.raises(RecipeError, match="did you mean 'tpe'"):
        _recipe({"model.dropout": {"float": [0, 0.5]}}, sampler="tpee")


def test_shipped_digits_recipe_has_a_valid_disabled_tune_section():
    recipe = load_recipe(DIGITS)
    assert recipe.tune is not None and recipe.tune.enabled is False
    assert {"train.optimizer.lr", "train.optimizer.name", "model.dropout",
            "model.channels"} <= set(recipe.tune.space)
    check_space(recipe)
