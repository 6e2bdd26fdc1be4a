"""The digits recipe end to end: metrics, run folder, package, parity, gate and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import danlu
from danlu.errors import GateError, ParityError
from danlu.runs import Run, read_json
from danlu.testing import check_package_loads
from tests.conftest import DIGITS


def test_shipped_recipe_reaches_its_accuracy(digits_run):
    assert digits_run.metrics["test"]["accuracy"] >= 0.97
    assert digits_run.stages == {s: "ran" for s in ("data", "train", "evaluate", "export", "report")}


def test_run_folder_holds_every_stage_output(digits_run):
    d = digits_run.run_dir
    for rel in ("recipe.yaml", "manifest.json", "data/split.json", "data/features.json",
                "train/model/model.safetensors", "train/model/model.json", "train/history.jsonl",
                "eval/metrics.json", "package/model.onnx", "package/danlu-model.json",
                "package/README.md"):
        assert (d / rel).is_file(), rel
    manifest = read_json(d / "manifest.json")
    assert all(manifest["stages"][s]["status"] == "finished" for s in manifest["stages"])
    assert manifest["versions"]["torch"].startswith("2.13")
    history = [json.loads(line) for line in (d / "train/history.jsonl").read_text().splitlines()]
    assert {"epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"} <= set(history[0])
    # The resolved recipe reloads to the same recipe, with the features the data stage read.
    from danlu.pipeline import with_features

    resolved = danlu.load_recipe(d / "recipe.yaml")
    assert resolved == with_features(danlu.load_recipe(DIGITS))
    assert resolved.data.features["pixels"].type == "image"


def test_normalizer_is_fitted_on_the_training_split_only(digits_run):
    r = Run.open(digits_run.run_dir)
    from danlu.data.stage import load_splits

    s = load_splits(r)
    (pixels,) = s.features()
    shift = np.asarray(pixels.state_dict()["normalize"]["shift"])
    assert np.allclose(shift, s.values["train"]["pixels"].mean(axis=0), atol=1e-5)
    every = np.concatenate([v["pixels"] for v in s.values.values()])
    assert not np.allclose(shift, every.mean(axis=0), atol=1e-5)


def test_package_loads_with_plain_onnxruntime_on_raw_pixels(digits_run):
    from danlu.data.stage import load_splits

    s = load_splits(Run.open(digits_run.run_dir))
    probs, labels = check_package_loads(digits_run.package_dir, s.values["test"])
    cm = np.array(read_json(digits_run.run_dir / "eval/metrics.json")["test"]["confusion_matrix"])
    assert (labels == s.y["test"]).mean() == pytest.approx(np.trace(cm) / cm.sum())
    assert np.allclose(probs.sum(axis=1), 1, atol=1e-5)


def test_package_meta_records_parity_and_contract(digits_run):
    meta = read_json(digits_run.package_dir / "danlu-model.json")
    assert meta["parity"]["passed"] and meta["parity"]["max_abs_diff"] <= 1e-4
    assert meta["parity"]["label_agreement"] == 1.0 and meta["parity"]["rows"] == 360
    assert meta["inputs"] == [{"name": "pixels", "datatype": "FP32", "shape": [-1, 64]}]
    assert meta["labels"] == [str(i) for i in range(10)] and meta["schema_version"] == 2
    (pixels,) = meta["features"]
    assert pixels["type"] == "image" and pixels["columns"][:2] == ["pixel_0_0", "pixel_0_1"]
    assert len(pixels["columns"]) == 64 and pixels["input"] == meta["inputs"][0]
    assert meta["head"]["type"] == "category" and meta["head"]["labels"] == meta["labels"]
    assert meta["preprocessing"]["in_graph"] == ["pixels"]
    assert meta["metrics"]["test"]["accuracy"] >= 0.97


def test_resume_reuses_finished_stages(digits_run, tmp_path):
    again = danlu.run(None, resume=digits_run.run_dir)
    assert set(again.stages.values()) == {"cached"}
    assert again.metrics["test"] == digits_run.metrics["test"]


def test_gate_failure_stops_packaging_and_resume_continues(tmp_path):
    with pytest.raises(GateError, match="accuracy"):
        danlu.run(DIGITS, {"train.epochs": 1, "evaluate.gate": {"accuracy": 0.999}}, out=tmp_path)
    (run_dir,) = tmp_path.iterdir()
    assert not (run_dir / "package").exists()
    assert "gate failed" in (run_dir / "report.html").read_text()  # the report shows why
    stages = read_json(run_dir / "manifest.json")["stages"]
    assert stages["evaluate"]["status"] == "failed" and "export" not in stages
    # Lower the gate: data and train are reused, evaluate and export run.
    result = danlu.run(None, {"evaluate.gate": {"accuracy": 0.3}}, resume=run_dir)
    assert result.stages == {"data": "cached", "train": "cached", "evaluate": "ran", "export": "ran",
                             "report": "ran"}
    assert result.package_dir is not None


def test_parity_over_tolerance_fails_loudly(tmp_path):
    with pytest.raises(ParityError, match="tolerance 1e-12"):
        danlu.run(DIGITS, {"train.epochs": 1, "evaluate.gate": {}, "export.parity_atol": 1e-12},
                  out=tmp_path)
    (run_dir,) = tmp_path.iterdir()
    assert not (run_dir / "package").exists()


def test_csv_with_a_constant_column_runs_end_to_end(write_csv, tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 3))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    rows = [["f1", "f2", "f3", "constant", "label"]] + [[*map(float, r), 1.0, int(t)]
                                                        for r, t in zip(x, y, strict=True)]
    path = write_csv(rows)
    # the constant column is declared (inference would drop it, as carrying no information)
    features = {c: "number" for c in ("f1", "f2", "f3", "constant")}
    result = danlu.run({"name": "tab", "data": {"source": f"csv:{path}", "target": "label",
                                                "features": features},
                        "model": {"arch": "mlp"}, "train": {"epochs": 20}}, out=tmp_path)
    assert result.metrics["test"]["accuracy"] > 0.8
    (numbers,) = read_json(result.run_dir / "data/features.json")["features"]
    assert numbers["columns"] == ["f1", "f2", "f3", "constant"]
    assert numbers["state"]["normalize"]["scale"][3] == 1.0  # a constant divides by 1, not 0
    meta = read_json(result.package_dir / "danlu-model.json")
    assert meta["inputs"][0] == {"name": "features", "datatype": "FP32", "shape": [-1, 4]}


def test_same_seed_same_weights(tmp_path):
    from safetensors.torch import load_file

    # (With the recipe's augmentation on: its draws are seeded too. No gate after 2 epochs.)
    a = danlu.run(DIGITS, {"train.epochs": 2}, out=tmp_path / "a", until="train")
    b = danlu.run(DIGITS, {"train.epochs": 2}, out=tmp_path / "b", until="train")
    wa, wb = (load_file(str(r.run_dir / "train/model/model.safetensors")) for r in (a, b))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
