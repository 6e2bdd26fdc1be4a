"""evaluate.baseline: the GBDT beside a table model, checked against scikit-learn fitted by hand."""

from __future__ import annotations

import csv
import shutil

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import accuracy_score, log_loss
from threadpoolctl import threadpool_limits

import danlu
from danlu.data.stage import load_splits
from danlu.runs import Run, read_json


@pytest.fixture(scope="module")
def table_run(tmp_path_factory):
    """A tiny table run (numbers and a category, 300 rows, 2 epochs) up to evaluate (~10 s)."""
    d = tmp_path_factory.mktemp("table")
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=300), rng.normal(size=300)
    color = rng.choice(["red", "green", "blue"], 300)
    y = a + (color == "red") + 0.3 * b > 0.5
    with (d / "t.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "color", "label"])
        w.writerows([f"{a[i]:.4f}", f"{b[i]:.4f}", color[i], "yes" if y[i] else "no"] for i in range(300))
    recipe = {"name": "table", "data": {"source": f"csv:{d / 't.csv'}", "target": "label",
                                        "features": {"a": "number", "b": "number", "color": "category"}},
              "model": {"arch": "mlp", "hidden": [16]}, "train": {"epochs": 2}}
    return danlu.run(recipe, out=d / "runs", until="evaluate")


def _by_hand(run_dir):
    """X per split rebuilt from the CSV (row numbers count data rows from 1): numbers as the data
    stage stores them (float32), the color as its index in the sorted training vocabulary."""
    run = Run.open(run_dir)
    splits = load_splits(run)
    rows = list(csv.DictReader(open(run.recipe.data.source.removeprefix("csv:"))))
    vocab = sorted({rows[r - 1]["color"] for r in splits.rows["train"]})

    def x(split):
        return np.array([[np.float32(rows[r - 1]["a"]), np.float32(rows[r - 1]["b"]),
                          vocab.index(rows[r - 1]["color"])] for r in splits.rows[split]], np.float64)

    return run, splits, {s: x(s) for s in ("train", "val", "test")}


def test_baseline_metrics_equal_sklearn_fitted_the_same_way(table_run):
    b = read_json(table_run.run_dir / "eval" / "baseline.json")
    run, splits, x = _by_hand(table_run.run_dir)
    est = HistGradientBoostingClassifier(categorical_features=[False, False, True],
                                         early_stopping=True, random_state=run.recipe.seed)
    with threadpool_limits(1):  # as the stage fits it (train.threads unset)
        est.fit(x["train"], splits.y["train"], X_val=x["val"], y_val=splits.y["val"])
    probs = est.predict_proba(x["test"])
    assert b["test"]["accuracy"] == pytest.approx(accuracy_score(splits.y["test"], probs.argmax(1)),
                                                  abs=1e-6)
    assert b["test"]["log_loss"] == pytest.approx(log_loss(splits.y["test"], probs), abs=1e-5)
    assert b["iterations"] == est.n_iter_ and b["categorical"] == ["color"] and b["threads"] == 1
    assert b["early_stopping"].startswith("on danlu's val split")
    assert b["test"]["ci"]["accuracy"][0] <= b["test"]["accuracy"] <= b["test"]["ci"]["accuracy"][1]


def test_paired_comparison_is_danlu_minus_gbdt_with_mcnemar(table_run):
    d = table_run.run_dir
    b, m = read_json(d / "eval" / "baseline.json"), read_json(d / "eval" / "metrics.json")
    c = b["comparison"]
    assert c["metric"] == "accuracy"
    assert c["danlu"] == pytest.approx(m["test"]["accuracy"], abs=1e-6)
    assert c["gbdt"] == pytest.approx(b["test"]["accuracy"], abs=1e-6)
    assert c["diff"] == pytest.approx(c["danlu"] - c["gbdt"])
    assert c["ci"][0] <= c["diff"] <= c["ci"][1]
    assert 0 <= c["mcnemar"]["p_value"] <= 1 and 0 <= c["p_value"] <= 1
    assert c["mcnemar"]["method"] in ("exact binomial", "chi-square, continuity corrected",
                                      "no discordant rows")
    assert b["danlu_fit_seconds"] == read_json(d / "train" / "summary.json")["seconds"]
    assert b["fit_seconds"] > 0


def test_stage_result_line_cli_and_report_section(table_run, capsys):
    from danlu.cli import _print_result
    from danlu.report.html import render

    line = table_run.metrics["evaluate"]["baseline"]
    assert line.startswith("GBDT baseline: accuracy ") and "danlu - GBDT = " in line
    assert "McNemar p " in line
    _print_result(table_run)  # what `danlu run` prints at the end
    assert line in capsys.readouterr().out
    page = render(table_run.run_dir)
    assert 'id="baseline"' in page and "HistGradientBoostingClassifier" in page


def test_baseline_none_writes_none(table_run, tmp_path):
    d = shutil.copytree(table_run.run_dir, tmp_path / "run")
    res = danlu.run(None, {"evaluate.baseline": "none"}, resume=d, until="evaluate")
    assert res.stages["evaluate"] == "ran" and res.stages["train"] == "cached"
    assert not (d / "eval" / "baseline.json").exists()
    assert "baseline" not in res.metrics["evaluate"]


def test_image_run_has_no_baseline(digits_run):
    assert (digits_run.run_dir / "eval" / "metrics.json").is_file()
    assert not (digits_run.run_dir / "eval" / "baseline.json").exists()
    assert "baseline" not in digits_run.metrics["evaluate"]


def test_table_columns_keep_missing_and_code_categories():
    from danlu.features import build_features

    num, cat = build_features([("x", "number", ["x"], {}), ("c", "category", ["c"], {})])
    num.partial_fit(np.array([[1.0], [2.0]]))
    cat.partial_fit(np.array(["b", "a", None], dtype=object))
    assert num.tabular and cat.tabular
    x, codes = num.table_columns(np.array([[np.nan], [3.0]], np.float32))
    assert not codes and np.isnan(x[0, 0]) and x[1, 0] == 3.0
    x, codes = cat.table_columns(np.array(["a", "b", None, "zzz"], dtype=object))
    assert codes and x[:2, 0].tolist() == [0, 1] and np.isnan(x[2, 0])
    assert x[3, 0] == cat.index["__unknown__"]  # unseen in training: a code the trees never saw


def test_regressor_path_on_a_numeric_target():
    """The `number` head's baseline: HistGradientBoostingRegressor on numbers and a category,
    compared by RMSE with a paired bootstrap (no McNemar)."""
    from danlu.evaluate.baseline import BASELINES, fit_baseline, table_matrix
    from danlu.evaluate.stats import paired_bootstrap_errors
    from danlu.features import build_features

    rng = np.random.default_rng(1)
    n = 400
    nums = rng.normal(size=(n, 2))
    nums[rng.random(n) < 0.1, 0] = np.nan
    cats = rng.choice(["lo", "mid", "hi"], n).astype(object)
    y = np.nan_to_num(nums[:, 0]) * 3 + (cats == "hi") * 2 + rng.normal(scale=0.1, size=n)
    num, cat = build_features([("x", "number", ["x1", "x2"], {}), ("c", "category", ["c"], {})])
    tr, va, te = slice(0, 240), slice(240, 320), slice(320, n)
    num.partial_fit(nums[tr])
    cat.partial_fit(cats[tr])
    x, categorical, names = table_matrix([num, cat], {"features": nums, "c": cats})
    assert names == ["x1", "x2", "c"] and categorical == [False, False, True]
    kind = BASELINES["number"]
    est, seconds = fit_baseline(kind, x[tr], y[tr], categorical, 0, (x[va], y[va]))
    with threadpool_limits(1):
        ref = HistGradientBoostingRegressor(categorical_features=np.array(categorical),
                                            early_stopping=True, random_state=0)
        ref.fit(x[tr], y[tr], X_val=x[va], y_val=y[va])
    pred = kind.outputs(est, x[te], 1)
    np.testing.assert_allclose(pred, ref.predict(x[te]))
    model = y[te] + rng.normal(scale=1.0, size=n - 320)  # a worse model than the GBDT
    c = kind.compare(y[te], model, pred, 500, 0.95, 0)
    assert c["metric"] == "rmse" and "mcnemar" not in c
    assert c["gbdt"] == pytest.approx(np.sqrt(np.mean((pred - y[te]) ** 2)))
    assert c["danlu"] == pytest.approx(np.sqrt(np.mean((model - y[te]) ** 2)))
    assert c["ci"][0] <= c["diff"] <= c["ci"][1] and c["diff"] > 0
    same = paired_bootstrap_errors(y[te], pred, pred, "rmse", 100)
    assert same["diff"] == 0 and same["ci"] == [0.0, 0.0] and same["p_value"] == 1.0
