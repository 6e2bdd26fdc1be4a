"""A model family added from outside danlu (tests/contracts/toy_plugin.py) is compressed by the
same path, with no edit to compress: the Family base class's hooks decide what it takes."""

from __future__ import annotations

import json

import pytest

from danlu.errors import RecipeError
from tests.compress.conftest import FAST


@pytest.fixture(scope="module")
def toy_dir(toy_run):
    return toy_run.run_dir


def test_a_plugin_family_gets_the_base_defaults_and_magnitude_pruning(toy_dir, tmp_path):
    from danlu.compress.config import CompressConfig
    from danlu.compress.stage import compress
    from danlu.runs import Run
    from tests.compress.conftest import copy_run

    run_dir = copy_run(toy_dir, tmp_path / "run")
    compress(Run.open(run_dir), CompressConfig.model_validate(FAST))  # no list: its defaults
    doc = json.loads((run_dir / "compress" / "pareto.json").read_text())
    assert doc["variants_from"] == "the toy_linear family's defaults (compress.variants not set)"
    assert [r["name"] for r in doc["variants"]] == ["baseline", "int8"]
    assert doc["variants"][1]["quantized"] == "dynamic"
    listed = CompressConfig.model_validate({**FAST, "variants": [
        {"name": "p50", "prune": {"sparsity": 0.5, "finetune_epochs": 1}}]})
    compress(Run.open(run_dir), listed)
    p50 = json.loads((run_dir / "compress" / "p50" / "compression.json").read_text())
    assert p50["prune"]["achieved"]["sparsity"] == pytest.approx(0.5, abs=0.05)
    meta = json.loads((run_dir / "compress" / "p50" / "danlu-model.json").read_text())
    assert [f["type"] for f in meta["features"]] == ["toy_square", "toy_square"]
    with pytest.raises(RecipeError) as e:  # no width scaling, no structured pruning: said so
        compress(Run.open(run_dir), CompressConfig.model_validate({**FAST, "variants": [
            {"name": "s", "distill": {"width": 0.5}}]}))
    assert e.value.path == "compress.variants[0].distill.width" and "student" in str(e.value)
    with pytest.raises(RecipeError, match=r"compress\.variants\[0\]\.prune: .*no structured"):
        compress(Run.open(run_dir), CompressConfig.model_validate({**FAST, "variants": [
            {"name": "s", "prune": {"method": "structured"}}]}))
