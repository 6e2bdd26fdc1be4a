"""`danlu data prepare`, `danlu data preview` and `danlu init`, run as a user runs them."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

import danlu
from danlu.runs import read_json
from tests.conftest import DIGITS
from tests.test_cli import danlu as cli


def test_data_prepare_writes_clean_parquet_and_training_reuses_it(tmp_path):
    r = cli("data", "prepare", str(DIGITS), "--out", str(tmp_path))
    assert r.returncode == 0, r.stderr
    (run_dir,) = tmp_path.iterdir()
    assert (run_dir / "data" / "clean.parquet").is_file() and not (run_dir / "train").exists()
    cleaning = read_json(run_dir / "data" / "cleaning.json")
    assert cleaning["rows_in"] == 1797 and "danlu run --resume" in r.stdout
    res = danlu.run(None, overrides={"train.epochs": 1, "evaluate.gate": {}}, resume=run_dir)
    assert res.stages["data"] == "cached" and res.stages["train"] == "ran"


def test_data_preview_writes_a_png_grid(tmp_path):
    from PIL import Image

    png = tmp_path / "grid.png"
    r = cli("data", "preview", str(DIGITS), "preprocess.augment=[{rotate: {degrees: 20, p: 1}}]",
            "--out", str(png), "--samples", "4", "--variants", "3")
    assert r.returncode == 0, r.stderr
    with Image.open(png) as im:
        assert im.format == "PNG" and im.width > 200 and im.height > 200


def test_data_preview_of_a_table_is_a_recipe_error(tmp_path):
    recipe = tmp_path / "iris.yaml"
    recipe.write_text("data: {source: 'sklearn:iris'}\nmodel: {arch: mlp}\npreprocess: {augment: [noise]}\n")
    r = cli("data", "preview", str(recipe), "--out", str(tmp_path / "x.png"))
    assert r.returncode == 2 and "image data" in r.stderr


def _table(tmp_path, target_values):
    from sklearn.datasets import load_breast_cancer

    f = load_breast_cancer(as_frame=True).frame
    f.insert(0, "patient_id", np.arange(1000, 1000 + len(f)))
    f["site"] = "clinic-a"
    f["city"] = np.where(np.arange(len(f)) % 2, "Paris", "Lyon")
    f["target"] = target_values(f)
    path = tmp_path / "patients.csv"
    f.to_csv(path, index=False)
    return path


@pytest.mark.slow
def test_init_writes_a_recipe_that_runs_unedited(tmp_path):
    path = _table(tmp_path, lambda f: np.where(f["target"] == 1, "benign", "malignant"))
    recipe = tmp_path / "recipe.yaml"
    r = cli("init", f"csv:{path}", "--target", "target", "--out", str(recipe))
    assert r.returncode == 0, r.stderr
    text = recipe.read_text()
    raw = yaml.safe_load(text)
    assert raw["data"]["drop"] == ["patient_id", "site"]
    assert raw["data"]["features"]["city"] == "binary"  # Paris or Lyon: two strings, one input
    assert raw["data"]["features"]["mean radius"] == "number"
    assert "ID-like" in text and "constant" in text and "benign: 357, malignant: 212" in text
    assert raw["model"]["arch"] == "mlp" and "WARNING" not in text
    assert raw["model"]["ensemble"] == 32  # TabM-mini members (8 from 20,000 rows)
    assert raw["train"]["early_stopping"]["metric"] == "val.loss"  # balanced classes
    r = cli("run", str(recipe), "--out", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    assert "accuracy" in r.stdout and "package:" in r.stdout


def test_init_warns_about_imbalanced_classes(tmp_path):
    path = _table(tmp_path, lambda f: np.where(np.arange(len(f)) % 10 == 0, "rare", "common"))
    recipe = tmp_path / "recipe.yaml"
    r = cli("init", f"csv:{path}", "--target", "target", "--out", str(recipe))
    assert r.returncode == 0 and "imbalanced" in r.stderr
    raw = yaml.safe_load(recipe.read_text())
    assert raw["train"]["early_stopping"]["metric"] == "val.f1_macro"


def test_init_writes_a_number_head_for_a_continuous_target(tmp_path):
    path = _table(tmp_path, lambda f: f["mean radius"] * 1.5)
    r = cli("init", f"csv:{path}", "--target", "target", "--out", str(tmp_path / "r.yaml"))
    assert r.returncode == 0, r.stderr
    text = (tmp_path / "r.yaml").read_text()
    raw = yaml.safe_load(text)
    assert raw["data"]["target"] == {"column": "target", "head": "number"}
    assert raw["train"]["early_stopping"]["metric"] == "val.rmse"
    assert "task: regression of 'target'" in text and "Class balance" not in text


def test_init_tune_writes_a_search_that_run_does_then_trains_the_best(tmp_path):
    path = _table(tmp_path, lambda f: f["target"])
    recipe = tmp_path / "r.yaml"
    r = cli("init", f"csv:{path}", "--target", "target", "--tune", "2", "--out", str(recipe))
    assert r.returncode == 0, r.stderr
    raw = yaml.safe_load(recipe.read_text())
    tune = raw["tune"]
    assert tune["trials"] == 2 and tune["objective"] == "val.accuracy"
    assert tune["direction"] == "maximize"
    assert {"train.optimizer.lr", "model.hidden", "model.dropout"} <= set(tune["space"])
    res = danlu.run(recipe, overrides={"train.epochs": 2}, out=tmp_path / "runs", until="train")
    assert res.stages == {"data": "ran", "tune": "ran", "train": "ran"}
    best = read_json(res.run_dir / "tune" / "best.json")
    assert best["trials"]["finished"] == 2
    trained = read_json(res.run_dir / "train" / "model" / "model.json")  # the network trained
    assert trained["config"]["hidden"] == best["overrides"]["model.hidden"]
