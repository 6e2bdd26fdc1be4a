"""`danlu train --nproc 2`: DDP under torchrun (gloo on CPU) matches one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import DIGITS

DANLU = str(Path(sys.executable).with_name("danlu"))
# No dropout (each rank would draw its own masks) and no BatchNorm (statistics per rank):
# then 2 ranks x 32 rows compute the same update as 1 process x 64 rows, up to float order.
ARGS = ["model={arch: mlp, hidden: [32], dropout: 0}", "train.epochs=3",
        "train.early_stopping.patience=0", "train.batch_size=64", "train.threads=1",
        # Augmentation draws per rank shard, so it is not split-invariant: off for this comparison.
        "preprocess.augment=[]"]


def _train(out: Path, nproc: int) -> tuple[Path, list[dict]]:
    r = subprocess.run([DANLU, "train", str(DIGITS), *ARGS, "--nproc", str(nproc), "--out", str(out)],
                       check=False, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr
    (run_dir,) = out.iterdir()
    rows = [json.loads(line) for line in (run_dir / "train/history.jsonl").read_text().splitlines()]
    return run_dir, rows


@pytest.mark.slow
def test_two_processes_match_one_with_the_same_global_batch(tmp_path):
    one_dir, one = _train(tmp_path / "one", 1)
    two_dir, two = _train(tmp_path / "two", 2)
    assert len(one) == len(two) == 3
    for a, b in zip(one, two, strict=True):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-4)
        assert b["val_loss"] == pytest.approx(a["val_loss"], rel=1e-4)
        assert a["train_rows"] == b["train_rows"]  # sharded: the ranks' rows add up to one epoch
    assert one[-1]["train_loss"] < one[0]["train_loss"]
    summary = json.loads((two_dir / "train/summary.json").read_text())
    assert summary["processes"] == 2
    manifest = json.loads((two_dir / "manifest.json").read_text())
    assert manifest["stages"]["train"]["status"] == "finished"
    # rank 0 alone wrote: one set of files, no temp files left by a second writer
    assert sorted(p.name for p in (two_dir / "train").iterdir()) == \
        sorted(p.name for p in (one_dir / "train").iterdir())
    assert not list(two_dir.rglob("*.tmp"))
