"""Compressing a regression model (the `number` head): every variant is measured for the head's
metrics (RMSE, MAE, R², ...), the budget gates `max_metric_drop` (an error's relative growth), and
the files a user reads (pareto.json, each variant's compression.json, predictions.npz, README.md,
danlu-model.json) say so. One tiny real run: 400 rows of 4 numbers, an MLP of 16, 8 epochs
(~10 s with both compressions)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from danlu.errors import RecipeError
from tests.compress.conftest import copy_run

# int8: dynamic int8 of the MLP (close to the fp32 model); pruned: 95% of the weights zeroed
# with no fine-tuning (the error grows far beyond 5%).
VARIANTS = ("compress.variants=[{name: int8, quantize: {mode: dynamic}}, "
            "{name: pruned, prune: {sparsity: 0.95, schedule: oneshot, finetune_epochs: 0}}]")
# few timed runs, and a speed tolerance that timing noise on a 0.01 ms model cannot fail
FAST = ["compress.latency.runs=5", "compress.latency.warmup=1", "compress.latency.speed_tolerance=10"]


@pytest.fixture(scope="module")
def regression_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import danlu

    d = tmp_path_factory.mktemp("reg-c")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 4))
    y = 50 + 10 * x[:, 0] - 6 * x[:, 1] + 3 * x[:, 2] * x[:, 3] + rng.normal(0, 1, 400)
    lines = ["a,b,c,d,y"] + [",".join(f"{v:.4f}" for v in (*r, t)) for r, t in zip(x, y, strict=True)]
    (d / "t.csv").write_text("\n".join(lines) + "\n")
    recipe = {"name": "reg", "data": {"source": f"csv:{d / 't.csv'}",
                                      "target": {"column": "y", "head": "number"}},
              "model": {"arch": "mlp", "hidden": [16], "dropout": 0.0},
              "train": {"epochs": 8, "batch_size": 32}, "evaluate": {"gate": {}}}
    # up to train: compress builds the baseline's package itself (as the export stage would)
    return danlu.run(recipe, out=d / "runs", until="train").run_dir


def test_a_budget_key_of_labels_or_a_metric_the_head_lacks_is_refused(regression_run: Path,
                                                                      tmp_path: Path) -> None:
    from danlu.compress.stage import compress_run

    for i, (override, path, says) in enumerate((
            ("compress.budget.metric=accuracy", "compress.budget.metric", "rmse, mae, r2, mape"),
            ("compress.budget.max_accuracy_drop=0.02", "compress.budget.max_accuracy_drop",
             "max_metric_drop"))):
        run_dir = copy_run(regression_run, tmp_path / str(i))  # compress_run keeps overrides
        with pytest.raises(RecipeError) as e:
            compress_run(run_dir, [VARIANTS, override])
        assert e.value.path == path and says in str(e.value)


def test_regression_variants_are_measured_and_gated_by_max_metric_drop(regression_run: Path) -> None:
    from danlu.compress.stage import compress_run

    res = compress_run(regression_run, [VARIANTS, *FAST, "compress.budget.max_metric_drop=0.05"])
    root = regression_run / "compress"
    doc = json.loads((root / "pareto.json").read_text())
    assert doc["metric"] == "rmse" and doc["budget"]["max_metric_drop"] == 0.05
    assert doc["budget_applied"] == {"metric": "rmse", "max_metric_drop": 0.05}
    rows = {r["name"]: r for r in doc["variants"]}
    assert list(rows) == ["baseline", "int8", "pruned"]
    base = rows["baseline"]["rmse"]
    for name, r in rows.items():
        # the head's metrics, from the predictions the package served
        with np.load(root / name / "predictions.npz", allow_pickle=False) as z:
            assert set(z.files) == {"y", "value"}
            err = z["value"] - z["y"]
        assert r["rmse"] == pytest.approx(float(np.sqrt((err ** 2).mean())), rel=1e-6)
        assert r["mae"] == pytest.approx(float(np.abs(err).mean()), rel=1e-6)
        assert {"r2", "val_rmse", "rmse_ci"} <= set(r) and r["lower_is_better"]
        assert r["rmse_ci"][0] <= r["rmse"] <= r["rmse_ci"][1] and r["b32_ms"] > 0
        meta = json.loads((root / name / "danlu-model.json").read_text())
        assert meta["metrics"]["test"]["rmse"] == pytest.approx(r["rmse"])
        assert f"| test rmse ({len(err)} rows, 95% CI) | {r['rmse']:.4g}" in \
            (root / name / "README.md").read_text()
        if name == "baseline":
            continue
        gate = r["vs_parent"]["rmse"]  # the gate is named by its metric; no label agreement
        assert set(r["vs_parent"]) == {"speed", "rmse"} and "label_agreement_with_parent" not in gate
        assert gate["drop"] == pytest.approx((r["rmse"] - base) / base) and gate["drop_kind"] == "relative"
        assert gate["passed"] == (gate["drop"] <= 0.05 + 1e-12)
        assert r["vs_baseline"]["rmse_diff"] == pytest.approx(r["rmse"] - base, abs=1e-9)
        comp = json.loads((root / name / "compression.json").read_text())
        assert comp["gates"]["rmse"] == gate
    # dynamic int8 keeps the error; 95% of the weights gone without fine-tuning does not
    assert rows["int8"]["vs_parent"]["rmse"]["passed"]
    assert rows["int8"]["passed"] and rows["int8"]["reasons"] == []
    assert not rows["pruned"]["passed"]
    assert rows["pruned"]["reasons"] == [rows["pruned"]["vs_parent"]["rmse"]["reason"]]
    assert "(budget: max_metric_drop 0.05, relative)" in rows["pruned"]["reasons"][0]
    assert rows["pruned"]["nonzero_params"] < 0.3 * rows["pruned"]["params"]  # biases stay
    assert "pruned" in res.metrics["failed"] and doc["chosen"] != "pruned"
