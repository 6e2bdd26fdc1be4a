"""`compress.baseline`: this run's model, another run's (with its normalizer), or a package."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from danlu.compress.config import CompressConfig
from danlu.compress.measure import predict, session
from danlu.compress.stage import compress
from danlu.data.stage import load_splits
from danlu.errors import RecipeError
from danlu.runs import Run
from tests.conftest import DIGITS

FAST = {"latency": {"runs": 10, "warmup": 2}}


@pytest.fixture
def run_copy(small_run, tmp_path):
    d = tmp_path / "run"
    shutil.copytree(small_run.run_dir, d)
    return d


def _pareto(run_dir) -> dict:
    return json.loads((run_dir / "compress" / "pareto.json").read_text())


def test_package_baseline_quantizes_and_measures_the_packaged_onnx(run_copy, tmp_path):
    pkg = tmp_path / "pkg"
    shutil.copytree(run_copy / "package", pkg)
    cfg = CompressConfig.model_validate({"baseline": str(pkg), **FAST, "variants": [
        {"name": "dyn8", "quantize": {"mode": "dynamic"}}]})
    compress(Run.open(run_copy), cfg)
    doc = _pareto(run_copy)
    assert doc["baseline_source"]["kind"] == "package" and doc["baseline_source"]["path"] == str(pkg)
    base, dyn = doc["variants"]
    x, y = (lambda s: (s.x["test"], s.y["test"]))(load_splits(Run.open(run_copy)))
    _, labels = predict(session(pkg / "model.onnx", 2), x)
    assert base["accuracy"] == pytest.approx(float((labels == y).mean()))  # the package's model
    assert base["params"] > 1000 and base["nonzero_params"] <= base["params"]  # from the ONNX
    assert dyn["name"] == "dyn8" and (run_copy / "compress" / "dyn8" / "model.onnx").is_file()


def test_package_baseline_with_distillation_names_the_variants_and_the_fix(run_copy, tmp_path):
    cfg = CompressConfig.model_validate({"baseline": str(run_copy / "package"), **FAST, "variants": [
        {"name": "q", "quantize": {"mode": "static"}},
        {"name": "student", "distill": {"width": 0.5, "epochs": 1}},
        {"name": "student-q", "from": "student", "quantize": {"mode": "static"}},
        {"name": "p", "prune": {"sparsity": 0.5}}]})
    with pytest.raises(RecipeError, match=r"compress\.baseline.*variants student, student-q, p.*"
                                          r"no torch weights.*run folder"):
        compress(Run.open(run_copy), cfg)


def test_missing_baseline_folder_is_a_recipe_error(run_copy, tmp_path):
    cfg = CompressConfig.model_validate({"baseline": str(tmp_path / "nope"), **FAST})
    with pytest.raises(RecipeError, match=r"compress\.baseline: .*nope.*run folder.*no such folder"):
        compress(Run.open(run_copy), cfg)


@pytest.mark.slow
def test_another_runs_model_is_compressed_with_its_own_normalizer(run_copy, tmp_path):
    import danlu

    other = danlu.run(DIGITS, overrides={"seed": 1, "train.epochs": 3, "evaluate.gate": {},
                                         "preprocess.augment": []}, out=tmp_path / "other").run_dir
    cfg = CompressConfig.model_validate({"baseline": str(other), **FAST, "variants": [
        {"name": "p50", "prune": {"sparsity": 0.5, "finetune_epochs": 1}}]})
    compress(Run.open(run_copy), cfg)
    doc = _pareto(run_copy)
    assert doc["baseline_source"] == {"kind": "run", "path": str(other)}
    x = load_splits(Run.open(run_copy)).x["test"]
    # The other run's own package (its normalizer in the graph) gives the same labels on this
    # run's test rows as compress/baseline: the right normalizer travelled with the model.
    _, want = predict(session(other / "package" / "model.onnx", 2), x)
    with np.load(run_copy / "compress" / "baseline" / "predictions.npz") as z:
        assert (z["labels"] == want).mean() == 1.0
    p50 = json.loads((run_copy / "compress" / "p50" / "compression.json").read_text())
    assert p50["prune"]["achieved"]["sparsity"] == pytest.approx(0.5, abs=0.01)
