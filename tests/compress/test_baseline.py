"""`compress.baseline`: this run's model, another run's (with its own fitted features), or a package."""

from __future__ import annotations

import json

import numpy as np
import pytest

from danlu.compress.config import CompressConfig
from danlu.compress.stage import compress
from danlu.errors import RecipeError
from danlu.runs import Run
from tests.compress.conftest import FAST, copy_run
from tests.conftest import DIGITS


@pytest.fixture
def run_copy(small_run, tmp_path):
    return copy_run(small_run.run_dir, tmp_path / "run")


def _pareto(run_dir) -> dict:
    return json.loads((run_dir / "compress" / "pareto.json").read_text())


def _served_labels(pkg, values) -> np.ndarray:
    from danlu.compress.measure import load_served

    package, runtime = load_served(pkg, 2)
    return runtime.run(values)["label"]


def test_package_baseline_quantizes_and_measures_the_packaged_onnx(run_copy, tmp_path):
    import shutil

    from danlu.data.stage import load_splits

    pkg = tmp_path / "pkg"
    shutil.copytree(run_copy / "package", pkg)
    cfg = CompressConfig.model_validate({"baseline": str(pkg), **FAST, "variants": [
        {"name": "dyn8", "quantize": {"mode": "dynamic"}}]})
    compress(Run.open(run_copy), cfg)
    doc = _pareto(run_copy)
    assert doc["baseline_source"]["kind"] == "package" and doc["baseline_source"]["path"] == str(pkg)
    base, dyn = doc["variants"]
    splits = load_splits(Run.open(run_copy))
    labels = _served_labels(pkg, splits.values["test"])
    assert base["accuracy"] == pytest.approx(float((labels == splits.y["test"]).mean()))
    assert base["params"] > 1000 and base["nonzero_params"] <= base["params"]  # from the ONNX
    assert dyn["name"] == "dyn8" and (run_copy / "compress" / "dyn8" / "model.onnx").is_file()
    assert dyn["params"] > base["params"]  # int8 weights + one scale per channel, from the ONNX


def test_package_baseline_with_torch_steps_names_the_variants_and_the_fix(run_copy):
    cfg = CompressConfig.model_validate({"baseline": str(run_copy / "package"), **FAST, "variants": [
        {"name": "q", "quantize": {"mode": "static"}},
        {"name": "student", "distill": {"width": 0.5, "epochs": 1}},
        {"name": "student-q", "from": "student", "quantize": {"mode": "static"}},
        {"name": "p", "prune": {"sparsity": 0.5}}]})
    with pytest.raises(RecipeError, match=r"compress\.baseline.*variants student, student-q, p.*"
                                          r"no torch weights.*run folder"):
        compress(Run.open(run_copy), cfg)
    assert not (run_copy / "compress" / "q").exists()  # refused before anything was built


def test_missing_baseline_folder_is_a_recipe_error(run_copy, tmp_path):
    cfg = CompressConfig.model_validate({"baseline": str(tmp_path / "nope"), **FAST})
    with pytest.raises(RecipeError, match=r"compress\.baseline: .*nope.*run folder.*no such folder"):
        compress(Run.open(run_copy), cfg)


@pytest.mark.slow  # the session's text run
def test_a_baseline_of_another_task_is_a_recipe_error(run_copy, text_run):
    cfg = CompressConfig.model_validate({"baseline": str(text_run.run_dir / "package"), **FAST,
                                         "variants": [{"name": "q", "quantize": {"mode": "dynamic"}}]})
    with pytest.raises(RecipeError, match=r"compress\.baseline: .*this run's task.*pixels:image"):
        compress(Run.open(run_copy), cfg)


@pytest.mark.slow
def test_another_runs_model_is_compressed_with_its_own_normalizer(run_copy, tmp_path):
    import danlu
    from danlu.data.stage import load_splits

    other = danlu.run(DIGITS, overrides={"seed": 1, "train.epochs": 3, "evaluate.gate": {},
                                         "preprocess.augment": [], "preprocess.normalize": "minmax"},
                      out=tmp_path / "other").run_dir
    cfg = CompressConfig.model_validate({"baseline": str(other), **FAST, "variants": [
        {"name": "p50", "prune": {"sparsity": 0.5, "finetune_epochs": 1}}]})
    compress(Run.open(run_copy), cfg)
    doc = _pareto(run_copy)
    assert doc["baseline_source"] == {"kind": "run", "path": str(other)}
    # The other run's own package (its normalizer in the graph) gives the same labels on this
    # run's test rows as compress/baseline: the right normalizer travelled with the model.
    values = load_splits(Run.open(run_copy)).values["test"]
    want = _served_labels(other / "package", values)
    with np.load(run_copy / "compress" / "baseline" / "predictions.npz") as z:
        assert (z["labels"] == want).mean() == 1.0
    p50 = json.loads((run_copy / "compress" / "p50" / "compression.json").read_text())
    assert p50["prune"]["achieved"]["sparsity"] == pytest.approx(0.5, abs=0.01)
    model = json.loads((run_copy / "compress" / "p50" / "model" / "model.json").read_text())
    assert model["features"][0]["state"]["normalize"]["kind"] == "minmax"  # the other run's


def test_the_exported_package_is_the_baseline_only_when_it_is_what_compress_would_build(run_copy):
    """Same weights, runtimes and threads: the export stage's package is copied (build_package
    made it); at other threads the baseline is built again from train/model/."""
    from danlu.runs import read_json

    dyn = [{"name": "dyn8", "quantize": {"mode": "dynamic"}}]
    for threads, how in ((2, "the export stage's package/"), (1, "built by build_package")):
        cfg = CompressConfig.model_validate({"latency": {"runs": 5, "warmup": 1, "threads": threads},
                                             "variants": dyn})
        compress(Run.open(run_copy), cfg)
        record = read_json(run_copy / "compress" / "baseline" / "compression.json")
        assert record["package"].startswith(how), record["package"]
        meta = read_json(run_copy / "compress" / "baseline" / "danlu-model.json")
        assert meta["version"] == "1-baseline" and meta["runtime_choice"]["reference"]["threads"] == threads
