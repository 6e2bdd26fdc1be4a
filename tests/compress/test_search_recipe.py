"""The compress recipe section and the Optuna search under a budget."""

from __future__ import annotations

import json

import pytest

from danlu.errors import RecipeError
from danlu.recipe import load_recipe
from tests.compress.conftest import copy_run
from tests.conftest import DIGITS


def test_compress_section_is_optional_and_round_trips():
    assert load_recipe(DIGITS).compress is None
    r = load_recipe(DIGITS, {"compress": {"variants": [
        {"name": "a", "prune": {"sparsity": 0.5}},
        {"name": "b", "from": "a", "quantize": {"mode": "auto"}}]}})
    assert r.compress.variants[1].from_ == "a"
    again = load_recipe(r.to_dict())
    assert again.compress == r.compress and "from" in again.dump()
    # No list: the model family's defaults, decided by the stage (null in the resolved recipe).
    bare = load_recipe(DIGITS, {"compress": {"promote": True}})
    assert bare.compress.variants is None and load_recipe(bare.to_dict()).compress == bare.compress


def test_unknown_parent_is_a_recipe_error_naming_the_path():
    with pytest.raises(RecipeError) as e:
        load_recipe(DIGITS, {"compress": {"variants": [{"name": "b", "from": "nope",
                                                        "quantize": {}}]}})
    assert "compress.variants" in str(e.value) and "nope" in str(e.value)
    with pytest.raises(RecipeError, match="compress.variants.0.prune.sparsity"):
        load_recipe(DIGITS, {"compress": {"variants": [{"name": "a", "prune": {"sparsity": 1.5}}]}})


def test_budget_takes_a_metric_and_max_metric_drop_and_the_head_says_how_a_drop_counts():
    from danlu.compress.context import Context
    from danlu.compress.plan import check_budget
    from danlu.features import heads

    r = load_recipe(DIGITS, {"compress": {"budget": {"metric": "f1_macro", "max_metric_drop": 0.02}}})
    assert (r.compress.budget.metric, r.compress.budget.max_metric_drop) == ("f1_macro", 0.02)
    assert load_recipe(r.to_dict()).compress == r.compress
    with pytest.raises(RecipeError, match="compress.budget.max_metric_drop"):
        load_recipe(DIGITS, {"compress": {"budget": {"max_metric_drop": -0.1}}})
    number, category = heads["number"]("y", []), heads["category"]("y", ["a", "b"])
    check_budget(r.compress, category)
    with pytest.raises(RecipeError, match="compress.budget.metric"):
        check_budget(r.compress, number)  # f1_macro: a classification metric
    # an error grows relatively (5% above the baseline's RMSE), R² and accuracy fall absolutely
    assert number.metric_drop("rmse", 10.5, 10.0) == pytest.approx((0.05, "relative"))
    assert number.metric_drop("r2", 0.80, 0.85) == pytest.approx((0.05, "absolute"))
    assert category.metric_drop("accuracy", 0.95, 0.96) == pytest.approx((0.01, "absolute"))
    # the limit when max_metric_drop is unset: the head's default, else max_accuracy_drop
    bare = load_recipe(DIGITS, {"compress": {}}).compress
    for head, metric, limit in ((number, "rmse", 0.05), (category, "accuracy", 0.01)):
        ctx = Context(None, bare, None, [], head, None, None)
        assert (ctx.metric, ctx.max_drop) == (metric, limit)


def test_default_variants_are_the_model_familys():
    from danlu.compress.config import CompressConfig
    from danlu.compress.plan import resolve_variants
    from danlu.models import models

    cnn, source = resolve_variants(CompressConfig(), None, models["cnn"])
    assert [v.name for v in cnn] == ["pruned80", "slim50", "int8", "student", "student-int8"]
    assert source == "the cnn family's defaults (compress.variants not set)"
    text, _ = resolve_variants(CompressConfig(), None, models["transformer"])
    assert [v.name for v in text] == ["student", "int8", "student-int8"]
    assert {v.quantize.mode for v in text if v.quantize} == {"dynamic"}
    listed = CompressConfig.model_validate({"variants": [{"name": "q", "quantize": {}}]})
    assert resolve_variants(listed, None, models["transformer"])[1] == "recipe"


@pytest.mark.slow
def test_search_returns_a_pareto_front_of_gated_variants(small_run, tmp_path):
    from danlu.compress.stage import compress_run

    run_dir = copy_run(small_run.run_dir, tmp_path / "run")
    res = compress_run(run_dir, ["compress.search.finetune_epochs=1",
                                 "compress.search.distill_epochs=1", "compress.latency.runs=10"],
                       search=True, trials=3)
    folder = run_dir / "compress"
    trials = json.loads((folder / "search" / "trials.json").read_text())
    assert len(trials) == 3 and (folder / "search" / "study.db").is_file()
    assert all(t["state"] == "COMPLETE" for t in trials)
    on_front = [t["variant"]["name"] for t in trials if t["on_front"]]
    report = json.loads((folder / "pareto.json").read_text())
    assert [v["name"] for v in report["variants"]] == ["baseline", *on_front]
    assert report["variants_from"] == "given" and res.metrics["chosen"] == report["chosen"]
    manifest = json.loads((run_dir / "manifest.json").read_text())
    assert manifest["stages"]["compress"]["status"] == "finished"


@pytest.mark.slow  # the session's text run
def test_search_on_a_family_without_its_hooks_says_what_is_missing(text_run, tmp_path):
    from danlu.compress.stage import compress_run

    run_dir = copy_run(text_run.run_dir, tmp_path / "run")
    with pytest.raises(RecipeError, match=r"model\.arch: got 'transformer'.*no scaled \(width "
                                          r"students\), prunable.*widths.*compress\.variants"):
        compress_run(run_dir, search=True, trials=1)
    assert not (run_dir / "compress" / "search" / "study.db").exists()
