"""compare-optimizers on digits: same start for each optimizer, curves and a table."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from danlu.train.compare import epochs_to_reach
from tests.conftest import DIGITS

DANLU = str(Path(sys.executable).with_name("danlu"))


def test_epochs_to_reach_95_percent_of_the_best():
    assert epochs_to_reach([0.5, 0.9, 0.96, 1.0]) == 3
    assert epochs_to_reach([1.0, 0.5]) == 1
    assert epochs_to_reach([2.0, 1.1, 0.99, 0.95], maximize=False) == 3  # loss <= 0.95 / 0.95


def test_compare_optimizers_writes_plot_and_table_on_digits(tmp_path):
    r = subprocess.run([DANLU, "compare-optimizers", str(DIGITS), "train.epochs=2",
                        "model.channels=[8,16]", "--optimizers", "sgd,momentum,adagrad,adam",
                        "--lr", "sgd=0.2", "--out", str(tmp_path)],
                       check=False, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "COLUMNS": "150"})
    assert r.returncode == 0, r.stderr
    (run_dir,) = tmp_path.iterdir()
    out = run_dir / "compare"
    doc = json.loads((out / "compare.json").read_text())
    assert [row["optimizer"] for row in doc["rows"]] == ["sgd", "momentum", "adagrad", "adam"]
    assert [row["lr"] for row in doc["rows"]] == [0.2, 0.02, 0.02, 0.002]  # --lr, defaults, recipe
    assert doc["metric"] == "val_accuracy" and len(doc["initial_weights_sha256"]) == 64
    for row in doc["rows"]:
        assert len(row["history"]) == 2 and 0.5 < row["best_val_accuracy"] <= 1
        assert 1 <= row["epochs_to_95pct"] <= row["best_epoch"] and row["wall_seconds"] > 0
        assert row["history"][-1]["train_loss"] < row["history"][0]["train_loss"]
    md = (out / "compare.md").read_text().splitlines()
    assert md[0].startswith("| optimizer | lr | best val_accuracy") and len(md) == 6
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = (out / "curves.svg").read_text()
    assert svg.lstrip().startswith("<?xml") and all(n in svg for n in ("sgd", "adagrad", "adam"))
    for word in ("optimizer", "epochs to 95%", "momentum", "adagrad", str(out)):
        assert word in r.stdout


def test_unknown_optimizer_names_the_choices(tmp_path):
    r = subprocess.run([DANLU, "compare-optimizers", str(DIGITS), "--optimizers", "sgd,adamm",
                        "--out", str(tmp_path)], check=False, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 2 and "did you mean 'adam'" in r.stderr and not any(tmp_path.iterdir())
