"""Regression (the `number` head) as a user meets it: `danlu init` on a table with a continuous
target writes `head: number`, `danlu run` trains, evaluates with intervals and packages a model
whose ONNX output equals torch, and `danlu serve` answers /v1 with values."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import numpy as np
import pytest
import yaml

from danlu.runs import read_json
from tests.serve.conftest import running_server
from tests.test_cli import danlu as cli

EPOCHS = 5


def _diabetes(folder: Path, shift: float = 0.0) -> Path:
    """scikit-learn's bundled diabetes set (442 rows, 10 numbers, a disease-progression score)."""
    from sklearn.datasets import load_diabetes

    f = load_diabetes(as_frame=True, scaled=False).frame
    f["target"] = f["target"] + shift
    path = folder / "diabetes.csv"
    f.to_csv(path, index=False)
    return path


def test_regression_metrics_equal_scikit_learns() -> None:
    from sklearn import metrics as skm

    from danlu.evaluate.regression import bootstrap_regression_ci, regression_metrics

    rng = np.random.default_rng(0)
    y = rng.normal(50, 20, 300)
    pred = y + rng.normal(0, 8, 300)
    m = regression_metrics(pred, y)
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y, pred), abs=1e-6)
    assert m["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(y, pred)), abs=1e-6)
    assert m["r2"] == pytest.approx(skm.r2_score(y, pred), abs=1e-6)
    assert m["mape"] == pytest.approx(skm.mean_absolute_percentage_error(y, pred), abs=1e-6)
    y0 = np.r_[0.0, y[1:]]  # a 0 target: no MAPE (sklearn divides by eps instead)
    assert "mape" not in regression_metrics(pred, y0)
    ci = bootstrap_regression_ci(pred, y, resamples=200, confidence=0.95, seed=0)
    for k in ("mae", "rmse", "r2", "mape"):
        assert ci[k][0] <= m[k] <= ci[k][1], k


# The tests on one `danlu init` + `danlu run` of diabetes (~30 s together, most of it the run).
slow_run = pytest.mark.slow


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    tmp = tmp_path_factory.mktemp("regression")
    path = _diabetes(tmp)
    recipe = tmp / "recipe.yaml"
    r = cli("init", f"csv:{path}", "--target", "target", "--out", str(recipe))
    assert r.returncode == 0, r.stderr
    r = cli("run", str(recipe), f"train.epochs={EPOCHS}", "--out", str(tmp / "runs"))
    assert r.returncode == 0, r.stderr
    (run_dir,) = (tmp / "runs").iterdir()
    return {"recipe": recipe, "run_dir": run_dir, "stdout": r.stdout, "csv": path}


@slow_run
def test_init_writes_a_regression_recipe(diabetes_run: dict) -> None:
    text = diabetes_run["recipe"].read_text()
    raw = yaml.safe_load(text)
    assert raw["data"]["target"] == {"column": "target", "head": "number"}
    assert raw["train"]["early_stopping"]["metric"] == "val.rmse"
    assert "regression of 'target'" in text and "Target: mean 152.1, std 77.01, min 25, max 346" in text
    assert "Class balance" not in text


@slow_run
def test_a_run_evaluates_with_intervals_and_prints_them(diabetes_run: dict) -> None:
    run_dir = diabetes_run["run_dir"]
    test = read_json(run_dir / "eval" / "metrics.json")["test"]
    for k in ("rmse", "mae", "r2", "mape"):
        low, high = test["ci"][k]
        assert low <= test[k] <= high, k
    assert test["n"] == 89 and test["r2"] > 0  # better than predicting the mean
    history = (run_dir / "train" / "history.jsonl").read_text().splitlines()
    assert len(history) == EPOCHS and '"val_rmse"' in history[0]
    summary = read_json(run_dir / "train" / "summary.json")
    rmse = [json.loads(r)["val_rmse"] for r in history]
    assert summary["metric"] == "val.rmse" and summary["best_value"] == min(rmse)  # lower is better
    assert "rmse" in diabetes_run["stdout"] and "accuracy" not in diabetes_run["stdout"]
    info = read_json(run_dir / "data" / "info.json")
    assert info["task"] == "regression" and info["stratified"]
    report = (run_dir / "report.html").read_text()
    assert "predicted vs actual" in report and "residuals" in report


@slow_run
def test_the_packages_onnx_output_equals_torch_on_the_test_split(diabetes_run: dict) -> None:
    from danlu.data.stage import load_splits
    from danlu.models.load import load_model
    from danlu.models.packaged import predict
    from danlu.runs import Run
    from danlu.serve import load_package
    from danlu.serve.config import ServeConfig
    from danlu.serve.runtimes import load_runtime

    run_dir = diabetes_run["run_dir"]
    values = load_splits(Run.open(run_dir)).values["test"]
    (torch_value,) = predict(load_model(run_dir / "train" / "model").packaged(), values)
    package = load_package(run_dir / "package")
    assert package.task == "regression"
    assert [s.to_json() for s in package.outputs] == [{"name": "value", "datatype": "FP32",
                                                       "shape": [-1]}]
    onnx = load_runtime(package, ServeConfig(runtime="onnxruntime")).run_rows(values, ["value"])
    assert onnx["value"].shape == torch_value.shape == (89,)
    np.testing.assert_allclose(onnx["value"], torch_value, rtol=1e-5, atol=1e-3)
    assert 25 < float(np.median(torch_value)) < 346  # in the target's units, not standardized


@slow_run
def test_serve_answers_v1_with_values_and_v2_with_a_value_output(diabetes_run: dict) -> None:
    from danlu.data.stage import load_splits
    from danlu.runs import Run

    run_dir = diabetes_run["run_dir"]
    x = load_splits(Run.open(run_dir)).values["test"]["features"][:3]
    name = read_json(run_dir / "package" / "danlu-model.json")["name"]
    with running_server([run_dir], "--threads", "1") as (url, _):
        r = httpx.post(f"{url}/v1/models/{name}:predict",
                       json={"instances": [{"features": row} for row in x.tolist()]}, timeout=30)
        assert r.status_code == 200, r.text
        preds = r.json()["predictions"]
        assert [set(p) for p in preds] == [{"value"}] * 3
        body = {"inputs": [{"name": "features", "shape": list(x.shape), "datatype": "FP32",
                            "data": x.reshape(-1).tolist()}]}
        r = httpx.post(f"{url}/v2/models/{name}/infer", json=body, timeout=30)
        assert r.status_code == 200, r.text
        (out,) = r.json()["outputs"]
    assert out["name"] == "value" and out["shape"] == [3]
    np.testing.assert_allclose(out["data"], [p["value"] for p in preds], rtol=1e-6)


@slow_run
def test_danlu_evaluate_scores_the_package_on_a_csv(diabetes_run: dict, tmp_path: Path) -> None:
    out = tmp_path / "external.json"
    r = cli("evaluate", str(diabetes_run["run_dir"] / "package"), "--data",
            f"csv:{diabetes_run['csv']}", "--target", "target", "--out", str(out))
    assert r.returncode == 0, r.stderr
    doc = read_json(out)
    assert doc["n"] == 442 and "rmse" in r.stdout and doc["ci"]["rmse"][0] <= doc["rmse"]


def test_classifying_a_continuous_target_fails_early_naming_the_fix(tmp_path: Path) -> None:
    path = _diabetes(tmp_path, shift=0.5)  # 214 distinct non-integer numbers
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data: {{source: 'csv:{path}', target: target}}\nmodel: {{arch: mlp}}\n")
    r = cli("run", str(recipe), "--out", str(tmp_path / "runs"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    (line,) = [s for s in r.stderr.splitlines() if "target" in s]
    assert "'target' is a continuous number (214 distinct values seen" in line
    assert "`data.target: {column: target, head: number}`" in line


def test_a_non_numeric_target_cell_is_a_counted_row_issue(tmp_path: Path) -> None:
    rows = ["a,b,y", *(f"{2 * i},{i % 7},{i * 1.5}" for i in range(60)), "120,1,unknown"]
    path = tmp_path / "t.csv"
    path.write_text("\n".join(rows) + "\n")
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data: {{source: 'csv:{path}', target: {{column: y, head: number, "
                      "loss: huber}}\nmodel: {arch: mlp}\n")
    r = cli("data", "prepare", str(recipe), "--out", str(tmp_path / "runs"))
    assert r.returncode == 0, r.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    cleaning = read_json(run_dir / "data" / "cleaning.json")
    assert cleaning["removed"] == {"wrong_type": 1} and cleaning["rows_out"] == 60
    assert cleaning["examples"]["wrong_type"] == [{"row": 61, "column": "y"}]
    target = read_json(run_dir / "data" / "features.json")["target"]
    assert target["options"] == {"loss": "huber"} and target["state"]["mean"] > 0


def test_a_loss_on_a_category_head_is_refused_by_its_path(tmp_path: Path) -> None:
    path = _diabetes(tmp_path)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(f"data: {{source: 'csv:{path}', target: {{column: sex, loss: huber}}}}\n"
                      "model: {arch: mlp}\n")
    r = cli("data", "prepare", str(recipe), "--out", str(tmp_path / "runs"))
    assert r.returncode != 0 and "Traceback" not in r.stderr
    assert "data.target.loss" in r.stderr and "number" in r.stderr


def test_the_gate_takes_error_metrics_as_maximums() -> None:
    from danlu.errors import RecipeError
    from danlu.evaluate.config import EvaluateConfig
    from danlu.evaluate.stage import check_gate
    from danlu.features import heads
    from danlu.recipe import load_recipe

    cfg = EvaluateConfig(gate={"rmse": 500, "r2": 0.5})
    head = heads["number"]("price", [])
    assert check_gate({"rmse": 480.0, "r2": 0.6}, cfg.gate, head)["passed"]
    failed = check_gate({"rmse": 510.0, "r2": 0.6}, cfg.gate, head)
    assert not failed["passed"] and failed["checks"]["rmse"] == {"max": 500, "value": 510.0,
                                                                 "passed": False}
    with pytest.raises(RecipeError, match="r2 must be at most 1"):
        load_recipe({"evaluate": {"gate": {"r2": 2}}})


def test_a_log_transform_learns_log1p_and_the_graph_returns_the_targets_units() -> None:
    import torch

    from danlu.features import heads

    y = np.array([100.0, 250.0, 90_000.0, 5.0])
    head = heads["number"]("price", [], {"transform": "log"}).fit(y)
    assert head.state_dict()["mean"] == pytest.approx(np.log1p(y).mean())
    assert head.state_dict()["spread"] == pytest.approx(y.std())
    z = torch.as_tensor((np.log1p(y) - head.mean_) / head.std_, dtype=torch.float32)
    (value,) = head.module()(z.reshape(-1, 1))
    np.testing.assert_allclose(value.numpy(), y, rtol=1e-4)  # exp(.) - 1 after de-standardizing
    assert float(head.loss()(z.reshape(-1, 1), torch.as_tensor(y))) < 1e-10
    with pytest.raises(Exception, match="transform"):
        heads["number"]("t", [], {"transform": "log"}).fit(np.array([-2.0, 3.0]))
