"""The compress recipe section and the Optuna search under a budget."""

from __future__ import annotations

import json

import pytest

from danlu.errors import RecipeError
from danlu.recipe import load_recipe
from tests.conftest import DIGITS


def test_compress_section_is_optional_and_round_trips():
    assert load_recipe(DIGITS).compress is None
    r = load_recipe(DIGITS, {"compress": {"variants": [
        {"name": "a", "prune": {"sparsity": 0.5}},
        {"name": "b", "from": "a", "quantize": {"mode": "auto"}}]}})
    assert r.compress.variants[1].from_ == "a"
    again = load_recipe(r.to_dict())
    assert again.compress == r.compress and "from" in again.dump()


def test_unknown_parent_is_a_recipe_error_naming_the_path():
    with pytest.raises(RecipeError) as e:
        load_recipe(DIGITS, {"compress": {"variants": [{"name": "b", "from": "nope",
                                                        "quantize": {}}]}})
    assert "compress.variants" in str(e.value) and "nope" in str(e.value)
    with pytest.raises(RecipeError, match="compress.variants.0.prune.sparsity"):
        load_recipe(DIGITS, {"compress": {"variants": [{"name": "a", "prune": {"sparsity": 1.5}}]}})


@pytest.mark.slow
def test_search_returns_a_pareto_front_of_gated_variants(tmp_path):
    import danlu
    from danlu.compress.stage import compress_run

    run = danlu.run(DIGITS, overrides={"train.epochs": 5, "evaluate.gate": {},
                                                "preprocess.augment": []}, out=tmp_path)
    res = compress_run(run.run_dir, ["compress.search.finetune_epochs=1",
                                     "compress.search.distill_epochs=1"], search=True, trials=3)
    folder = run.run_dir / "compress"
    trials = json.loads((folder / "search" / "trials.json").read_text())
    assert len(trials) == 3 and (folder / "search" / "study.db").is_file()
    on_front = [t["variant"]["name"] for t in trials if t["on_front"]]
    report = json.loads((folder / "pareto.json").read_text())
    assert [v["name"] for v in report["variants"]] == ["baseline", *on_front]
    assert res.metrics["chosen"] == report["chosen"]
    assert Run_stage_finished(run.run_dir)


def Run_stage_finished(run_dir) -> bool:  # noqa: N802
    return json.loads((run_dir / "manifest.json").read_text())["stages"]["compress"]["status"] == "finished"
