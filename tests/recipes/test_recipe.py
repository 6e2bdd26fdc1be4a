"""Recipe loading: defaults, typed overrides, and errors that name the dotted path and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from danlu.errors import RecipeError
from danlu.recipe import Recipe, load_recipe
from tests.conftest import DIGITS

FIXTURES = Path(__file__).parent


def test_shipped_recipe_loads_with_its_values():
    r = load_recipe(DIGITS)
    assert r.name == "digits" and r.model.arch == "cnn" and r.data.source == "sklearn:digits"
    assert r.train.optimizer.name == "adam"


@pytest.mark.parametrize("fixture", sorted(FIXTURES.glob("*.yaml")), ids=lambda p: p.name)
def test_old_recipes_kept_as_fixtures_still_load(fixture):
    assert isinstance(load_recipe(fixture), Recipe)


def test_overrides_are_typed_by_the_schema():
    r = load_recipe(DIGITS, ["train.epochs=5", "train.optimizer.lr=0.01", "model.channels=[8, 16]",
                             "train.optimizer.name=sgd"])
    assert r.train.epochs == 5 and isinstance(r.train.epochs, int)
    assert r.train.optimizer.lr == 0.01 and r.model.channels == [8, 16]
    assert r.train.optimizer.name == "sgd"


def test_dict_overrides_from_python():
    assert load_recipe(DIGITS, {"train.epochs": 2}).train.epochs == 2


def _error(*overrides: str, source=DIGITS) -> RecipeError:
    with pytest.raises(RecipeError) as info:
        load_recipe(source, list(overrides))
    return info.value


def test_misspelt_key_names_path_and_closest_key():
    e = _error("train.epoch=5")
    assert e.path == "train.epoch"
    assert "did you mean 'train.epochs'" in str(e)


def test_misspelt_top_level_section():
    e = _error("trian.epochs=5")
    assert e.path == "trian" and "did you mean 'train'" in str(e)


def test_wrong_type_names_path_and_expectation():
    e = _error("train.epochs=many")
    assert e.path == "train.epochs" and "'many'" in str(e) and "integer" in str(e)


def test_bad_value_names_the_bound():
    e = _error("train.optimizer.lr=-1")
    assert e.path == "train.optimizer.lr" and "greater than 0" in str(e)


def test_unknown_optimizer_suggests_the_closest():
    e = _error("train.optimizer.name=adamm")
    assert e.path == "train.optimizer.name" and "did you mean 'adam'" in str(e)
    assert "rmsprop" in str(e)  # the choices are listed


def test_unknown_model_arch_suggests_the_closest():
    e = _error("model.arch=cnnn")
    assert e.path == "model.arch" and "did you mean 'cnn'" in str(e)


def test_field_of_another_arch_is_rejected_with_the_valid_ones():
    e = _error(source={"model": {"arch": "mlp", "channels": [8]}})
    assert e.path == "model.channels" and "dropout, ensemble, hidden" in str(e)


def test_bad_source_and_unknown_sklearn_set():
    assert _error("data.source=http://x").path == "data.source"
    assert "breast_cancer" in str(_error("data.source=sklearn:mnist"))


def test_csv_source_needs_a_target():
    assert "data.target" in str(_error("data.source=csv:x.csv"))


def test_unknown_gate_metric_is_caught_before_training():
    e = _error("evaluate.gate={acuracy: 0.9}")
    assert e.path == "evaluate.gate" and "did you mean 'accuracy'" in str(e)


def test_early_stopping_metric_must_exist():
    assert _error("train.early_stopping.metric=val.acc").path == "train.early_stopping.metric"


def test_split_fractions_must_leave_training_rows():
    assert "leaves under 10%" in str(_error("data.split.val=0.5", "data.split.test=0.45"))


def test_malformed_override_and_missing_file(tmp_path):
    assert _error("train.epochs").path == "override"
    with pytest.raises(RecipeError, match="an existing YAML file"):
        load_recipe(tmp_path / "nope.yaml")


def test_invalid_yaml_and_non_mapping(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(RecipeError, match="valid YAML"):
        load_recipe(bad)
    bad.write_text("- a list\n")
    with pytest.raises(RecipeError, match="a mapping"):
        load_recipe(bad)


def test_unsupported_version(tmp_path):
    p = tmp_path / "r.yaml"
    p.write_text("version: 99\n")
    assert _error(source=p).path == "version"


def test_dump_round_trips_every_default():
    r = load_recipe(DIGITS, ["train.epochs=3"])
    again = load_recipe(yaml.safe_load(r.dump()))
    assert again == r
