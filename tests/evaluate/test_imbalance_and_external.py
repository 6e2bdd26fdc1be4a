"""Imbalanced data: accuracy is flagged as misleading. `danlu evaluate` scores runs and packages
on new labelled CSV data, through the real CLI."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from danlu.data.stage import load_splits
from danlu.runs import Run, read_json

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(p) for p in sys.path if p])}


def _danlu(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "danlu.cli", *args], capture_output=True, text=True,
                          env={**ENV, "COLUMNS": "160"}, cwd=cwd, timeout=300, check=False)


def test_imbalanced_csv_warns_that_accuracy_misleads(write_csv, tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    y = (rng.random(n) < 0.08).astype(int)  # 92% "ok", 8% "fault"
    x = rng.normal(size=(n, 3)) + y[:, None] * 0.9  # the rare class is hard to tell apart
    rows = [["a", "b", "c", "status"]] + [[*map(float, r), "fault" if t else "ok"]
                                          for r, t in zip(x, y, strict=True)]
    path = write_csv(rows, "imbalanced.csv")
    recipe = tmp_path / "imb.yaml"
    recipe.write_text(json.dumps({"name": "imb", "data": {"source": f"csv:{path}", "target": "status"},
                                  "model": {"arch": "mlp", "hidden": [16]},
                                  "train": {"epochs": 8}}))
    p = _danlu("run", str(recipe), "--out", str(tmp_path / "runs"))
    assert p.returncode == 0, p.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    m = read_json(run_dir / "eval/metrics.json")
    (w,) = m["test"]["warnings"]
    assert m["warnings"] == m["test"]["warnings"]
    assert w["kind"] == "imbalance" and w["majority_class"] == "ok" and w["majority_share"] > 0.8
    assert "accuracy misleads" in w["message"]
    # The CLI table leads with macro-F1 and says why.
    metric_rows = [ln for ln in p.stdout.splitlines() if ln.startswith("│")]
    assert metric_rows[0].split("│")[1].strip() == "f1_macro"
    assert "accuracy misleads here" in " ".join(p.stdout.split())
    page = (run_dir / "report.html").read_text()
    assert "Accuracy misleads here." in page
    assert page.index("f1 macro") < page.index(">accuracy<")  # the summary cards lead with macro-F1
    assert "<h2>Worst mistakes (test)</h2>" in page and "<th>a</th>" in page  # tabular mistakes


def test_balanced_digits_carry_no_warning(digits_run):
    m = read_json(digits_run.run_dir / "eval/metrics.json")
    assert m["test"]["warnings"] == [] and m["warnings"] == []
    assert m["test"]["ci_method"] == {"kind": "percentile bootstrap", "resamples": 1000,
                                      "confidence": 0.95, "seed": 0}
    for k in ("accuracy", "balanced_accuracy", "f1_macro", "log_loss"):
        lo, hi = m["test"]["ci"][k]
        assert lo <= m["test"][k] <= hi


def _digits_csv(run_dir, path, reverse: bool):
    """The digits test rows as a CSV with named columns and a `digit` label column."""
    s = load_splits(Run.open(run_dir))
    names = s.info["feature_names"]
    cols = list(reversed(names)) if reverse else names
    order = [names.index(c) for c in cols]
    lines = [",".join([*cols, "digit"])]
    lines += [",".join([*(f"{v:g}" for v in row[order]), str(lab)])
              for row, lab in zip(s.values["test"]["pixels"], s.y["test"], strict=True)]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def digits_csv(digits_run, tmp_path_factory):
    # Columns in another order than training: a run knows its feature names and matches them.
    return _digits_csv(digits_run.run_dir, tmp_path_factory.mktemp("new") / "new digits.csv", True)


def test_cli_evaluates_a_run_on_new_csv_without_touching_test_metrics(digits_run, digits_csv):
    metrics_file = digits_run.run_dir / "eval/metrics.json"
    before = hashlib.sha256(metrics_file.read_bytes()).hexdigest()
    p = _danlu("evaluate", str(digits_run.run_dir), "--data", f"csv:{digits_csv}", "--target", "digit")
    assert p.returncode == 0, p.stderr
    out = read_json(digits_run.run_dir / "eval/external-new_digits.json")
    test = read_json(metrics_file)["test"]
    assert out["n"] == 360 and out["model"] == "run (PyTorch)"
    # Same rows, same model: the same numbers as the evaluate stage.
    assert out["accuracy"] == pytest.approx(test["accuracy"]) and out["ci"] == test["ci"]
    assert f"{test['accuracy']:.3f} [{test['ci']['accuracy'][0]:.3f}, " in p.stdout
    assert hashlib.sha256(metrics_file.read_bytes()).hexdigest() == before


def test_cli_evaluates_a_package_with_onnxruntime(digits_run, tmp_path):
    # A package alone matches columns by the feature names in its danlu-model.json.
    digits_csv = _digits_csv(digits_run.run_dir, tmp_path / "rows.csv", True)
    pkg = tmp_path / "pkg"
    import shutil

    shutil.copytree(digits_run.package_dir, pkg)  # a package on its own, away from its run
    out = tmp_path / "scored.json"
    p = _danlu("evaluate", str(pkg), "--data", str(digits_csv), "--target", "digit", "--out", str(out))
    assert p.returncode == 0, p.stderr
    got = read_json(out)
    test = read_json(digits_run.run_dir / "eval/metrics.json")["test"]
    assert got["model"] == "package (ONNX Runtime)" and got["n"] == 360
    assert got["accuracy"] == pytest.approx(test["accuracy"])
    assert got["confusion_matrix"] == test["confusion_matrix"]


def test_cli_names_an_unknown_label_and_a_missing_target(digits_run, write_csv):
    bad = write_csv([["x", "digit"], [1.0, "7"], [2.0, "cat"]], "bad.csv")
    p = _danlu("evaluate", str(digits_run.run_dir), "--data", f"csv:{bad}", "--target", "digit")
    assert p.returncode == 2 and "['cat'] are not classes of this model" in " ".join(p.stderr.split())
    p = _danlu("evaluate", str(digits_run.run_dir / "package"), "--data", f"csv:{bad}")
    assert p.returncode == 2 and "--target" in p.stderr
