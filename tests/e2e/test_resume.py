"""A real `danlu train` killed with SIGKILL mid-epoch resumes to bitwise the same weights, and
`danlu run --resume` then finishes the run to a package."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from safetensors.torch import load_file

from danlu.train.checkpoint import CheckpointStore
from tests.conftest import DIGITS

DANLU = str(Path(sys.executable).with_name("danlu"))
# Checkpoints every 7 updates and never at epoch ends: with 19 updates an epoch, every
# checkpoint of this run is mid-epoch, so the resume must restore the data order position,
# dropout RNG, optimizer and schedule state mid-way. CPU, deterministic, 2 threads.
ARGS = ["train.epochs=4", "model.channels=[8,16]", "train.early_stopping.patience=0",
        "train.checkpoint.every_steps=7",
        "train.checkpoint.every_epochs=0", "train.checkpoint.keep_last=100",
        "train.schedule.name=cosine", "train.schedule.warmup_epochs=1", "train.device=cpu",
        "train.threads=2", "train.deterministic=true"]
ENV = {**os.environ, "COLUMNS": "120"}


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([DANLU, "train", *args], check=False, capture_output=True, text=True,
                          timeout=600, env=ENV)


def _last_loop(run_dir: Path) -> dict | None:
    for p in reversed(sorted((run_dir / "train/checkpoints").glob("step-*.json"))):
        try:
            return json.loads(p.read_text())["body"]["loop"]
        except (OSError, ValueError):
            continue
    return None


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_is_bitwise_equal(tmp_path):
    # The uninterrupted reference trains beside the run that is killed (one process each); its
    # stderr goes to a file, which no full pipe can block
    ref_err = tmp_path / "ref.stderr"
    with ref_err.open("w") as err_file:
        ref = subprocess.Popen([DANLU, "train", str(DIGITS), *ARGS, "--out", str(tmp_path / "ref")],
                               stdout=subprocess.DEVNULL, stderr=err_file, env=ENV)
    try:
        proc = subprocess.Popen([DANLU, "train", str(DIGITS), *ARGS, "--out", str(tmp_path / "cut")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV)
        try:
            deadline = time.time() + 300
            while time.time() < deadline:
                runs = list((tmp_path / "cut").glob("digits-*"))
                loop = _last_loop(runs[0]) if runs else None
                if loop and loop["epoch"] >= 1:  # into the second epoch
                    break
                assert proc.poll() is None, "training ended before it could be killed"
                time.sleep(0.02)
            else:
                pytest.fail("no checkpoint in the second epoch")
            assert proc.poll() is None
            proc.send_signal(signal.SIGKILL)
            assert proc.wait(timeout=30) == -signal.SIGKILL
        finally:
            proc.kill()
    except BaseException:
        ref.kill()  # the test failed before the reference finished: leave no process behind
        raise
    assert ref.wait(timeout=600) == 0, ref_err.read_text()
    (ref_dir,) = (tmp_path / "ref").iterdir()
    run_dir = runs[0]
    assert json.loads((run_dir / "manifest.json").read_text())["stages"]["train"]["status"] == "running"
    assert not (run_dir / "train/model/model.safetensors").exists()

    r = _train(str(run_dir), "--resume")
    assert r.returncode == 0, r.stderr
    assert "data cached" in r.stderr and "resumed from checkpoint step-" in r.stdout
    resumed = r.stdout.split("resumed from checkpoint ")[1].split()[0]
    body = CheckpointStore.read(run_dir / "train/checkpoints" / resumed).body
    assert 0 < body["loop"]["batch"] < 19 and body["loop"]["epoch"] >= 1  # mid-epoch

    # bitwise: the kept (best) weights, and the last weights of the final checkpoint
    assert ((run_dir / "train/model/model.safetensors").read_bytes()
            == (ref_dir / "train/model/model.safetensors").read_bytes())
    last = sorted((ref_dir / "train/checkpoints").glob("step-*.safetensors"))[-1].name
    a = load_file(str(run_dir / "train/checkpoints" / last))
    b = load_file(str(ref_dir / "train/checkpoints" / last))
    model_keys = [k for k in a if k.startswith("model.")]
    assert model_keys and all(a[k].equal(b[k]) for k in model_keys)
    hist = [json.loads(line) for line in (run_dir / "train/history.jsonl").read_text().splitlines()]
    ref_hist = [json.loads(line) for line in (ref_dir / "train/history.jsonl").read_text().splitlines()]
    assert [h["train_loss"] for h in hist] == [h["train_loss"] for h in ref_hist]
    assert len(hist) == 4

    # `danlu run --resume` on the trained folder: data and train reused, the rest to a package
    r = subprocess.run([DANLU, "run", "--resume", str(run_dir), "evaluate.gate={}"], check=False,
                       capture_output=True, text=True, timeout=600, env=ENV)
    assert r.returncode == 0, r.stderr
    assert "data cached" in r.stderr and "train cached" in r.stderr
    assert (run_dir / "package/model.onnx").is_file()


def test_the_train_stage_picks_up_its_last_checkpoint(tmp_path):
    """What `danlu run --resume` relies on: rerunning the stage in the folder resumes."""
    import danlu
    from danlu.runs import Run
    from danlu.train.stage import train

    over = {"model": {"arch": "mlp", "hidden": [16]}, "train.epochs": 2,
            "train.checkpoint.every_steps": 5}
    result = danlu.run(DIGITS, over, out=tmp_path, until="train")
    assert result.stages == {"data": "ran", "train": "ran"}
    assert not (result.run_dir / "eval").exists()
    first = (result.run_dir / "train/model/model.safetensors").read_bytes()
    run = Run.open(result.run_dir)
    again = train(run, run.recipe.train)
    assert again.metrics["resumed_from"] == "step-00000038.json"  # 2 epochs x 19 updates
    assert (result.run_dir / "train/model/model.safetensors").read_bytes() == first
    assert len((result.run_dir / "train/history.jsonl").read_text().splitlines()) == 2


def test_train_help_names_resume_nproc_and_the_node_flags():
    r = subprocess.run([DANLU, "train", "--help"], check=False, capture_output=True, text=True,
                       env=ENV)
    assert r.returncode == 0
    assert all(f in r.stdout for f in ("--resume", "--nproc", "--nnodes", "--node-rank", "--master"))


def test_fp16_on_cpu_exits_2_naming_the_key(tmp_path):
    r = _train(str(DIGITS), "train.precision=fp16", "train.device=cpu", "--out", str(tmp_path))
    assert r.returncode == 2 and "train.precision" in r.stderr and "bf16" in r.stderr
    assert "Traceback" not in r.stderr
